package main

import (
	"testing"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins/all"
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
