package lang

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/kumo-dev/kumo/builtins/starkit"
)

// FileOptions are the Starlark dialect of recipes and their modules.
// Recipes are scripts, not build files: top-level if/for/while, set,
// reassigned globals and recursion are all allowed. Loads bind globals
// so that a name loaded in one cell is seen by the next.
var FileOptions = &syntax.FileOptions{
	Set:               true,
	While:             true,
	TopLevelControl:   true,
	GlobalReassign:    true,
	Recursion:         true,
	LoadBindsGlobally: true,
}

// A Recipe is a parsed and statically checked .star file.
type Recipe struct {
	Path   string // the file as named by the user, used in messages
	Dir    string // where relative loads resolve
	Cells  []*Cell
	Params []string // names assigned in the parameters cell, in order

	// Deps is, per cell, what it reads, defines and loads (nil for prose).
	Deps []*Deps
	// FuncGlobals is, per function defined in a cell (keyed by the
	// position of its def or lambda), the globals its body uses.
	FuncGlobals map[string][]string

	paramCell int                           // index of the parameters cell, or -1
	defaults  map[string]*syntax.AssignStmt // parameter name -> its assignment
}

// ReadRecipe reads, splits and checks the recipe at path. known reports the
// names kumo predeclares (the builtins), so that a misspelt name is caught
// here, before any cell has touched the world.
func ReadRecipe(path string, known func(string) bool) (*Recipe, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, &starkit.InputError{Err: err}
	}
	if IsNotebook(path) {
		text, err := PercentFromNotebook(src)
		if err != nil {
			return nil, &starkit.InputError{Err: fmt.Errorf("%s: %v", path, err)}
		}
		rememberNotebook(path, SplitCells(text))
		return ParseRecipe(path, text, known)
	}
	return ParseRecipe(path, string(src), known)
}

// ParseRecipe splits src into cells, parses every cell and resolves the
// names each one uses against the builtins and the globals of the cells
// before it.
func ParseRecipe(path, src string, known func(string) bool) (*Recipe, error) {
	if err := checkText(path, src); err != nil {
		return nil, err
	}
	dir, _ := filepath.Abs(filepath.Dir(path))
	r := &Recipe{Path: path, Dir: dir, Cells: SplitCells(src), paramCell: -1, defaults: map[string]*syntax.AssignStmt{},
		FuncGlobals: map[string][]string{}}
	globals := map[string]bool{}
	isGlobal := func(name string) bool { return globals[name] || (known != nil && known(name)) }
	for _, c := range r.Cells {
		if c.Kind == "parameters" {
			if r.paramCell >= 0 {
				return nil, &starkit.InputError{Err: fmt.Errorf("%s:%d:1: a recipe has one [parameters] cell; %s is a second one", path, c.StartLine, c.Name())}
			}
			r.paramCell = c.Index
		}
	}
	for _, c := range r.Cells {
		r.Deps = append(r.Deps, nil)
		if !c.Runnable() {
			if err := proseOnly(path, c); err != nil {
				return nil, err
			}
			continue
		}
		f, err := c.Parse(path)
		if err != nil {
			return nil, &starkit.InputError{Err: err}
		}
		if c.Index == r.paramCell {
			for _, stmt := range f.Stmts {
				if a, ok := stmt.(*syntax.AssignStmt); ok && a.Op == syntax.EQ {
					if id, ok := a.LHS.(*syntax.Ident); ok {
						if r.defaults[id.Name] == nil {
							r.Params = append(r.Params, id.Name)
						}
						r.defaults[id.Name] = a
					}
				}
			}
		}
		if err := resolve.REPLChunk(f, isGlobal, func(string) bool { return false }, starlark.Universe.Has); err != nil {
			return nil, &starkit.InputError{Err: err}
		}
		if err := checkFormats(f); err != nil {
			return nil, err
		}
		for _, b := range f.Module.(*resolve.Module).Globals {
			globals[b.First.Name] = true
		}
		deps, err := r.analyze(c, f)
		if err != nil {
			return nil, &starkit.InputError{Err: err}
		}
		r.Deps[c.Index] = deps
	}
	return r, nil
}

// Parse parses the cell as a chunk of the recipe at path. The source is
// padded with blank lines so that positions are those of the whole file.
func (c *Cell) Parse(path string) (*syntax.File, error) {
	padded := strings.Repeat("\n", c.StartLine-1) + c.Source
	f, err := FileOptions.Parse(path, padded, 0)
	if se, ok := err.(syntax.Error); ok {
		if open, ok := unclosedBracket(padded, se.Pos); ok {
			se.Msg += fmt.Sprintf(" (the %q opened at %d:%d is never closed)", open.char, open.line, open.col)
			return f, se
		}
	}
	return f, err
}

type bracket struct {
	char      rune
	line, col int
}

