package lang_test

import (
	"context"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/kumo-dev/kumo/builtins/all"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/lang"
)

// A builtin names the stdlib step it works for: the call the recipe made
// and, when that step calls another, the inner one.
func TestStepName(t *testing.T) {
	var seen []string
	globals := all.Globals()
	globals["ssh_run"] = starlark.NewBuiltin("ssh_run", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		seen = append(seen, starkit.StepName(thread))
		return starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{"stdout": starlark.String(""), "node": starlark.String("n")}), nil
	})
	s := lang.NewInterpreter(".", globals)
	src := `
load("@stdlib//pkg.star", "pkg")
load("@stdlib//jupyterhub.star", "jupyterhub")
ssh_run("n", "true")
pkg.install("n", "curl")
jupyterhub.install("n")
`
	f, err := lang.FileOptions.Parse("r.star", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ExecFile(context.Background(), f); err != nil {
		t.Fatal(lang.FormatError(err))
	}
	want := []string{"", "pkg.install", "jupyterhub.install › pkg.install"}
	if len(seen) != len(want) {
		t.Fatalf("step names = %q, want %q", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Errorf("call %d: step name %q, want %q", i+1, seen[i], want[i])
		}
	}
}
