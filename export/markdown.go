package export

import (
	"bytes"
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/yuin/goldmark"
)

// Markdown renders the notebook as a plain Markdown record: prose as it
// is, code in fenced blocks, each cell's status and output under it.
func (nb *Notebook) Markdown() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Run %s\n\n", nb.Run.Name)
	for _, line := range nb.facts() {
		fmt.Fprintf(&b, "- %s: %s\n", line[0], line[1])
	}
	for _, c := range nb.Cells {
		b.WriteString("\n")
		if !c.Runnable() {
			b.WriteString(FenceIndentedCode(c.Prose()) + "\n")
			continue
		}
		fmt.Fprintf(&b, "**%s** · %s\n\n", c.label(), c.statusText())
		b.WriteString(fence(c.Body(), "python"))
		for _, blk := range blocks(c.Output) {
			b.WriteString("\n" + fence(strings.Join(blk.Lines, "\n"), "text"))
		}
		if c.Error != "" && c.Status == Failed {
			b.WriteString("\n" + fence(c.Error, "text"))
		}
	}
	return []byte(b.String())
}

// fence puts text in a fenced block whose fence no line of it closes.
func fence(text, lang string) string {
	f := "```"
	for strings.Contains(text, f) {
		f += "`"
	}
	return f + lang + "\n" + strings.TrimRight(text, "\n") + "\n" + f + "\n"
}

func (c *Cell) label() string {
	l := fmt.Sprintf("[%d]", c.Index)
	if c.Title != "" {
		l += " " + c.Title
	}
	return l
}

// statusText is the cell's status for a reader: "ok in 3.2s".
func (c *Cell) statusText() string {
	s := string(c.Status)
	if c.Status == OK || c.Status == Failed {
		d := c.Duration.Round(100 * time.Millisecond)
		if c.Duration < time.Second {
			d = c.Duration.Round(time.Millisecond)
		}
		s += " in " + d.String()
	}
	if c.Changed {
		s += " (edited since: the output is the earlier version's)"
	}
	return s
}

// facts are the run's metadata for a reader.
func (nb *Notebook) facts() [][2]string {
	out := [][2]string{{"recipe", nb.Run.Recipe}, {"status", string(nb.Run.Status)}}
	if nb.Run.Params != "" && nb.Run.Params != "{}" {
		out = append(out, [2]string{"parameters", nb.Run.Params})
	}
	if len(nb.Run.Providers) > 0 {
		out = append(out, [2]string{"providers", strings.Join(nb.Run.Providers, ", ")})
	}
	if !nb.Run.StartedAt.IsZero() {
		out = append(out, [2]string{"started", nb.Run.StartedAt.Format(time.RFC3339)})
	}
	if !nb.Run.FinishedAt.IsZero() {
		out = append(out, [2]string{"finished", nb.Run.FinishedAt.Format(time.RFC3339)})
	}
	return append(out, [2]string{"kumo", nb.Run.Version})
}

var page = template.Must(template.New("run").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;border-radius:4px}
.cell{margin:1.2rem 0}.status{color:#555;font-size:.9rem}
.failed .status,.error{color:#b00}.out pre{background:#fff;border-left:3px solid #ccc}
.node{color:#555;font-size:.8rem}
</style></head><body>
<h1>Run {{.Run.Name}}</h1>
<ul>{{range .Facts}}<li>{{index . 0}}: {{index . 1}}</li>{{end}}</ul>
{{range .Cells}}<div class="cell {{.Class}}">{{if eq .Class "prose"}}{{.Prose}}{{else}}
<div class="status"><b>{{.Label}}</b> · {{.Status}}</div>
<pre><code>{{.Code}}</code></pre>{{range .Blocks}}
<div class="out">{{if .Source}}<div class="node">{{.Source}} · {{.Stream}}</div>{{end}}<pre>{{.Text}}</pre></div>{{end}}
{{if .Error}}<pre class="error">{{.Error}}</pre>{{end}}{{end}}</div>
{{end}}</body></html>
`))

// title names the page: the recipe's heading and the run.
func (nb *Notebook) title() string {
	if nb.Run.Title != "" {
		return nb.Run.Title + " · kumo run " + nb.Run.Name
	}
	return "kumo run " + nb.Run.Name
}

// HTML renders the notebook with kumo's own page (kumo export uses
// nbconvert instead when it is installed).
func (nb *Notebook) HTML() ([]byte, error) {
	type htmlBlock struct{ Source, Stream, Text string }
	type htmlCell struct {
		Class, Label, Status, Code, Error string
		Prose                             template.HTML
		Blocks                            []htmlBlock
	}
	data := struct {
		Run   Run
		Title string
		Facts [][2]string
		Cells []htmlCell
	}{Run: nb.Run, Title: nb.title(), Facts: nb.facts()}
	md := goldmark.New()
	for _, c := range nb.Cells {
		if !c.Runnable() {
			var buf bytes.Buffer
			// goldmark escapes raw HTML by default: prose cannot inject markup.
			if err := md.Convert([]byte(FenceIndentedCode(c.Prose())), &buf); err != nil {
				return nil, err
			}
			data.Cells = append(data.Cells, htmlCell{Class: "prose", Prose: template.HTML(buf.String())})
			continue
		}
		hc := htmlCell{Class: string(c.Status), Label: c.label(), Status: c.statusText(), Code: c.Body()}
		for _, blk := range blocks(c.Output) {
			hc.Blocks = append(hc.Blocks, htmlBlock{blk.Source, string(blk.Stream), strings.Join(blk.Lines, "\n")})
		}
		if c.Status == Failed {
			hc.Error = c.Error
		}
		data.Cells = append(data.Cells, hc)
	}
	var buf bytes.Buffer
	err := page.Execute(&buf, data)
	return buf.Bytes(), err
}

// FenceIndentedCode turns each block of lines indented by four spaces
// after a blank line into a fenced code block. Recipes' prose writes
// commands so (as Go and Python comments do), and CommonMark reads such
// a block right after a list item as more of that item's text: "deletes
// it all.kumo run cluster.star".
func FenceIndentedCode(md string) string {
	lines := strings.Split(md, "\n")
	var out []string
	inFence := false
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
		}
		indented := strings.HasPrefix(line, "    ") && strings.TrimSpace(line) != ""
		if inFence || !indented || i == 0 || strings.TrimSpace(lines[i-1]) != "" {
			out = append(out, line)
			continue
		}
		out = append(out, "```")
		j := i
		for j < len(lines) {
			if strings.HasPrefix(lines[j], "    ") {
				out = append(out, strings.TrimRight(lines[j][4:], " "))
			} else if strings.TrimSpace(lines[j]) == "" && j+1 < len(lines) && strings.HasPrefix(lines[j+1], "    ") {
				out = append(out, "")
			} else {
				break
			}
			j++
		}
		out = append(out, "```")
		i = j - 1
	}
	return strings.Join(out, "\n")
}
