package lang

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// ParseOverrides turns -p name=value flags into a map of raw values.
func ParseOverrides(flags []string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range flags {
		name, value, ok := strings.Cut(f, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, &InputError{Err: fmt.Errorf("-p %q: want name=value", f)}
		}
		out[name] = value
	}
	return out, nil
}

// ParamValue reads a -p value: a Starlark literal (3, 1.5, True, None,
// "text", [1, 2], {"a": 1}, (1, 2), -4) is taken as that value; anything
// else, including expressions and bare words, is taken as a string, so
// `-p name=demo` needs no quotes.
func ParamValue(s string) starlark.Value {
	expr, err := FileOptions.ParseExpr("-p", s, 0)
	if err != nil || !isLiteral(expr) {
		return starlark.String(s)
	}
	v, err := starlark.EvalExprOptions(FileOptions, &starlark.Thread{Name: "param"}, expr, nil)
	if err != nil {
		return starlark.String(s)
	}
	return v
}

func isLiteral(e syntax.Expr) bool {
	switch e := e.(type) {
	case *syntax.Literal:
		return true
	case *syntax.Ident:
		return e.Name == "True" || e.Name == "False" || e.Name == "None"
	case *syntax.UnaryExpr:
		return (e.Op == syntax.MINUS || e.Op == syntax.PLUS) && isLiteral(e.X)
	case *syntax.ParenExpr:
		return isLiteral(e.X)
	case *syntax.ListExpr:
		return allLiteral(e.List)
	case *syntax.TupleExpr:
		return allLiteral(e.List)
	case *syntax.DictExpr:
		for _, entry := range e.List {
			kv := entry.(*syntax.DictEntry)
			if !isLiteral(kv.Key) || !isLiteral(kv.Value) {
				return false
			}
		}
		return true
	}
	return false
}

func allLiteral(list []syntax.Expr) bool {
	for _, e := range list {
		if !isLiteral(e) {
			return false
		}
	}
	return true
}
