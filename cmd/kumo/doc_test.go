package main

import (
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins/all"
	"github.com/kumo-dev/kumo/stdlib"
)

// Every name a recipe starts with, and every REPL-only name, has a page
// in kumo doc.
func TestEveryGlobalIsDocumented(t *testing.T) {
	documented := map[string]bool{}
	for _, d := range all.Docs() {
		documented[d.Name] = true
	}
	names := all.Globals().Keys()
	for name := range replBuiltins(IO{}, new(bool)) {
		names = append(names, name)
	}
	for _, name := range names {
		if !documented[name] {
			t.Errorf("kumo doc has no page for %s", name)
		}
	}
	// fail comes from Starlark's universe, not the globals: it has one too.
	if !documented["fail"] || starlark.Universe["fail"] == nil {
		t.Error("fail has no page")
	}
}

// Every stdlib module has a docstring, and every function it exports has
// one too, with its parameters as written: kumo doc shows them.
func TestEveryStdlibFunctionIsDocumented(t *testing.T) {
	for _, name := range stdlib.Names() {
		file, src, ok := moduleSource(name)
		if !ok {
			t.Fatalf("%s: not found", name)
		}
		m, err := readModuleDoc(file, src)
		if err != nil {
			t.Fatal(err)
		}
		if m.Doc == "" || len(m.Funcs) == 0 {
			t.Errorf("%s: no docstring or no functions", name)
		}
		for _, f := range m.Funcs {
			if f.Doc == "" {
				t.Errorf("%s: %s has no docstring", name, f.Name)
			}
			if strings.Contains(f.Params, "…") {
				t.Errorf("%s: %s(%s): a parameter could not be shown", name, f.Name, f.Params)
			}
		}
	}
	var out strings.Builder
	if ok, err := printModuleFunc(&DocOptions{IO: IO{Out: &out}}, "pkg.install"); !ok || err != nil {
		t.Fatalf("kumo doc pkg.install: %v %v", ok, err)
	}
	if !strings.HasPrefix(out.String(), `pkg.install(targets, packages, recommends=True, timeout="30m")`) {
		t.Errorf("kumo doc pkg.install:\n%s", out.String())
	}
}
