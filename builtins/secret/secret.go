// Package secret holds the secret builtin: passwords, tokens and keys
// that a recipe needs but that kumo never prints, journals or exports.
// secret(name) is one the user gives; secret.generate(name) is one kumo
// makes once and keeps, sealed, in the state; secret.format(...) is text
// with secrets in it, such as a configuration file.
package secret

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"

	"go.starlark.net/starlark"
	"golang.org/x/term"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/state"
	"github.com/kumo-dev/kumo/state/seal"
)

var secretDef = &builtins.Def{
	Name: "secret",
	Doc: `secret(name)
Returns a secret value: one generated with secret.generate(name) by any
recipe of this state, else the environment variable KUMO_SECRET_<NAME>,
else asked for at the terminal without echo. The value is fetched only
when a live builtin uses it (ssh_run's env and stdin, put_file's content),
so a replayed cell never asks. It never appears in output, the TUI, the
state or exports: wherever it would be printed it is masked, and calls
record only its name. Methods: secret.generate, secret.format.`,
	Fn: secretFn,
	// Not journaled: its value must not be stored, and it is lazy anyway.
}

// Builtins of this family.
var Builtins = []*builtins.Def{secretDef}

// MethodDefs are secret's methods, for kumo doc.
func MethodDefs() []*builtins.Def { return []*builtins.Def{generateDef, formatDef} }

var methods = builtins.Methods{"generate": generateDef, "format": formatDef}

// Global is the value recipes call secret: callable, with methods.
func Global() starlark.Value { return &global{fn: secretDef.Builtin()} }

type global struct{ fn *starlark.Builtin }

var (
	_ starlark.Callable = (*global)(nil)
	_ starlark.HasAttrs = (*global)(nil)
)

func (g *global) String() string        { return "<built-in function secret>" }
func (g *global) Type() string          { return "builtin_function_or_method" }
func (g *global) Freeze()               {}
func (g *global) Truth() starlark.Bool  { return starlark.True }
func (g *global) Hash() (uint32, error) { return starlark.String("secret").Hash() }
func (g *global) Name() string          { return "secret" }
func (g *global) CallInternal(thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	return starlark.Call(thread, g.fn, args, kwargs)
}
func (g *global) Attr(name string) (starlark.Value, error) { return methods.Attr(g, name), nil }
func (g *global) AttrNames() []string                      { return methods.Names() }

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

// Secret is a named secret; see builtins.SecretValue. Its value is never
// part of it: journaled (a group variable, a generate() result) it is
// its name alone.
type Secret struct {
	Name string `json:"name"`
}

var (
	_ builtins.SecretValue = (*Secret)(nil)
	_ builtins.Encodable   = (*Secret)(nil)
)

func (s *Secret) String() string        { return fmt.Sprintf("<secret %s>", s.Name) }
func (s *Secret) Type() string          { return "secret" }
func (s *Secret) Freeze()               {}
func (s *Secret) Truth() starlark.Bool  { return starlark.True }
func (s *Secret) Hash() (uint32, error) { return starlark.String(s.Name).Hash() }
func (s *Secret) SecretName() string    { return s.Name }
func (s *Secret) JournalKind() string   { return "secret" }
func (s *Secret) JournalData() any      { return s }
func (s *Secret) DigestString() string  { return s.String() }

func init() {
	builtins.RegisterDecoder("secret", func(data json.RawMessage) (starlark.Value, error) {
		var s Secret
		err := json.Unmarshal(data, &s)
		return &s, err
	})
}

// EnvVar is where a secret's value is looked for when kumo did not
// generate it.
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
	v, err := s.lookUp(env)
	if err != nil {
		return "", err
	}
	if len(v) < 4 {
		return "", fmt.Errorf("secret %s is shorter than 4 characters; kumo cannot keep so short a value out of its output", s.Name)
	}
	env.Secrets.Add(v)
	c.values[s.Name] = v
	return v, nil
}

// lookUp finds the value: generated, from the environment, or asked.
// A generated one comes first: a variable that differs from it must not
// make a node's password differ from what the state keeps.
func (s *Secret) lookUp(env *builtins.Env) (string, error) {
	if env.Store != nil {
		v, err := Generated(env.Store, s.Name)
		if err == nil || !errors.Is(err, state.ErrNotFound) {
			return v, err
		}
	}
	if v, ok := os.LookupEnv(EnvVar(s.Name)); ok {
		return v, nil
	}
	ask := env.Ask
	if ask == nil {
		ask = prompt
	}
	v, err := ask("secret "+s.Name+": ", true)
	if err != nil {
		return "", fmt.Errorf("secret %s is not set: export %s=..., run kumo in a terminal (or a notebook) to be asked, or let a recipe make it with secret.generate(%q) (%v)", s.Name, EnvVar(s.Name), s.Name, err)
	}
	return v, nil
}

// Sealed is what secrets need of the state: the sealed values kumo
// generated. *state.Store is one.
type Sealed interface {
	Secret(name string) (state.SealedSecret, error)
	AddSecret(s state.SealedSecret) (state.SealedSecret, error)
}

var _ Sealed = (*state.Store)(nil)

// Generated opens the generated secret called name (state.ErrNotFound if
// there is none).
func Generated(store Sealed, name string) (string, error) {
	sec, err := store.Secret(name)
	if err != nil {
		return "", err
	}
	key, err := seal.LoadKey(false)
	if errors.Is(err, fs.ErrNotExist) {
		err = errors.New("there is no such file")
	}
	if err != nil {
		return "", fmt.Errorf("secret %s was generated and sealed with a key this user does not have (%s: %v): copy that file from the account that made it, or `kumo secret delete %s` to make a new value", name, seal.KeyFile(), err, name)
	}
	v, err := seal.Unseal(key, name, sec.Sealed)
	if err != nil {
		return "", fmt.Errorf("secret %s: %v (%s): it was sealed with another key; copy that key file here, or `kumo secret delete %s` to make a new value", name, err, seal.KeyFile(), name)
	}
	return v, nil
}

// prompt asks at the terminal, without echo.
func prompt(text string, _ bool) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer tty.Close()
	fmt.Fprint(tty, text)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return strings.TrimRight(string(b), "\r\n"), err
}
