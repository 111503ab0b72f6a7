package units

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/providers/local"
)

func evalSpec(t *testing.T, src string) (starlark.Value, error) {
	t.Helper()
	thread := &starlark.Thread{Name: "test"}
	env := &builtins.Env{Run: "r", Providers: map[string]providers.Provider{"local": local.New(t.TempDir())}}
	env.Attach(thread)
	globals, err := starlark.ExecFileOptions(lang.FileOptions, thread, "t.star", src, starlark.StringDict{"spec": specBuiltin.Builtin()})
	if err != nil {
		return nil, err
	}
	return globals["s"], nil
}

func TestSpec(t *testing.T) {
	t.Setenv("KUMO_FLAVORS", "")
	t.Setenv("HOME", t.TempDir())
	tests := []struct {
		src     string
		want    string // the spec's repr, or the error
		isInput bool
	}{
		{`s = spec("local", "small")`, `spec("local", "small", cpus=1, disk_gb=10, memory_gb=1)`, false},
		{`s = spec("local", "medium", disk_gb = 64)`, `spec("local", "medium", cpus=2, disk_gb=64, memory_gb=4)`, false},
		{"s = spec(\"local\", \"small\")\ns.user = \"ubuntu\"\ns.cpus = s.cpus * 2", `spec("local", "small", cpus=2, disk_gb=10, memory_gb=1, user="ubuntu")`, false},
		{`s = spec("local", "huge")`, `unknown flavor "huge" for provider local (have: large, medium, small)`, true},
		{`s = spec("aws", "small")`, `unknown provider "aws" (have: local)`, true},
		{`s = spec("local", "small", gpus = 1)`, `unknown field "gpus" for provider local (valid: cpus, disk_gb, memory_gb, ports, user)`, true},
		{"s = spec(\"local\", \"small\")\ns.gpus = 1", `unknown field "gpus"`, false},
		// Values are checked against the provider's typed spec where they are set.
		{`s = spec("local", "small", cpus = "two")`, `local field cpus is a string, want a whole number`, true},
		{`s = spec("local", "small", cpus = 1.5)`, `local field cpus is 1.5, want a whole number`, true},
		{`s = spec("local", "small", user = ["a"])`, `local field user is a list, want a string`, true},
		{"s = spec(\"local\", \"small\")\ns.disk_gb = \"big\"", `local field disk_gb is a string, want a whole number`, false},
		{`s = spec("local", "small", memory_gb = 0.5)`, `spec("local", "small", cpus=1, disk_gb=10, memory_gb=0.5)`, false},
		{`s = spec("local")`, `spec: missing argument for flavor`, true},
	}
	for _, tt := range tests {
		v, err := evalSpec(t, tt.src)
		switch {
		case err != nil:
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: error %q, want %q", tt.src, err, tt.want)
			}
			if tt.isInput && !starkit.IsInputError(err) {
				t.Errorf("%s: %v is not an input error", tt.src, err)
			}
		case v.String() != tt.want:
			t.Errorf("%s = %s, want %s", tt.src, v, tt.want)
		}
	}
}

func TestUserFlavorsOverrideAndExtend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flavors.yaml")
	os.WriteFile(path, []byte("local:\n  small: {memory_gb: 2}\n  gpu: {cpus: 8, memory_gb: 64, disk_gb: 100}\n"), 0o644)
	t.Setenv("KUMO_FLAVORS", path)
	v, err := evalSpec(t, `s = spec("local", "small")`)
	if err != nil || v.String() != `spec("local", "small", cpus=1, disk_gb=10, memory_gb=2)` {
		t.Errorf("overridden small = %v, %v", v, err)
	}
	v, err = evalSpec(t, `s = spec("local", "gpu")`)
	if err != nil || !strings.Contains(v.String(), "cpus=8") {
		t.Errorf("added gpu flavor = %v, %v", v, err)
	}
	os.WriteFile(path, []byte("local: [not, a, map]\n"), 0o644)
	if _, err := evalSpec(t, `s = spec("local", "small")`); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a broken flavors file: %v, want an error naming it", err)
	}
}

func TestSpecJSONIsCanonical(t *testing.T) {
	a, _ := evalSpec(t, `s = spec("local", "small", user = "u", cpus = 2)`)
	b, _ := evalSpec(t, "s = spec(\"local\", \"small\")\ns.cpus = 2\ns.user = \"u\"")
	fa, _ := a.(*Spec).Fleet()
	fb, _ := b.(*Spec).Fleet()
	ja, jb := fa.JSON(), fb.JSON()
	if string(ja) != string(jb) || !fa.Equal(fb) {
		t.Errorf("equal specs give different JSON:\n%s\n%s", ja, jb)
	}
}
