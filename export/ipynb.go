package export

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/kumo-dev/kumo/lang"
)

// The nbformat 4.5 document, as far as kumo writes it
// (https://github.com/jupyter/nbformat/blob/main/nbformat/v4/nbformat.v4.5.schema.json).
type ipynb struct {
	Cells         []ipynbCell    `json:"cells"`
	Metadata      map[string]any `json:"metadata"`
	NBFormat      int            `json:"nbformat"`
	NBFormatMinor int            `json:"nbformat_minor"`
}

type ipynbCell struct {
	ID             string         `json:"id"`
	CellType       string         `json:"cell_type"`
	Metadata       map[string]any `json:"metadata"`
	Source         []string       `json:"source"`
	ExecutionCount *int           `json:"execution_count,omitempty"`
	Outputs        []any          `json:"outputs,omitempty"`
	// Code cells must have both keys even when empty.
	codeCell bool
}

func (c ipynbCell) MarshalJSON() ([]byte, error) {
	m := map[string]any{"id": c.ID, "cell_type": c.CellType, "metadata": c.Metadata, "source": c.Source}
	if c.codeCell {
		m["outputs"] = c.Outputs
		if c.Outputs == nil {
			m["outputs"] = []any{}
		}
		m["execution_count"] = nil
		if c.ExecutionCount != nil {
			m["execution_count"] = *c.ExecutionCount
		}
	}
	return json.Marshal(m)
}

// lines is nbformat's multiline string: a list of lines, each but the
// last ending in a newline.
func lines(s string) []string {
	if s == "" {
		return []string{}
	}
	out := strings.SplitAfter(s, "\n")
	if out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

func isoTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// IPYNB renders the notebook as nbformat 4.5 JSON.
func (nb *Notebook) IPYNB() ([]byte, error) {
	doc := ipynb{NBFormat: 4, NBFormatMinor: 5, Cells: []ipynbCell{}}
	var params any = map[string]any{}
	if nb.Run.Params != "" {
		json.Unmarshal([]byte(nb.Run.Params), &params)
	}
	providers := nb.Run.Providers
	if providers == nil {
		providers = []string{}
	}
	var duration any
	if !nb.Run.FinishedAt.IsZero() && !nb.Run.StartedAt.IsZero() {
		duration = nb.Run.FinishedAt.Sub(nb.Run.StartedAt).Seconds()
	}
	doc.Metadata = map[string]any{
		"title": nb.title(), // nbconvert's page title
		// Opened in Jupyter, the record runs on kumo's kernel; Starlark
		// is a dialect of Python, whose highlighting fits.
		"kernelspec":    lang.KernelSpec(),
		"language_info": lang.LanguageInfo(),
		"kumo": map[string]any{
			"run": nb.Run.Name, "recipe": nb.Run.Recipe, "status": string(nb.Run.Status),
			"parameters": params, "version": nb.Run.Version, "providers": providers,
		},
		"papermill": map[string]any{
			"input_path": nb.Run.Recipe, "parameters": params,
			"start_time": isoTime(nb.Run.StartedAt), "end_time": isoTime(nb.Run.FinishedAt),
			"duration": duration, "exception": nb.failed(),
		},
	}
	for _, c := range nb.Cells {
		doc.Cells = append(doc.Cells, c.ipynb())
	}
	return json.MarshalIndent(doc, "", " ")
}

func (nb *Notebook) failed() bool {
	for _, c := range nb.Cells {
		if c.Status == Failed {
			return true
		}
	}
	return false
}

func (c *Cell) ipynb() ipynbCell {
	id := "cell-" + strconv.Itoa(c.Index)
	if !c.Runnable() {
		return ipynbCell{ID: id, CellType: "markdown", Metadata: map[string]any{}, Source: lines(c.Prose())}
	}
	kumo := map[string]any{"index": c.Index, "status": string(c.Status), "changed_since_run": c.Changed}
	if c.Title != "" {
		kumo["title"] = c.Title
	}
	meta := map[string]any{"kumo": kumo}
	if c.Kind == "parameters" {
		meta["tags"] = []string{"parameters"} // papermill's mark
	}
	out := ipynbCell{ID: id, CellType: "code", codeCell: true, Metadata: meta, Source: lines(c.Body())}
	if c.Status == NotRun {
		meta["papermill"] = map[string]any{"status": "pending", "start_time": nil, "end_time": nil, "duration": nil, "exception": nil}
		return out
	}
	pm := map[string]any{"start_time": isoTime(c.Start), "exception": c.Status == Failed}
	switch c.Status {
	case Running:
		pm["status"], pm["end_time"], pm["duration"] = "running", nil, nil
	case Failed:
		pm["status"] = "failed"
	default:
		pm["status"] = "completed"
	}
	if c.Status != Running {
		pm["end_time"] = isoTime(c.Start.Add(c.Duration))
		pm["duration"] = c.Duration.Seconds()
	}
	meta["papermill"] = pm
	count := c.Count
	out.ExecutionCount = &count
	for _, b := range blocks(c.Output) {
		out.Outputs = append(out.Outputs, map[string]any{
			"output_type": "stream", "name": string(b.Stream), "text": lines(strings.Join(b.Lines, "\n") + "\n"),
		})
	}
	if c.Status == Failed && c.Error != "" {
		out.Outputs = append(out.Outputs, map[string]any{
			"output_type": "error", "ename": "CellFailed", "evalue": errorValue(c.Error),
			"traceback": strings.Split(strings.TrimRight(c.Error, "\n"), "\n"),
		})
	}
	return out
}
