// Package secret holds the secret() builtin: passwords and tokens that a
// recipe needs but that kumo never prints, journals or exports.
package secret

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"go.starlark.net/starlark"
	"golang.org/x/term"

	"github.com/kumo-dev/kumo/builtins"
)

// Builtins of this family.
var Builtins = []*builtins.Def{{
	Name: "secret",
	Doc: `secret(name)
Returns a secret value, read from the environment variable
KUMO_SECRET_<NAME> or, failing that, asked for at the terminal without
echo. The value is fetched only when a live builtin uses it (ssh_run's env
and stdin, put_file's content), so a replayed cell never asks. It never
appears in output, the TUI, the state or exports: wherever it would be
printed it is masked, and calls record only its name.`,
	Fn: secretFn,
	// Not journaled: its value must not be stored, and it is lazy anyway.
}}

func secretFn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	if err := builtins.Unpack(b, args, kwargs, "name", &name); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, builtins.Inputf(b, "name is empty")
	}
	return &Secret{Name: name}, nil
}

// Secret is a named secret; see builtins.SecretValue.
type Secret struct{ Name string }

var _ builtins.SecretValue = (*Secret)(nil)

func (s *Secret) String() string        { return fmt.Sprintf("<secret %s>", s.Name) }
func (s *Secret) Type() string          { return "secret" }
func (s *Secret) Freeze()               {}
func (s *Secret) Truth() starlark.Bool  { return starlark.True }
func (s *Secret) Hash() (uint32, error) { return starlark.String(s.Name).Hash() }
func (s *Secret) SecretName() string    { return s.Name }

// EnvVar is where a secret's value is looked for first.
func EnvVar(name string) string {
	return "KUMO_SECRET_" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, name)
}

type cache struct {
	mu     sync.Mutex
	values map[string]string
}

// Reveal returns the value, asking once per run, and registers it with
// the run's masker before anyone can print it.
func (s *Secret) Reveal(env *builtins.Env) (string, error) {
	c := env.Plugin("secret.cache", func() any { return &cache{values: map[string]string{}} }).(*cache)
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.values[s.Name]; ok {
		return v, nil
	}
	v, ok := os.LookupEnv(EnvVar(s.Name))
	if !ok {
		var err error
		if v, err = prompt(s.Name); err != nil {
			return "", fmt.Errorf("secret %s is not set: export %s=... or run kumo in a terminal to be asked (%v)", s.Name, EnvVar(s.Name), err)
		}
	}
	if len(v) < 4 {
		return "", fmt.Errorf("secret %s is shorter than 4 characters; kumo cannot keep so short a value out of its output", s.Name)
	}
	env.Secrets.Add(v)
	c.values[s.Name] = v
	return v, nil
}

func prompt(name string) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer tty.Close()
	fmt.Fprintf(tty, "secret %s: ", name)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return strings.TrimRight(string(b), "\r\n"), err
}
