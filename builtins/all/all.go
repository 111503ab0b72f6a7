// Package all gathers every builtin family into the names a recipe sees.
package all

import (
	"sort"

	"go.starlark.net/lib/json"
	"go.starlark.net/lib/math"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/files"
	"github.com/kumo-dev/kumo/builtins/secret"
	"github.com/kumo-dev/kumo/builtins/ssh"
	"github.com/kumo-dev/kumo/builtins/units"
	"github.com/kumo-dev/kumo/builtins/wait"
)

// Functions lists every builtin function, by family.
func Functions() []*builtins.Def {
	var defs []*builtins.Def
	for _, family := range [][]*builtins.Def{units.Builtins, ssh.Builtins, files.Builtins, wait.Builtins, secret.Builtins} {
		defs = append(defs, family...)
	}
	return defs
}

// Docs lists every function and method, sorted by name, for kumo doc.
func Docs() []*builtins.Def {
	defs := append(Functions(), units.MethodDefs()...)
	defs = append(defs, starlarkDocs...)
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
	return g
}

// starlarkDocs document the names kumo adds from go.starlark.net, and
// fail, which recipes use to stop a cell.
var starlarkDocs = []*builtins.Def{{
	Name: "fail",
	Doc: `fail(*args, sep=" ")
Stops the cell with an error made of args. The cell is marked failed; the
next run resumes at it.`,
}, {
	Name: "struct",
	Doc: `struct(**fields)
Returns an immutable value with the given fields (s.name).`,
}, {
	Name: "json",
	Doc: `json.encode(x), json.decode(s), json.indent(s)
JSON encoding and decoding (go.starlark.net/lib/json).`,
}}
