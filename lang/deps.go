package lang

import (
	"fmt"
	"slices"
	"sort"

	"go.starlark.net/resolve"
	"go.starlark.net/syntax"

	"github.com/kumo-dev/kumo/builtins/starkit"
)

// Deps is what one cell reads and defines, as Starlark's resolver sees
// it. The runner compares the values of Reads with those the cell saw
// when it last succeeded: a cell whose inputs are the same replays.
//
// Reads holds the globals the cell uses before it assigns them: a use in
// a top-level statement counts unless an earlier top-level statement of
// the cell surely assigned the name (a plain `x = ...`, def or load; not
// one inside if or for), and a use in a function body counts unless the
// cell surely assigns the name somewhere (the function sees the cell's
// own value). Where unsure, a name counts: a little too much is safe, too
// little would replay a cell whose input changed.
type Deps struct {
	Reads   []string // globals used: from earlier cells, parameters, builtins
	Defines []string // globals assigned (=, for, def, load)
	// Mutates holds globals the cell may change in place: x[k] = v,
	// x.f = v, x.append(...) and the like.
	Mutates []string
	Loads   []string // modules loaded, as written in load()
	After   []int    // cells this one runs after, by index ([after: ...])
	// Files are the files beside the recipe the cell reads with
	// read_file(), as written: their content is an input of the cell.
	Files []string
}

// analyze works out a resolved cell's Deps and the globals each of its
// functions uses.
func (r *Recipe) analyze(c *Cell, f *syntax.File) (*Deps, error) {
	d := &Deps{}
	bound := map[*syntax.Ident]bool{}
	bind := func(id *syntax.Ident) { bound[id] = true }
	var fileErr error
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.CallExpr:
			if id, ok := n.Fn.(*syntax.Ident); ok && id.Name == starkit.ReadFileBuiltin && isGlobal(id) {
				path, ok := literalPath(n)
				if !ok && fileErr == nil {
					pos, _ := n.Span()
					fileErr = fmt.Errorf("%s:%d:%d: %s: give the file as a string literal, read_file(\"motd.txt\"): kumo runs the cell again when that file changes, so it must know which file it reads", r.Path, pos.Line, pos.Col, starkit.ReadFileBuiltin)
				}
				if ok && !slices.Contains(d.Files, path) {
					d.Files = append(d.Files, path)
				}
			}
		case *syntax.AssignStmt:
			if n.Op == syntax.EQ {
				targets(n.LHS, bind)
			}
		case *syntax.ForStmt:
			targets(n.Vars, bind)
		case *syntax.DefStmt:
			bound[n.Name] = true
			r.FuncGlobals[posKey(n.Def)] = globalsUsed(n.Body)
		case *syntax.LambdaExpr:
			r.FuncGlobals[posKey(n.Lambda)] = globalsUsed(n.Body)
		case *syntax.LoadStmt:
			d.Loads = append(d.Loads, n.ModuleName())
			for _, id := range n.To {
				bound[id] = true
			}
		}
		return true
	})
	defines := map[string]bool{}
	syntax.Walk(f, func(n syntax.Node) bool {
		if id, ok := n.(*syntax.Ident); ok && isGlobal(id) && bound[id] {
			defines[id.Name] = true
		}
		return true
	})
	// Names surely assigned, in statement order.
	sure := map[string]bool{}
	var sureAll []map[string]bool // sure as of each top-level statement
	for _, stmt := range f.Stmts {
		sureAll = append(sureAll, clone(sure))
		for _, name := range surelyAssigns(stmt) {
			sure[name] = true
		}
	}
	reads := map[string]bool{}
	for i, stmt := range f.Stmts {
		uses(stmt, bound, func(id *syntax.Ident, inFunc bool) {
			if (inFunc && !sure[id.Name]) || (!inFunc && !sureAll[i][id.Name]) {
				reads[id.Name] = true
			}
		})
	}
	if fileErr != nil {
		return nil, fileErr
	}
	sort.Strings(d.Files)
	d.Reads, d.Defines, d.Mutates = sortedSet(reads), sortedSet(defines), mutated(f)
	for _, ref := range c.After {
		dep, err := FindCell(r.Cells, ref)
		if err != nil {
			return nil, fmt.Errorf("%s:%d:1: %s [after: %s]: %v", r.Path, c.StartLine, c.Name(), ref, err)
		}
		if dep.Index >= c.Index {
			return nil, fmt.Errorf("%s:%d:1: %s [after: %s]: a cell can only run after an earlier one", r.Path, c.StartLine, c.Name(), ref)
		}
		d.After = append(d.After, dep.Index)
	}
	return d, nil
}

// literalPath is the path a read_file call gives as a string literal
// (first argument, or path=).
func literalPath(call *syntax.CallExpr) (string, bool) {
	var arg syntax.Expr
	if len(call.Args) > 0 {
		arg = call.Args[0]
		if b, ok := arg.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ { // path = "..."
			arg = b.Y
		}
	}
	lit, ok := arg.(*syntax.Literal)
	if !ok || lit.Token != syntax.STRING {
		return "", false
	}
	return lit.Value.(string), true
}

