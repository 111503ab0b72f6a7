// Package arch holds the tests of kumo's layering: which package may
// import which, and that the state's resource rows are read through the
// fleet only. docs/architecture.md draws the same picture.
package arch

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/kumo-dev/kumo/"

type pkg struct {
	ImportPath string
	Dir        string
	Imports    []string
	GoFiles    []string
}

func packages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		p.ImportPath = strings.TrimPrefix(p.ImportPath, module)
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func within(path string, roots ...string) bool {
	for _, r := range roots {
		if path == r || strings.HasPrefix(path, r+"/") {
			return true
		}
	}
	return false
}

// TestLayers: data flows one way, recipe → cells → runner → builtins →
// fleet → providers, with the state beneath. A package may not import
// one above it.
func TestLayers(t *testing.T) {
	// What each floor may not import.
	forbidden := map[string][]string{
		"lang":      {"runner", "session", "builtins/all", "builtins/units", "fleet", "providers", "state", "tui", "export", "cmd"},
		"state":     {"lang", "runner", "session", "builtins", "fleet", "providers", "tui", "export", "cmd"},
		"providers": {"lang", "runner", "session", "builtins", "fleet", "tui", "export", "cmd"},
		"fleet":     {"lang", "runner", "session", "builtins/all", "builtins/units", "builtins/ssh", "tui", "export", "cmd"},
		"builtins":  {"lang", "runner", "session", "tui", "export", "cmd"},
		"runner":    {"session", "tui", "cmd"},
		"session":   {"tui", "cmd"},
		"tui":       {"cmd"},
	}
	for _, p := range packages(t) {
		for floor, never := range forbidden {
			if !within(p.ImportPath, floor) {
				continue
			}
			for _, imp := range p.Imports {
				imp, ok := strings.CutPrefix(imp, module)
				if !ok {
					continue
				}
				// builtins/starkit is the floor under both builtins and lang.
				if floor == "providers" && within(imp, "providers") || imp == "builtins/starkit" {
					continue
				}
				if within(imp, never...) && !within(imp, floor) {
					t.Errorf("%s imports %s: %s may not import what is above it", p.ImportPath, imp, floor)
				}
			}
		}
	}
}

// TestResourcesThroughTheFleet: only state and fleet query the state's
// resource rows (Resources/Resource with a state.Query); everyone else
// asks the fleet (fleet.Reader, Engine.Survey...).
func TestResourcesThroughTheFleet(t *testing.T) {
	fset := token.NewFileSet()
	for _, p := range packages(t) {
		if within(p.ImportPath, "state", "fleet") {
			continue
		}
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) != 1 {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || (sel.Sel.Name != "Resources" && sel.Sel.Name != "Resource") {
					return true
				}
				if lit, ok := call.Args[0].(*ast.CompositeLit); ok {
					if ty, ok := lit.Type.(*ast.SelectorExpr); ok && ty.Sel.Name == "Query" {
						t.Errorf("%s: %s queries the state's resources directly: ask the fleet", fset.Position(call.Pos()), p.ImportPath)
					}
				}
				return true
			})
		}
	}
}
