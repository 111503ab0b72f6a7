// Package lang is kumo's recipe language: a Starlark file split into
// notebook-like cells (Jupytext "percent" format), with a parameters cell,
// load() of embedded and relative modules, and errors that point at
// file:line:col.
package lang

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// A Cell is one "# %%" section of a recipe.
type Cell struct {
	Index     int    // 0-based position in the recipe
	Title     string // text after "# %%", without [kind] tags
	Kind      string // "", "parameters", "markdown" or "raw" (prose both)
	StartLine int    // 1-based line of the first source line (the marker line itself, if any)
	Source    string // the cell's text, marker line included

	// After names cells (by number or title) that this one depends on
	// through the world rather than through values: "# %% Restart
	// [after: Write config]" runs live whenever "Write config" did.
	After []string
	// Always marks a cell that runs live on every run ("[always]"): a
	// check of the world, say.
	Always bool
	// Manual marks a cell that runs only when asked for by name
	// ("[manual]"): kumo run --only CELL, or --from CELL. A teardown cell
	// is one. It should define nothing later cells use.
	Manual bool
}

// Hash identifies the cell's source, so an edited cell is not replayed.
// The marker line and surrounding blank lines are left out: retitling a
// cell or adding space around it is not an edit of what it does.
func (c *Cell) Hash() string {
	body := c.Source
	if strings.HasPrefix(body, "# %%") {
		if i := strings.IndexByte(body, '\n'); i >= 0 {
			body = body[i+1:]
		} else {
			body = ""
		}
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(body)))
	return hex.EncodeToString(sum[:8])
}

// BodyLine is line's place in the cell's code, counted from its first
// non-blank line after the marker: what Hash covers, so that a retitled
// cell, or one with blank lines added around it, keeps its positions.
func (c *Cell) BodyLine(line int) int {
	first := c.StartLine
	lines := strings.Split(c.Source, "\n")
	i := 0
	if strings.HasPrefix(c.Source, "# %%") {
		i, first = 1, first+1
	}
	for ; i < len(lines) && strings.TrimSpace(lines[i]) == ""; i++ {
		first++
	}
	return line - first
}

// Name is how messages refer to the cell: `cell 2 "Create nodes"`.
func (c *Cell) Name() string {
	if c.Title == "" {
		return "cell " + strconv.Itoa(c.Index)
	}
	return "cell " + strconv.Itoa(c.Index) + " " + strconv.Quote(c.Title)
}

// Runnable reports whether the cell holds code (markdown and raw cells do not).
func (c *Cell) Runnable() bool { return c.Kind != "markdown" && c.Kind != "raw" }

// SplitCells splits a recipe into cells at lines that start with "# %%".
// Text before the first marker is cell 0 when it holds anything but
// blank lines. A marker reads "# %% Title [tag]"; the tags "parameters"
// and "markdown" set the cell's Kind, other tags are ignored.
func SplitCells(src string) []*Cell {
	lines := strings.SplitAfter(src, "\n")
	// A Jupytext header ("# ---" YAML "# ---") is the notebook's
	// metadata, not a cell: its lines are blanked, keeping positions.
	if _, n, ok := readHeader(strings.Split(strings.TrimSuffix(src, "\n"), "\n")); ok {
		for i := 0; i < n; i++ {
			lines[i] = "\n"
		}
	}
	var cells []*Cell
	var cur *Cell
	var buf strings.Builder
	flush := func() {
		if cur == nil {
			return
		}
		cur.Source = buf.String()
		buf.Reset()
		if cur.StartLine == 1 && !strings.HasPrefix(cur.Source, "# %%") && strings.TrimSpace(cur.Source) == "" {
			cur = nil // a blank preamble is not a cell
			return
		}
		if cur.StartLine == 1 && !strings.HasPrefix(cur.Source, "# %%") && onlyComments(cur.Source) {
			cur.Kind = "markdown" // a comment-only preamble is prose, as in Jupytext
		}
		cur.Index = len(cells)
		cells = append(cells, cur)
		cur = nil
	}
	for i, line := range lines {
		if line == "" {
			continue
		}
		if isMarker(line) {
			flush()
			cur = parseMarker(line)
			cur.StartLine = i + 1
		} else if cur == nil {
			cur = &Cell{StartLine: i + 1}
		}
		buf.WriteString(line)
	}
	flush()
	return cells
}

func isMarker(line string) bool {
	if !strings.HasPrefix(line, "# %%") {
		return false
	}
	rest := line[len("# %%"):]
	return rest == "" || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == '\r'
}

