package lang

import (
	"fmt"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/kumo-dev/kumo/builtins/starkit"
)

// ParseOverrides turns -p name=value flags into a map of raw values.
func ParseOverrides(flags []string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range flags {
		name, value, ok := strings.Cut(f, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, &starkit.InputError{Err: fmt.Errorf("-p %q: want name=value", f)}
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

// Defaults runs the parameters cell on its own and returns the values it
// assigns. The cell holds values only, so this touches nothing; if it
// cannot run alone (it calls a builtin that needs a run), ok is false
// and -p values are read without a type to check them against.
func (r *Recipe) Defaults(builtins starlark.StringDict) (defaults starlark.StringDict, ok bool) {
	c := r.ParamCell()
	if c == nil {
		return nil, true
	}
	f, err := c.Parse(r.Path)
	if err != nil {
		return nil, false
	}
	globals := starlark.StringDict{}
	for k, v := range builtins {
		globals[k] = v
	}
	thread := &starlark.Thread{Name: "defaults", Print: func(*starlark.Thread, string) {}}
	starkit.SetRecipeDir(thread, filepath.Dir(r.Path)) // as Interpreter does
	if err := starlark.ExecREPLChunk(f, thread, globals); err != nil {
		return nil, false
	}
	out := starlark.StringDict{}
	for _, name := range r.Params {
		out[name] = globals[name]
	}
	return out, true
}

// Override reads the -p value raw of parameter name against its default
// def (nil when unknown): a string parameter takes the text as it is
// (`-p name=3` is "3"), a number must be a number, a bool True or False
// (true/false too), a list a list, and so on. A secret cannot be given
// on the command line.
func Override(name, raw string, def starlark.Value) (starlark.Value, error) {
	v := ParamValue(raw)
	if def == nil || def == starlark.None {
		return v, nil
	}
	bad := func(want string) error {
		return starkit.Inputf("-p %s=%s: %s is %s (its default is %s); %q is not", name, raw, name, want, def.String(), raw)
	}
	switch def.(type) {
	case starlark.String:
		if s, ok := v.(starlark.String); ok {
			return s, nil // a quoted literal, unquoted
		}
		return starlark.String(raw), nil
	case starlark.Int:
		if _, ok := v.(starlark.Int); ok {
			return v, nil
		}
		return nil, bad("an int")
	case starlark.Float:
		switch x := v.(type) {
		case starlark.Float:
			return x, nil
		case starlark.Int:
			return starlark.Float(x.Float()), nil
		}
		return nil, bad("a float")
	case starlark.Bool:
		switch raw {
		case "true", "yes", "on":
			return starlark.True, nil
		case "false", "no", "off":
			return starlark.False, nil
		}
		if _, ok := v.(starlark.Bool); ok {
			return v, nil
		}
		return nil, bad("a bool (True or False)")
	}
	if def.Type() == "secret" {
		return nil, starkit.Inputf("-p %s: %s is %s, and secrets never come from the command line: set its KUMO_SECRET_ variable or let kumo ask (kumo doc secret)", name, name, def.String())
	}
	if v.Type() != def.Type() {
		return nil, bad("a " + def.Type())
	}
	return v, nil
}
