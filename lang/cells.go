// Package lang is kumo's recipe language: a Starlark file split into
// notebook-like cells (Jupytext "percent" format), with a parameters cell,
// load() of embedded and relative modules, and errors that point at
// file:line:col.
package lang

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// A Cell is one "# %%" section of a recipe.
type Cell struct {
	Index     int    // 0-based position in the recipe
	Title     string // text after "# %%", without [kind] tags
	Kind      string // "", "parameters" or "markdown"
	StartLine int    // 1-based line of the first source line (the marker line itself, if any)
	Source    string // the cell's text, marker line included
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

// Name is how messages refer to the cell: `cell 2 "Create nodes"`.
func (c *Cell) Name() string {
	if c.Title == "" {
		return "cell " + strconv.Itoa(c.Index)
	}
	return "cell " + strconv.Itoa(c.Index) + " " + strconv.Quote(c.Title)
}

// Runnable reports whether the cell holds code (markdown cells do not).
func (c *Cell) Runnable() bool { return c.Kind != "markdown" }

// SplitCells splits a recipe into cells at lines that start with "# %%".
// Text before the first marker is cell 0 when it holds anything but
// blank lines. A marker reads "# %% Title [tag]"; the tags "parameters"
// and "markdown" set the cell's Kind, other tags are ignored.
func SplitCells(src string) []*Cell {
	lines := strings.SplitAfter(src, "\n")
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
			title, kind := parseMarker(line)
			cur = &Cell{Title: title, Kind: kind, StartLine: i + 1}
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

// parseMarker reads "# %% Title [parameters]" into its title and kind.
func parseMarker(line string) (title, kind string) {
	rest := strings.TrimSpace(line[len("# %%"):])
	var words []string
	for rest != "" {
		if rest[0] == '[' {
			if end := strings.IndexByte(rest, ']'); end > 0 {
				switch tag := strings.TrimSpace(rest[1:end]); tag {
				case "parameters", "markdown", "md":
					if tag == "md" {
						tag = "markdown"
					}
					kind = tag
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
	return strings.Join(words, " "), kind
}

// FindCell resolves a --from/--only argument: a cell number or a title
// (case-insensitive; a unique prefix is enough).
func FindCell(cells []*Cell, ref string) (*Cell, bool) {
	if n, err := strconv.Atoi(ref); err == nil {
		if n >= 0 && n < len(cells) {
			return cells[n], true
		}
		return nil, false
	}
	var match *Cell
	for _, c := range cells {
		if strings.EqualFold(c.Title, ref) {
			return c, true
		}
		if strings.HasPrefix(strings.ToLower(c.Title), strings.ToLower(ref)) {
			if match != nil {
				return nil, false // ambiguous
			}
			match = c
		}
	}
	return match, match != nil
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