// parseMarker reads "# %% Title [parameters]" into a cell's title and
// tags: [parameters], [markdown] (or [md]), [always], [manual] and
// [after: CELL, CELL]. Other tags are ignored, as Jupytext does.
func parseMarker(line string) *Cell {
	c := &Cell{}
	rest := strings.TrimSpace(line[len("# %%"):])
	var words []string
	for rest != "" {
		if rest[0] == '[' {
			if end := strings.IndexByte(rest, ']'); end > 0 {
				tag := strings.TrimSpace(rest[1:end])
				switch {
				case tag == "parameters" || tag == "markdown" || tag == "raw":
					c.Kind = tag
				case tag == "md":
					c.Kind = "markdown"
				case tag == "always":
					c.Always = true
				case tag == "manual":
					c.Manual = true
				case strings.HasPrefix(tag, "after:"):
					for _, ref := range strings.Split(strings.TrimPrefix(tag, "after:"), ",") {
						if ref = strings.TrimSpace(ref); ref != "" {
							c.After = append(c.After, ref)
						}
					}
				}
				rest = strings.TrimSpace(rest[end+1:])
				continue
			}
		}
		i := strings.IndexAny(rest, " \t[")
		if i < 0 {
			i = len(rest)
		}
		if i == 0 { // a lone '[' with no ']'
			i = 1
		}
		words = append(words, rest[:i])
		rest = strings.TrimSpace(rest[i:])
	}
	c.Title = strings.Join(words, " ")
	return c
}

// FindCell resolves a reference to a code cell (--from, --only, after:):
// a cell number or a title, case-insensitive, where a unique prefix is
// enough. The error says what went wrong and lists what would do.
func FindCell(cells []*Cell, ref string) (*Cell, error) {
	var found *Cell
	if n, err := strconv.Atoi(ref); err == nil {
		if n < 0 || n >= len(cells) {
			return nil, fmt.Errorf("no cell %d: the recipe has cells 0 to %d", n, len(cells)-1)
		}
		found = cells[n]
	} else {
		var exact, prefix []*Cell
		for _, c := range cells {
			switch {
			case strings.EqualFold(c.Title, ref):
				exact = append(exact, c)
			case strings.HasPrefix(strings.ToLower(c.Title), strings.ToLower(ref)):
				prefix = append(prefix, c)
			}
		}
		matches := exact
		if len(matches) == 0 {
			matches = prefix
		}
		switch len(matches) {
		case 0:
			return nil, fmt.Errorf("no cell is titled %q; the cells are: %s", ref, cellList(cells))
		case 1:
			found = matches[0]
		default:
			return nil, fmt.Errorf("%q matches %d cells: %s; give its number or more of its title", ref, len(matches), cellList(matches))
		}
	}
	if !found.Runnable() {
		return nil, fmt.Errorf("%s is prose (a markdown cell) and has no code to run", found.Name())
	}
	return found, nil
}

// cellList renders cells for messages: `1 "Create", 2 "Install"`.
func cellList(cells []*Cell) string {
	var parts []string
	for _, c := range cells {
		if c.Runnable() {
			parts = append(parts, strings.TrimPrefix(c.Name(), "cell "))
		}
	}
	return strings.Join(parts, ", ")
}

// onlyComments reports whether src holds nothing but comments and blanks.
func onlyComments(src string) bool {
	for _, line := range strings.Split(src, "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}

// Body is the cell's text without its marker line and surrounding blank
// lines: what a notebook shows as the cell's source.
func (c *Cell) Body() string {
	body := c.Source
	if strings.HasPrefix(body, "# %%") {
		if i := strings.IndexByte(body, '\n'); i >= 0 {
			body = body[i+1:]
		} else {
			body = ""
		}
	}
	return strings.Trim(body, "\n")
}

// Prose is a markdown cell's text as Markdown: its comment lines with
// the "# " taken off, as Jupytext writes them.
func (c *Cell) Prose() string {
	var out []string
	for _, line := range strings.Split(c.Body(), "\n") {
		t := strings.TrimRight(line, " \t\r")
		switch {
		case strings.HasPrefix(t, "# "):
			t = t[2:]
		case t == "#":
			t = ""
		}
		out = append(out, t)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// Heading is the first Markdown heading of a markdown cell ("" if none):
// headings open the notebook's sections.
func (c *Cell) Heading() string {
	if c.Runnable() {
		return ""
	}
	for _, line := range strings.Split(c.Prose(), "\n") {
		if strings.HasPrefix(line, "#") {
			return strings.TrimSpace(strings.TrimLeft(line, "#"))
		}
	}
	return ""
}
