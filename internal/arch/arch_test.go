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

// rowNames are the state's resource rows and what they are made of:
// the fleet's to read and write, and nobody else's.
var rowNames = map[string]bool{
	"Resource": true, "Query": true, "Data": true, "Part": true, "Hop": true,
	"ResourceStatus": true, "KindGroup": true, "KindUnit": true, "KindNode": true,
	"Intent": true, "Ready": true, "Deleting": true,
}

// rowCalls are the state's methods that read or write resource rows.
var rowCalls = map[string]bool{
	"Resources": true, "Resource": true, "InsertIntents": true, "UpdateResource": true, "DeleteResource": true,
}

// TestResourcesThroughTheFleet: only state and fleet know the state's
// resource rows; everyone else works with the fleet's Group, Unit and
// Node values (fleet.Reader, Engine.Survey...). Tests may make rows.
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
			stateName := ""
			for _, imp := range f.Imports {
				if imp.Path.Value == `"`+module+`state"` {
					stateName = "state"
					if imp.Name != nil {
						stateName = imp.Name.Name
					}
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if x, ok := n.X.(*ast.Ident); ok && stateName != "" && x.Name == stateName && rowNames[n.Sel.Name] {
						t.Errorf("%s: %s uses state.%s: the rows are the fleet's; use its Group, Unit and Node", fset.Position(n.Pos()), p.ImportPath, n.Sel.Name)
					}
				case *ast.CallExpr:
					if sel, ok := n.Fun.(*ast.SelectorExpr); ok && rowCalls[sel.Sel.Name] {
						t.Errorf("%s: %s calls %s on the state's resources: ask the fleet", fset.Position(n.Pos()), p.ImportPath, sel.Sel.Name)
					}
				}
				return true
			})
		}
	}
}