// unclosedBracket finds the innermost bracket still open where a syntax
// error was reported, if it was opened on an earlier line: Starlark
// reports an unclosed ( where it gave up, often lines below it.
func unclosedBracket(src string, at syntax.Position) (bracket, bool) {
	var stack []bracket
	line, col := 1, 0
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	rs := []rune(src)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		col++
		if line > int(at.Line) || (line == int(at.Line) && col >= int(at.Col)) {
			break
		}
		switch r {
		case '\n':
			line, col = line+1, 0
		case '#':
			for i+1 < len(rs) && rs[i+1] != '\n' {
				i++
			}
		case '"', '\'':
			quote := string(rs[i : i+1])
			if i+2 < len(rs) && rs[i+1] == r && rs[i+2] == r {
				quote = strings.Repeat(string(r), 3)
			}
			i += len(quote) - 1
			col += len(quote) - 1
			for i+1 < len(rs) {
				i++
				col++
				if rs[i] == '\\' {
					i++
					col++
					if i < len(rs) && rs[i] == '\n' {
						line, col = line+1, 0
					}
					continue
				}
				if rs[i] == '\n' {
					if len(quote) == 1 { // an unterminated string: the scanner says so
						i, col = i-1, col-1
						break
					}
					line, col = line+1, 0
					continue
				}
				if strings.HasPrefix(string(rs[i:min(i+len(quote), len(rs))]), quote) {
					i += len(quote) - 1
					col += len(quote) - 1
					break
				}
			}
		case '(', '[', '{':
			stack = append(stack, bracket{r, line, col})
		case ')', ']', '}':
			if n := len(stack); n > 0 && stack[n-1].char == pairs[r] {
				stack = stack[:n-1]
			}
		}
	}
	if n := len(stack); n > 0 && stack[n-1].line < int(at.Line) {
		return stack[n-1], true
	}
	return bracket{}, false
}

// IsParams reports whether c is the recipe's parameters cell.
func (r *Recipe) IsParams(c *Cell) bool { return c.Index == r.paramCell }

// ParamCell is the parameters cell, or nil.
func (r *Recipe) ParamCell() *Cell {
	if r.paramCell < 0 {
		return nil
	}
	return r.Cells[r.paramCell]
}

// CellAt returns the cell holding line of the recipe, or nil.
func (r *Recipe) CellAt(line int) *Cell {
	var found *Cell
	for _, c := range r.Cells {
		if c.StartLine <= line {
			found = c
		}
	}
	return found
}

// CheckOverrides rejects -p names that the parameters cell does not assign.
func (r *Recipe) CheckOverrides(overrides map[string]string) error {
	var unknown []string
	for name := range overrides {
		if r.defaults[name] == nil {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	if len(r.Params) == 0 {
		return &starkit.InputError{Err: fmt.Errorf("%s: unknown parameter %s: the recipe has no [parameters] cell", r.Path, strings.Join(unknown, ", "))}
	}
	return &starkit.InputError{Err: fmt.Errorf("%s: unknown parameter %s; the [parameters] cell defines: %s", r.Path, strings.Join(unknown, ", "), strings.Join(r.Params, ", "))}
}

// HasParam reports whether the parameters cell assigns name.
func (r *Recipe) HasParam(name string) bool { return r.defaults[name] != nil }

// Ancestors lists the cells that cell idx depends on, directly or
// through other cells: those that define or change in place a value it
// reads, and those it runs after. kumo run --only replays just these.
func (r *Recipe) Ancestors(idx int) map[int]bool {
	out := map[int]bool{}
	needed := map[string]bool{}
	want := func(d *Deps) {
		for _, n := range d.Reads {
			needed[n] = true
		}
		for _, a := range d.After {
			out[a] = true
		}
	}
	if r.Deps[idx] == nil {
		return out // a prose cell depends on nothing
	}
	want(r.Deps[idx])
	for i := idx - 1; i >= 0; i-- {
		d := r.Deps[i]
		if d == nil {
			continue
		}
		take := out[i]
		for _, n := range append(append([]string{}, d.Defines...), d.Mutates...) {
			take = take || needed[n]
		}
		if take {
			out[i] = true
			want(d)
		}
	}
	return out
}

// checkText refuses a recipe that is not UTF-8 text (a binary file, or
// one saved in another encoding), saying where the first bad byte is.
func checkText(path, src string) error {
	line, col := 1, 1
	for i, r := range src {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(src[i:], "\uFFFD"):
			return starkit.Inputf("%s:%d:%d: byte 0x%02x is not UTF-8: save the recipe as UTF-8 text", path, line, col, src[i])
		case r == 0:
			return starkit.Inputf("%s:%d:%d: a NUL byte: %s is not a text file", path, line, col, path)
		case r == '\n':
			line, col = line+1, 1
			continue
		}
		col++
	}
	return nil
}

// proseOnly refuses code in a prose cell: kumo never runs it, so a
// load() there would fail much later as an undefined name.
func proseOnly(path string, c *Cell) error {
	for i, line := range strings.Split(c.Source, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		return &starkit.InputError{Err: fmt.Errorf("%s:%d:1: %s is [%s], prose that never runs, but this line is code: %s\n"+
			"Comment it (# ...) if it is prose; to run it, drop [%s] from the cell's marker or give it a code cell of its own (# %%%%)",
			path, c.StartLine+i, c.Name(), c.Kind, t, c.Kind)}
	}
	return nil
}
