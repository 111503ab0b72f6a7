package lang

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/kumo-dev/kumo/builtins/starkit"
)

func TestParamValue(t *testing.T) {
	tests := []struct{ in, want, typ string }{
		{"3", "3", "int"},
		{"-4", "-4", "int"},
		{"1.5", "1.5", "float"},
		{"True", "True", "bool"},
		{"None", "None", "NoneType"},
		{`"quoted"`, `"quoted"`, "string"},
		{"[1, 2]", "[1, 2]", "list"},
		{`{"a": 1}`, `{"a": 1}`, "dict"},
		{"(1, 2)", "(1, 2)", "tuple"},
		{"demo", `"demo"`, "string"},       // a bare word is a string
		{"1+2", `"1+2"`, "string"},         // expressions are not evaluated
		{"len([])", `"len([])"`, "string"}, // nor calls
		{"my node", `"my node"`, "string"}, // nor anything unparsable
		{"[x]", `"[x]"`, "string"},         // names inside literals are not literals
		{"", `""`, "string"},
	}
	for _, tt := range tests {
		v := ParamValue(tt.in)
		if v.String() != tt.want || v.Type() != tt.typ {
			t.Errorf("ParamValue(%q) = %s (%s), want %s (%s)", tt.in, v, v.Type(), tt.want, tt.typ)
		}
	}
}

func TestParseOverrides(t *testing.T) {
	got, err := ParseOverrides([]string{"a=1", "b=x=y", "c="})
	if err != nil {
		t.Fatal(err)
	}
	if got["a"] != "1" || got["b"] != "x=y" || got["c"] != "" || len(got) != 3 {
		t.Errorf("ParseOverrides = %v", got)
	}
	for _, bad := range []string{"novalue", "=1"} {
		if _, err := ParseOverrides([]string{bad}); !starkit.IsInputError(err) {
			t.Errorf("ParseOverrides(%q) error = %v, want an input error", bad, err)
		}
	}
}

const paramsRecipe = `# %% [parameters]
nodes = 3
name = "demo"

# %% Uses nodes
x = nodes * 2

# %% Uses nothing
y = 1

# %% Uses name in a function
def f():
    return name
`

func TestRecipeParams(t *testing.T) {
	r, err := ParseRecipe("p.star", paramsRecipe, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Params, ","); got != "nodes,name" {
		t.Errorf("Params = %s, want nodes,name", got)
	}
	// What each cell reads, function bodies included, and defines.
	wantReads := []string{"", "nodes", "", "name"}
	wantDefines := []string{"name,nodes", "x", "y", "f"}
	for i, c := range r.Cells {
		d := r.Deps[c.Index]
		if got := strings.Join(d.Reads, ","); got != wantReads[i] && !r.IsParams(c) {
			t.Errorf("cell %d reads %q, want %q", i, got, wantReads[i])
		}
		if got := strings.Join(d.Defines, ","); got != wantDefines[i] {
			t.Errorf("cell %d defines %q, want %q", i, got, wantDefines[i])
		}
	}
	if err := r.CheckOverrides(map[string]string{"nodes": "5"}); err != nil {
		t.Errorf("known override refused: %v", err)
	}
	err = r.CheckOverrides(map[string]string{"nodez": "5"})
	if !starkit.IsInputError(err) || !strings.Contains(err.Error(), "nodez") || !strings.Contains(err.Error(), "nodes, name") {
		t.Errorf("unknown override: error %v, want an input error naming it and listing nodes, name", err)
	}
}

