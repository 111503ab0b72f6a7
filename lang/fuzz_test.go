package lang

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins/starkit"
)

// Fuzz targets for what a user types: the recipe (cells, markers, the
// parameters cell) and -p values. `make test` runs each a few seconds;
// `make fuzz` as long as asked. Seeds are real recipes' shapes.

var recipeSeeds = []string{
	"",
	"print(1)\n",
	"# a comment only\n",
	"# %% [markdown]\n# Title\n\n# %% Setup\nx = 1\n",
	"# %% Parameters [parameters]\nstudents = 40\nflavor = \"small\"\n\n# %% Make\nprint(students)\n",
	"# %% A\nx = 1\n# %% B [after: A] [always]\ny = x + 1\n# %% Teardown [manual]\nz = 0\n",
	"# %%\n# %%\n# %%",
	"# %% [parameters]\nn = 1\n# %% [parameters]\nm = 2\n",
	"x = 1\r\n# %% Win\r\ny = x\r\n",
	"# %% title with [unclosed\nprint('ok')\n",
	"def f(a, b=2):\n    return a + b\n# %% use\nprint(f(1))\n",
	"# %% bad\nx = (1,\n",
	"# %% undefined\nprint(nope)\n",
	"# %%\tTabbed [md]\n# prose\n",
	"load(\"pkg.star\", \"pkg\")\n# %% x\npkg.install([], [])\n",
	"preamble\n# %%\n# %% [markdown]\n",
}

// FuzzSplitCells: the cells are the recipe cut at its markers, in order,
// with nothing lost but a blank preamble.
func FuzzSplitCells(f *testing.F) {
	for _, s := range recipeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		cells := SplitCells(src)
		var joined strings.Builder
		line := 0
		for i, c := range cells {
			if c.Index != i {
				t.Fatalf("cell %d has index %d", i, c.Index)
			}
			if c.StartLine <= line {
				t.Fatalf("cell %d starts at line %d, not after line %d", i, c.StartLine, line)
			}
			line = c.StartLine
			if i > 0 && !isMarker(strings.SplitAfter(c.Source, "\n")[0]) {
				t.Fatalf("cell %d does not start at a marker: %q", i, c.Source)
			}
			if c.Source == "" {
				t.Fatalf("cell %d is empty", i)
			}
			c.Hash()
			c.Name()
			c.BodyLine(c.StartLine)
			joined.WriteString(c.Source)
		}
		rest := joined.String()
		if !strings.HasSuffix(src, rest) || strings.TrimSpace(src[:len(src)-len(rest)]) != "" {
			t.Fatalf("the cells do not make up the recipe:\n%q\nvs\n%q", rest, src)
		}
		for i, c := range cells {
			if c.Title == "" {
				continue
			}
			found, err := FindCell(cells, strconv.Itoa(i))
			if c.Runnable() && (err != nil || found != c) {
				t.Fatalf("FindCell(%d) = %v, %v", i, found, err)
			}
		}
	})
}

var positionRE = regexp.MustCompile(`^fuzz\.star:\d+:\d+: `)

// FuzzParseRecipe: any text either parses or is refused with an input
// error that points at file:line:col; it never panics.
func FuzzParseRecipe(f *testing.F) {
	for _, s := range recipeSeeds {
		f.Add(s)
	}
	known := func(name string) bool { return name == "print" || name == "unit_group" || name == "spec" }
	f.Fuzz(func(t *testing.T, src string) {
		r, err := ParseRecipe("fuzz.star", src, known)
		if err != nil {
			var ie *starkit.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("not an input error: %T %v", err, err)
			}
			if !positionRE.MatchString(err.Error()) {
				t.Fatalf("the error does not say where: %v", err)
			}
			return
		}
		if len(r.Deps) != len(r.Cells) {
			t.Fatalf("%d cells, %d dependency sets", len(r.Cells), len(r.Deps))
		}
		r.Defaults(starlark.StringDict{})
		for i := range r.Cells {
			r.Ancestors(i)
		}
	})
}

// FuzzOverride: a -p value is read against every kind of default; when
// it is taken, it has the default's type.
func FuzzOverride(f *testing.F) {
	for _, s := range []string{"3", "-4", "1.5", "True", "false", "None", `"text"`, "[1, 2]", `{"a": 1}`, "(1,)", "demo", "1e400", "0x10", "[", `"unterminated`, "yes", "1_000"} {
		f.Add(s)
	}
	defaults := []starlark.Value{
		starlark.String("s"), starlark.MakeInt(1), starlark.Float(1.5), starlark.True,
		starlark.NewList(nil), starlark.NewDict(0), starlark.Tuple{}, starlark.None,
	}
	f.Fuzz(func(t *testing.T, raw string) {
		ParamValue(raw)
		flags, err := ParseOverrides([]string{"name=" + raw})
		if err != nil || flags["name"] != raw {
			t.Fatalf("ParseOverrides(name=%q) = %v, %v", raw, flags, err)
		}
		for _, def := range defaults {
			v, err := Override("name", raw, def)
			if err != nil {
				var ie *starkit.InputError
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), "-p name=") {
					t.Fatalf("Override(%q, %s): a bad error: %v", raw, def.Type(), err)
				}
				continue
			}
			want := def.Type()
			if def == starlark.None {
				continue
			}
			if _, isString := def.(starlark.String); isString && v.Type() != "string" {
				t.Fatalf("Override(%q) against a string gave a %s", raw, v.Type())
			}
			if v.Type() != want {
				t.Fatalf("Override(%q) against a %s gave a %s", raw, want, v.Type())
			}
		}
	})
}
