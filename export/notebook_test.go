package export

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/yuin/goldmark"

	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/state"
)

const recipe = "# %% [markdown]\n# # Lab\n# Prose.\n\n# %% One\nx = 1\n\n# %% Two\ny = 2\n\n# %% Three\nz = 3\n"

func build(t *testing.T) *Notebook {
	t.Helper()
	r, err := lang.ParseRecipe("lab.star", recipe, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	recs := []state.CellRecord{
		// One ran after Two: counts follow the notebook, not the order they ran.
		{ID: 1, Index: 1, Title: "One", SourceHash: r.Cells[1].Hash(), Status: state.CellOK, Duration: time.Second, UpdatedAt: at.Add(time.Minute),
			Output: state.Output{{Source: "web-1", Stream: state.StreamStdout, Text: "a"}, {Source: "web-2", Stream: state.StreamStdout, Text: "b"},
				{Source: "web-1", Stream: state.StreamStderr, Text: "warn"}, {Stream: state.StreamPrint, Text: "```"}, {Source: "web-1", Stream: state.StreamStdout, Text: "c"}}},
		{ID: 2, Index: 2, Title: "Two", SourceHash: "old", Status: state.CellFailed, Duration: 2 * time.Second, UpdatedAt: at,
			Error: "lab.star:9:1: boom\n  Traceback"},
	}
	return Build(r, recs, Run{Name: "lab", Recipe: "lab.star", Params: `{"n":2}`, Status: state.RunFailed, Version: "test"})
}

func TestBuildPairsCellsWithRecords(t *testing.T) {
	nb := build(t)
	one, two, three := nb.Cells[1], nb.Cells[2], nb.Cells[3]
	if nb.Cells[0].Status != Prose || one.Status != OK || two.Status != Failed || three.Status != NotRun {
		t.Fatalf("statuses %s %s %s %s", nb.Cells[0].Status, one.Status, two.Status, three.Status)
	}
	if one.Count != 1 || two.Count != 2 || three.Count != 0 {
		t.Errorf("counts One=%d Two=%d Three=%d, want 1 2 0 (notebook order, though Two ran first)", one.Count, two.Count, three.Count)
	}
	if nb.Run.Title != "Lab" {
		t.Errorf("title %q, want the recipe's first heading", nb.Run.Title)
	}
	if !two.Changed || one.Changed {
		t.Errorf("changed: One=%v Two=%v, want false true", one.Changed, two.Changed)
	}
}

func TestIPYNBWritesEachNodesStreamApart(t *testing.T) {
	data, err := build(t).IPYNB()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		NBFormat      int `json:"nbformat"`
		NBFormatMinor int `json:"nbformat_minor"`
		Cells         []struct {
			ID             string         `json:"id"`
			Type           string         `json:"cell_type"`
			ExecutionCount *int           `json:"execution_count"`
			Metadata       map[string]any `json:"metadata"`
			Outputs        []struct {
				Type  string   `json:"output_type"`
				Name  string   `json:"name"`
				Text  []string `json:"text"`
				EName string   `json:"ename"`
			} `json:"outputs"`
		} `json:"cells"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.NBFormat != 4 || doc.NBFormatMinor != 5 {
		t.Errorf("nbformat %d.%d, want 4.5", doc.NBFormat, doc.NBFormatMinor)
	}
	one := doc.Cells[1]
	var got []string
	for _, o := range one.Outputs {
		got = append(got, o.Name+":"+strings.Join(o.Text, ""))
	}
	want := []string{"stdout:web-1 | a\nweb-1 | c\n", "stdout:web-2 | b\n", "stderr:web-1 | warn\n", "stdout:```\n"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("outputs of One:\n%q\nwant\n%q", got, want)
	}
	two := doc.Cells[2]
	if len(two.Outputs) != 1 || two.Outputs[0].Type != "error" || two.Outputs[0].EName != "CellFailed" {
		t.Errorf("Two's outputs: %+v, want one error", two.Outputs)
	}
	pm := two.Metadata["papermill"].(map[string]any)
	if pm["status"] != "failed" || pm["exception"] != true || pm["duration"] != 2.0 {
		t.Errorf("Two's papermill metadata: %v", pm)
	}
	three := doc.Cells[3]
	if three.ExecutionCount != nil || three.Metadata["papermill"].(map[string]any)["status"] != "pending" {
		t.Errorf("Three never ran: count %v, metadata %v", three.ExecutionCount, three.Metadata)
	}
	if doc.Cells[0].Type != "markdown" || doc.Cells[0].ID == "" {
		t.Errorf("prose cell: %+v", doc.Cells[0])
	}
}

// Output holding a fence does not close the Markdown record's block.
func TestMarkdownFencesHoldTheirText(t *testing.T) {
	md := string(build(t).Markdown())
	if !strings.Contains(md, "````text\n```\n````") {
		t.Errorf("a line of ``` is not fenced by a longer fence:\n%s", md)
	}
	if !strings.Contains(md, "edited since") {
		t.Errorf("the edited cell is not marked:\n%s", md)
	}
}

// Prose is rendered to HTML with its raw HTML escaped: a recipe's prose
// cannot put a script in the record.
func TestHTMLEscapesRawHTML(t *testing.T) {
	r, _ := lang.ParseRecipe("x.star", "# %% [markdown]\n# <script>alert(1)</script>\n# **bold**\n", func(string) bool { return true })
	out, err := Build(r, nil, Run{Name: "x"}).HTML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "<script>alert") || !strings.Contains(string(out), "<strong>bold</strong>") {
		t.Errorf("html:\n%s", out)
	}
}

// Commands indented under a list are code, not more of the last item.
func TestIndentedCommandsAfterAListAreCode(t *testing.T) {
	prose := "The family:\n\n- `users.star` adds accounts,\n- `teardown.star` deletes it all.\n\n    kumo run cluster.star -p n=4\n    kumo run cluster.star\n\nMore text.\n"
	var buf bytes.Buffer
	if err := goldmark.Convert([]byte(FenceIndentedCode(prose)), &buf); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	if !strings.Contains(html, "<pre><code>kumo run cluster.star -p n=4\nkumo run cluster.star\n</code></pre>") || !strings.Contains(html, "deletes it all.</li>") {
		t.Errorf("rendered as %q", html)
	}
}