// targets calls f for each name an assignment target binds: x, and the
// names in (x, [y, z]). x[i] and x.f bind none.
func targets(e syntax.Expr, f func(*syntax.Ident)) {
	switch e := e.(type) {
	case *syntax.Ident:
		f(e)
	case *syntax.TupleExpr:
		for _, x := range e.List {
			targets(x, f)
		}
	case *syntax.ListExpr:
		for _, x := range e.List {
			targets(x, f)
		}
	case *syntax.ParenExpr:
		targets(e.X, f)
	}
}

// surelyAssigns lists the globals a top-level statement assigns whenever
// it runs to its end.
func surelyAssigns(stmt syntax.Stmt) []string {
	var out []string
	switch s := stmt.(type) {
	case *syntax.AssignStmt:
		if s.Op == syntax.EQ {
			targets(s.LHS, func(id *syntax.Ident) { out = append(out, id.Name) })
		}
	case *syntax.DefStmt:
		out = append(out, s.Name.Name)
	case *syntax.LoadStmt:
		for _, id := range s.To {
			out = append(out, id.Name)
		}
	}
	return out
}

// uses calls f for each use (not assignment) of a global in stmt, saying
// whether it is inside a function body.
func uses(stmt syntax.Stmt, bound map[*syntax.Ident]bool, f func(id *syntax.Ident, inFunc bool)) {
	var visit func(n syntax.Node, inFunc bool)
	visit = func(n syntax.Node, inFunc bool) {
		syntax.Walk(n, func(n syntax.Node) bool {
			switch n := n.(type) {
			case *syntax.DefStmt:
				if !inFunc {
					for _, p := range n.Params {
						visit(p, false) // defaults are evaluated when def runs
					}
					for _, s := range n.Body {
						visit(s, true)
					}
					return false
				}
			case *syntax.LambdaExpr:
				if !inFunc {
					for _, p := range n.Params {
						visit(p, false)
					}
					visit(n.Body, true)
					return false
				}
			case *syntax.Ident:
				if isGlobal(n) && !bound[n] {
					f(n, inFunc)
				}
			}
			return true
		})
	}
	visit(stmt, false)
}

// mutatingMethods change their receiver (lists, dicts, sets).
var mutatingMethods = map[string]bool{
	"append": true, "extend": true, "insert": true, "pop": true, "remove": true, "clear": true,
	"update": true, "setdefault": true, "popitem": true, "add": true, "discard": true,
	"difference_update": true, "intersection_update": true, "symmetric_difference_update": true,
}

// mutated lists the globals f may change in place.
func mutated(f *syntax.File) []string {
	set := map[string]bool{}
	// base is the global at the root of x, x[i], x.f, x[i].f...
	var base func(e syntax.Expr) *syntax.Ident
	base = func(e syntax.Expr) *syntax.Ident {
		switch e := e.(type) {
		case *syntax.Ident:
			return e
		case *syntax.IndexExpr:
			return base(e.X)
		case *syntax.DotExpr:
			return base(e.X)
		case *syntax.SliceExpr:
			return base(e.X)
		case *syntax.ParenExpr:
			return base(e.X)
		}
		return nil
	}
	note := func(e syntax.Expr) {
		if id := base(e); id != nil && isGlobal(id) {
			set[id.Name] = true
		}
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.AssignStmt:
			switch lhs := n.LHS.(type) {
			case *syntax.IndexExpr, *syntax.DotExpr, *syntax.SliceExpr:
				note(lhs)
			}
		case *syntax.CallExpr:
			if dot, ok := n.Fn.(*syntax.DotExpr); ok && mutatingMethods[dot.Name.Name] {
				note(dot.X)
			}
		}
		return true
	})
	return sortedSet(set)
}

func clone(m map[string]bool) map[string]bool {
	out := make(map[string]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func isGlobal(id *syntax.Ident) bool {
	b, ok := id.Binding.(*resolve.Binding)
	return ok && b.Scope == resolve.Global
}

// globalsUsed lists the globals a function body uses.
func globalsUsed(body any) []string {
	set := map[string]bool{}
	visit := func(n syntax.Node) bool {
		if id, ok := n.(*syntax.Ident); ok && isGlobal(id) {
			set[id.Name] = true
		}
		return true
	}
	switch b := body.(type) {
	case []syntax.Stmt:
		for _, s := range b {
			syntax.Walk(s, visit)
		}
	case syntax.Expr:
		syntax.Walk(b, visit)
	}
	return sortedSet(set)
}

// posKey identifies a function by where it is defined, as
// starlark.Function.Position() reports it.
func posKey(p syntax.Position) string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// FuncKey is posKey for a position from a running program.
func FuncKey(p syntax.Position) string { return posKey(p) }

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