func TestDeps(t *testing.T) {
	src := `# %% [parameters]
students = 40
# %% A
load("lib.star", "helper")
names = ["s%d" % i for i in range(students)]
count = len(names)
# %% B [after: A]
total = 0
for n in names:
    total += 1
names.append("x")
hosts[0] = 1
def g(x, y = count):
    return x + seats
# %% C [always]
a, (b, c) = 1, (2, 3)
print(a, b, c, total)
`
	known := func(s string) bool { return s == "hosts" || s == "seats" }
	r, err := ParseRecipe("d.star", src, known)
	if err != nil {
		t.Fatal(err)
	}
	check := func(cell int, what string, got []string, want string) {
		t.Helper()
		if strings.Join(got, ",") != want {
			t.Errorf("cell %d %s = %q, want %q", cell, what, strings.Join(got, ","), want)
		}
	}
	check(1, "reads", r.Deps[1].Reads, "students") // len, range: universal; names: assigned first
	check(1, "defines", r.Deps[1].Defines, "count,helper,names")
	check(1, "loads", r.Deps[1].Loads, "lib.star")
	// total is assigned before total += 1 reads it; names.append and
	// hosts[0] = ... read (and mutate) them; g's default reads count and
	// its body seats.
	check(2, "reads", r.Deps[2].Reads, "count,hosts,names,seats")
	check(2, "defines", r.Deps[2].Defines, "g,n,total")
	if len(r.Deps[2].After) != 1 || r.Deps[2].After[0] != 1 {
		t.Errorf("cell 2 after = %v, want [1]", r.Deps[2].After)
	}
	check(3, "reads", r.Deps[3].Reads, "total")
	check(3, "defines", r.Deps[3].Defines, "a,b,c")
	if !r.Cells[3].Always {
		t.Error("cell 3 is not [always]")
	}
	// The function g uses the global seats in its body.
	var fg []string
	for _, v := range r.FuncGlobals {
		fg = v
	}
	check(2, "g's globals", fg, "seats")

	for _, bad := range []struct{ src, want string }{
		{"# %% A [after: B]\nx = 1\n# %% B\ny = 2\n", "d.star:1:1: cell 0 \"A\" [after: B]: a cell can only run after an earlier one"},
		{"# %% A\nx = 1\n# %% B [after: Z]\ny = 2\n", `no cell is titled "Z"`},
	} {
		if _, err := ParseRecipe("d.star", bad.src, nil); err == nil || !starkit.IsInputError(err) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: error %v, want an input error containing %q", bad.src, err, bad.want)
		}
	}
}

func TestOverrideTypes(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		def  starlark.Value
		want string // the value's repr, or the error
	}{
		{"5", starlark.MakeInt(40), "5"},
		{"many", starlark.MakeInt(40), `-p n=many: n is an int (its default is 40); "many" is not`},
		{"2", starlark.Float(1.5), "2.0"},
		{"x", starlark.Float(1.5), "is a float"},
		{"3", starlark.String("a"), `"3"`},
		{`"quoted"`, starlark.String("a"), `"quoted"`},
		{"true", starlark.False, "True"},
		{"maybe", starlark.False, "is a bool"},
		{"[1, 2]", starlark.NewList(nil), "[1, 2]"},
		{"oops", starlark.NewList(nil), "is a list"},
		{"anything", starlark.None, `"anything"`},
	} {
		v, err := Override("n", tt.raw, tt.def)
		got := ""
		if err != nil {
			got = err.Error()
			if !starkit.IsInputError(err) {
				t.Errorf("%s: not an input error: %v", tt.raw, err)
			}
		} else {
			got = v.String()
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("Override(%q, default %s) = %s, want %s", tt.raw, tt.def, got, tt.want)
		}
	}
}

func TestRecipeErrorsHaveLocations(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"syntax", "# %% A\nx = 1\n# %% B\ny = (1 +\n", "r.star:5:1:"},
		{"undefined in a later cell", "# %% A\nx = 1\n# %% B\nprint(x)\nprint(zz)\n", "r.star:5:7: undefined: zz"},
		{"two parameter cells", "# %% [parameters]\na = 1\n# %% [parameters]\nb = 2\n", "r.star:3:1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRecipe("r.star", tt.src, nil)
			if err == nil || !starkit.IsInputError(err) {
				t.Fatalf("error = %v, want an input error", err)
			}
			if got := FormatError(err); !strings.Contains(got, tt.want) {
				t.Errorf("error %q does not contain %q", got, tt.want)
			}
		})
	}
}

func TestRecipeSeesEarlierGlobalsAndBuiltins(t *testing.T) {
	src := "# %% A\nx = 1\n# %% B\ny = x + known()\n"
	if _, err := ParseRecipe("r.star", src, func(n string) bool { return n == "known" }); err != nil {
		t.Fatalf("valid recipe refused: %v", err)
	}
}

