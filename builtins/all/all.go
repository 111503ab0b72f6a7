// Package all gathers every builtin family into the names a recipe sees.
package all

import (
	"sort"
	"strings"

	"go.starlark.net/lib/json"
	"go.starlark.net/lib/math"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/files"
	"github.com/kumo-dev/kumo/builtins/mesh"
	"github.com/kumo-dev/kumo/builtins/secret"
	"github.com/kumo-dev/kumo/builtins/ssh"
	"github.com/kumo-dev/kumo/builtins/units"
	"github.com/kumo-dev/kumo/builtins/wait"
)

// Functions lists every builtin function, by family.
func Functions() []*builtins.Def {
	var defs []*builtins.Def
	for _, family := range [][]*builtins.Def{units.Builtins, ssh.Builtins, files.Builtins, wait.Builtins, secret.Builtins, mesh.Builtins} {
		defs = append(defs, family...)
	}
	return defs
}

// Docs lists every function, method, value type and global, sorted by
// name, for kumo doc and the REPL's help().
func Docs() []*builtins.Def {
	defs := append(Functions(), units.MethodDefs()...)
	defs = append(defs, secret.MethodDefs()...)
	defs = append(defs, units.ValueDocs...)
	defs = append(defs, ssh.ValueDocs...)
	defs = append(defs, starlarkDocs...)
	defs = append(defs, replDocs...)
	sort.Slice(defs, func(i, j int) bool { return defs[i].Name < defs[j].Name })
	return defs
}

// Globals are the names every recipe and module starts with: kumo's
// builtins and a few of go.starlark.net's libraries. Not its time module:
// time.now() would make replay non-deterministic.
func Globals() starlark.StringDict {
	g := starlark.StringDict{
		"struct": starlark.NewBuiltin("struct", starlarkstruct.Make),
		"json":   json.Module,
		"math":   math.Module,
	}
	for _, d := range Functions() {
		g[d.Name] = d.Builtin()
	}
	g["secret"] = secret.Global() // callable, with methods
	return g
}

// starlarkDocs document the names kumo adds from go.starlark.net, and
// fail, which recipes use to stop a cell.
var starlarkDocs = []*builtins.Def{{
	Name: "fail", Kind: builtins.DocStarlark,
	Doc: `fail(*args, sep=" ")
Stops the cell with an error made of args. The cell is marked failed; the
next run resumes at it.`,
}, {
	Name: "struct", Kind: builtins.DocStarlark,
	Doc: `struct(**fields)
Returns an immutable value with the given fields (s.name). Structs of
plain values are journaled and compared by content, like lists and dicts.`,
}, {
	Name: "json", Kind: builtins.DocStarlark,
	Doc: `json.encode(x), json.decode(s), json.indent(s, prefix="", indent="\t")
JSON encoding and decoding (go.starlark.net/lib/json): encode turns
None, bools, numbers, strings, lists, tuples, dicts and structs into JSON
text; decode does the reverse; indent reformats JSON text.`,
}, {
	Name: "math", Kind: builtins.DocStarlark,
	Doc: `math.NAME
Mathematical functions and constants (go.starlark.net/lib/math): ` + mathNames() + `.`,
}}

// replDocs are the names only kumo repl has.
var replDocs = []*builtins.Def{{
	Name: "help", Kind: builtins.DocREPL,
	Doc: `help(name=None)
At the REPL: prints the documentation of a builtin, method, value type or
stdlib module, given by name ("ssh_run") or as the value itself
(help(ssh_run), help(ug)). help() lists everything, like kumo doc.`,
}, {
	Name: "exit", Kind: builtins.DocREPL,
	Doc: `exit()
At the REPL: leaves it, as Ctrl-D on an empty line does (quit() too).`,
}, {
	Name: "quit", Kind: builtins.DocREPL,
	Doc: `quit()
At the REPL: leaves it, as Ctrl-D on an empty line does (exit() too).`,
}}

func mathNames() string {
	var names []string
	for name := range math.Module.Members {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
