package export

import (
	"bytes"
	"fmt"
	"html"
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

// style is the page's look: kumo's own, small and without scripts.
const style = `body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;border-radius:4px}
.cell{margin:1.2rem 0}.status{color:#555;font-size:.9rem}
.failed .status,.error{color:#b00}.out pre{background:#fff;border-left:3px solid #ccc}
.node{color:#555;font-size:.8rem}
`

// title names the page: the recipe's heading and the run.
func (nb *Notebook) title() string {
	if nb.Run.Title != "" {
		return nb.Run.Title + " · kumo run " + nb.Run.Name
	}
	return "kumo run " + nb.Run.Name
}

// HTML renders the notebook with kumo's own page (kumo export uses
// nbconvert instead when it is installed). It is written, not a
// template: executing a text or html template anywhere in a program
// keeps every exported method of every type in its binary (the linker
// cannot tell which a template calls), which doubled kumo's size and
// start-up time.
func (nb *Notebook) HTML() ([]byte, error) {
	var b strings.Builder
	esc := html.EscapeString
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title>\n<style>\n%s</style></head><body>\n", esc(nb.title()), style)
	fmt.Fprintf(&b, "<h1>Run %s</h1>\n<ul>", esc(nb.Run.Name))
	for _, f := range nb.facts() {
		fmt.Fprintf(&b, "<li>%s: %s</li>", esc(f[0]), esc(f[1]))
	}
	b.WriteString("</ul>\n")
	md := goldmark.New()
	for _, c := range nb.Cells {
		if !c.Runnable() {
			// goldmark escapes raw HTML by default: prose cannot inject markup.
			var prose bytes.Buffer
			if err := md.Convert([]byte(FenceIndentedCode(c.Prose())), &prose); err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "<div class=\"cell prose\">%s</div>\n", prose.String())
			continue
		}
		fmt.Fprintf(&b, "<div class=\"cell %s\">\n<div class=\"status\"><b>%s</b> · %s</div>\n<pre><code>%s</code></pre>",
			esc(string(c.Status)), esc(c.label()), esc(c.statusText()), esc(c.Body()))
		for _, blk := range blocks(c.Output) {
			b.WriteString("\n<div class=\"out\">")
			if blk.Source != "" {
				fmt.Fprintf(&b, "<div class=\"node\">%s · %s</div>", esc(blk.Source), esc(string(blk.Stream)))
			}
			fmt.Fprintf(&b, "<pre>%s</pre></div>", esc(strings.Join(blk.Lines, "\n")))
		}
		b.WriteString("\n")
		if c.Status == Failed && c.Error != "" {
			fmt.Fprintf(&b, "<pre class=\"error\">%s</pre>", esc(c.Error))
		}
		b.WriteString("</div>\n")
	}
	b.WriteString("</body></html>\n")
	return []byte(b.String()), nil
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
