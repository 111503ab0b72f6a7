// Package arch holds the tests of kumo's layering: which package may
// import which, and that the state's resource rows are read through the
// fleet only. docs/architecture.md draws the same picture.
package arch

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const module = "github.com/kumo-dev/kumo/"

type pkg struct {
	ImportPath string
	Dir        string
	Imports    []string
	GoFiles    []string
}

// listed is the module's packages, listed once for both tests (go list
// is most of their time).
var listed = sync.OnceValues(func() ([]pkg, error) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{join .Imports \" \"}}\t{{join .GoFiles \" \"}}", module+"...").Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v", err)
	}
	var pkgs []pkg
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("go list: %q is not 4 fields", line)
		}
		pkgs = append(pkgs, pkg{ImportPath: strings.TrimPrefix(f[0], module), Dir: f[1], Imports: strings.Fields(f[2]), GoFiles: strings.Fields(f[3])})
	}
	return pkgs, nil
})

func packages(t *testing.T) []pkg {
	t.Helper()
	pkgs, err := listed()
	if err != nil {
		t.Fatal(err)
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

// TestKumoKeepsDeadCodeElimination: nothing in kumo may call a method
// by a name known only when it runs (reflect's Method or MethodByName,
// as executing a text/template or html/template does). One such call
// makes the linker keep every exported method of every type kumo uses:
// the AWS SDK's EC2 client alone has thousands, which made kumo twice
// the size and each kumo process a third slower to start.
func TestKumoKeepsDeadCodeElimination(t *testing.T) {
	if testing.Short() {
		t.Skip("links kumo (5 s): make test runs it")
	}
	cmd := exec.Command("go", "build", "-ldflags=-dumpdep", "-o", os.DevNull, module+"cmd/kumo")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, tail(out))
	}
	marked := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		// "caller -> fn <ReflectMethod>" or "fn <ReflectMethod> -> callee".
		if before, _, ok := strings.Cut(line, " <ReflectMethod>"); ok {
			if i := strings.LastIndex(before, " -> "); i >= 0 {
				before = before[i+len(" -> "):]
			}
			marked[before] = true
		}
	}
	for fn := range marked {
		t.Errorf("kumo reaches %s, which calls a method by a name known only when it runs, so the linker keeps every exported method. "+
			"Write the output with fmt rather than a template (as export.HTML does); "+
			"go build -ldflags=-dumpdep ./cmd/kumo 2>&1 | grep ReflectMethod, or github.com/aarzilli/whydeadcode, shows who reaches it", fn)
	}
}

// tail is the end of a long output, for a failure message.
func tail(b []byte) []byte {
	if len(b) > 4000 {
		return b[len(b)-4000:]
	}
	return b
}
