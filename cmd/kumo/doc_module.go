package main

import (
	"fmt"
	"io/fs"
	"strings"

	"go.starlark.net/syntax"

	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/stdlib"
)

// A moduleFunc is a public function of a stdlib module as a recipe calls
// it: "pkg.install" for the _install that `pkg = struct(install =
// _install)` exports, with its parameters and docstring.
type moduleFunc struct {
	Name, Params, Doc string
}

// A moduleDoc is what kumo doc shows of a stdlib module.
type moduleDoc struct {
	Doc   string
	Funcs []moduleFunc
}

// readModuleDoc reads a module's docstring and the functions it exports,
// directly (def name) or as fields of a struct (x = struct(f = _f)).
func readModuleDoc(name, src string) (*moduleDoc, error) {
	f, err := lang.FileOptions.Parse(name, src, 0)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(src, "\n")
	defs := map[string]*syntax.DefStmt{}
	m := &moduleDoc{}
	inStruct := map[string]bool{} // defs a struct exports: listed under its name only
	for i, stmt := range f.Stmts {
		switch st := stmt.(type) {
		case *syntax.ExprStmt:
			if i == 0 {
				m.Doc = docstring([]syntax.Stmt{st})
			}
		case *syntax.DefStmt:
			defs[st.Name.Name] = st
			if !strings.HasPrefix(st.Name.Name, "_") {
				m.Funcs = append(m.Funcs, funcDoc(st.Name.Name, st, lines))
			}
		case *syntax.AssignStmt:
			id, ok := st.LHS.(*syntax.Ident)
			call, isCall := st.RHS.(*syntax.CallExpr)
			if !ok || !isCall || strings.HasPrefix(id.Name, "_") {
				continue
			}
			if fn, ok := call.Fn.(*syntax.Ident); !ok || fn.Name != "struct" {
				continue
			}
			for _, arg := range call.Args {
				kv, ok := arg.(*syntax.BinaryExpr)
				if !ok || kv.Op != syntax.EQ {
					continue
				}
				field, _ := kv.X.(*syntax.Ident)
				target, _ := kv.Y.(*syntax.Ident)
				if field == nil || target == nil || defs[target.Name] == nil {
					continue
				}
				m.Funcs = append(m.Funcs, funcDoc(id.Name+"."+field.Name, defs[target.Name], lines))
				inStruct[target.Name] = true
			}
		}
	}
	funcs := m.Funcs[:0]
	for _, f := range m.Funcs {
		if !inStruct[f.Name] {
			funcs = append(funcs, f)
		}
	}
	m.Funcs = funcs
	return m, nil
}

// firstSentence is a docstring's first sentence, on one line.
func firstSentence(doc string) string {
	doc = strings.Join(strings.Fields(doc), " ")
	if i := strings.Index(doc, ". "); i >= 0 {
		return doc[:i+1]
	}
	return doc
}

func funcDoc(name string, def *syntax.DefStmt, lines []string) moduleFunc {
	var params []string
	for _, p := range def.Params {
		params = append(params, sourceOf(p, lines))
	}
	return moduleFunc{Name: name, Params: strings.Join(params, ", "), Doc: docstring(def.Body)}
}

// docstring is the string literal a body starts with, its lines dedented.
func docstring(body []syntax.Stmt) string {
	if len(body) == 0 {
		return ""
	}
	e, ok := body[0].(*syntax.ExprStmt)
	if !ok {
		return ""
	}
	lit, ok := e.X.(*syntax.Literal)
	if !ok || lit.Token != syntax.STRING {
		return ""
	}
	out := strings.Split(strings.TrimSpace(lit.Value.(string)), "\n")
	for i := range out {
		out[i] = strings.TrimPrefix(out[i], "    ")
	}
	return strings.Join(out, "\n")
}

// sourceOf is the text of a parameter as written ("timeout = \"30m\"").
func sourceOf(e syntax.Expr, lines []string) string {
	start, end := e.Span()
	if start.Line != end.Line || int(start.Line) > len(lines) {
		return "…"
	}
	line := lines[start.Line-1]
	from, to := int(start.Col)-1, int(end.Col)-1
	if from < 0 || to > len(line) || from > to {
		return "…"
	}
	return strings.ReplaceAll(line[from:to], " = ", "=")
}

// moduleSource finds a stdlib module by "pkg", "pkg.star" or
// "@stdlib//pkg.star".
func moduleSource(name string) (string, string, bool) {
	name = strings.TrimPrefix(name, "@stdlib//")
	if !strings.HasSuffix(name, ".star") {
		name += ".star"
	}
	src, err := fs.ReadFile(stdlib.FS, name)
	return name, string(src), err == nil
}

// printModuleDoc prints a stdlib module: its docstring, then each function
// it exports with its parameters and the first line of its docstring.
func printModuleDoc(opts *DocOptions, name, src string) error {
	m, err := readModuleDoc(name, src)
	if err != nil {
		return err
	}
	fmt.Fprintln(opts.Out, m.Doc)
	if len(m.Funcs) > 0 {
		fmt.Fprintln(opts.Out, "\nFunctions:")
	}
	for _, f := range m.Funcs {
		summary := firstSentence(f.Doc)
		fmt.Fprintf(opts.Out, "  %s(%s)\n      %s\n", f.Name, f.Params, summary)
	}
	fmt.Fprintf(opts.Out, "\nkumo doc %s.NAME shows one in full.\n", strings.TrimSuffix(name, ".star"))
	return nil
}

// printModuleFunc prints one exported function of a stdlib module in
// full ("pkg.install"); ok is false when name is none.
func printModuleFunc(opts *DocOptions, name string) (bool, error) {
	module, _, found := strings.Cut(name, ".")
	if !found {
		return false, nil
	}
	file, src, ok := moduleSource(module)
	if !ok {
		return false, nil
	}
	m, err := readModuleDoc(file, src)
	if err != nil {
		return false, err
	}
	for _, f := range m.Funcs {
		if f.Name == name {
			fmt.Fprintf(opts.Out, "%s(%s)  (load(\"@stdlib//%s\", \"%s\"))\n%s\n", f.Name, f.Params, file, module, f.Doc)
			return true, nil
		}
	}
	return false, nil
}