func TestSessionRunsCellsInSharedGlobalsWithScriptFeatures(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "lib.star"), []byte("def double(n):\n    return 2 * n\n"), 0o644)
	src := `# %% A
load("lib.star", "double")
seen = set([1, 2, 2])
def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)
# %% B
total = 0
for i in range(3):
    total += i
while total < 10:
    total += double(1)
result = [len(seen), fact(5), total]
`
	path := filepath.Join(dir, "r.star")
	r, err := ParseRecipe(path, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := NewInterpreter(r.Dir, starlark.StringDict{"struct": starlark.NewBuiltin("struct", starlarkstruct.Make)})
	for _, c := range r.Cells {
		if err := s.ExecCell(context.Background(), path, c); err != nil {
			t.Fatalf("%s: %s", c.Name(), FormatError(err))
		}
	}
	if got, want := s.Globals["result"].String(), `[2, 120, 11]`; got != want {
		t.Errorf("result = %s, want %s", got, want)
	}
}

func TestSessionRuntimeErrorPointsAtTheLine(t *testing.T) {
	src := "# %% A\ndef f(x):\n    return x + 1\n# %% B\ny = f(\"s\")\n"
	r, err := ParseRecipe("r.star", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := NewInterpreter(".", starlark.StringDict{})
	s.ExecCell(context.Background(), "r.star", r.Cells[0])
	err = s.ExecCell(context.Background(), "r.star", r.Cells[1])
	msg := FormatError(err)
	if !strings.HasPrefix(msg, "r.star:3:14: unknown binary op: string + int") || !strings.Contains(msg, "r.star:5:6: in <toplevel>") {
		t.Errorf("error = %q, want the innermost location first and a backtrace", msg)
	}
}

func TestLoadUnknownStdlibModule(t *testing.T) {
	s := NewInterpreter(".", starlark.StringDict{})
	f, err := FileOptions.Parse("r.star", `load("@stdlib//nope.star", "x")`, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = s.ExecFile(context.Background(), f)
	if err == nil || !strings.Contains(err.Error(), "no module @stdlib//nope.star") || !strings.Contains(err.Error(), "http.star") {
		t.Errorf("error = %v, want one naming the module and listing the stdlib", err)
	}
}

func TestModulesLoadRelativeToThemselves(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "lib"), 0o755)
	os.WriteFile(filepath.Join(dir, "lib", "a.star"), []byte("load(\"b.star\", \"b\")\na = b + 1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "lib", "b.star"), []byte("b = 41\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.star"), []byte("b = 0\n"), 0o644) // the recipe's sibling must not be the one loaded
	path := filepath.Join(dir, "r.star")
	r, err := ParseRecipe(path, "load(\"lib/a.star\", \"a\")\nload(\"b.star\", \"b\")\nresult = [a, b]\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	s := NewInterpreter(r.Dir, starlark.StringDict{})
	if err := s.ExecCell(context.Background(), path, r.Cells[0]); err != nil {
		t.Fatal(FormatError(err))
	}
	if got := s.Globals["result"].String(); got != "[42, 0]" {
		t.Errorf("result = %s, want [42, 0]", got)
	}
}

// A syntax error names the bracket left open on an earlier line, which
// is where the mistake is; strings and comments do not count.
func TestUnclosedBracket(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"# %% A\nz = max(1,\n    2\nw = 3\n", `r.star:4:2: got identifier, want ',' (the '(' opened at 2:8 is never closed)`},
		{"# %% A\ns = \"(\" + ')' # (\nx = [1,\n  \"\"\"a\n(\"\"\"\ny = 2\n", `(the '[' opened at 3:5 is never closed)`},
		{"# %% A\nx = (1 +)\n", "r.star:2:9: got ')', want primary expression"},
	} {
		r, err := ParseRecipe("r.star", tc.src, nil)
		if err == nil {
			_, err = r.Cells[0].Parse("r.star")
		}
		got := FormatError(err)
		if !strings.Contains(got, tc.want) {
			t.Errorf("%q: error %q, want it to hold %q", tc.src, got, tc.want)
		}
		if strings.Contains(tc.want, "r.star:2:9") && strings.Contains(got, "never closed") {
			t.Errorf("%q: %q names a bracket closed on its own line", tc.src, got)
		}
	}
}
