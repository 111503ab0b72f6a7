package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strings"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/state"
	"github.com/kumo-dev/kumo/state/seal"
)

var generateDef = &builtins.Def{
	Name: "secret.generate",
	Doc: `secret.generate(name, length=32, alphabet="alnum")
Returns the secret called name, generating it the first time: length
random characters of alphabet ("alnum": letters and digits, "hex", or
"base64": letters, digits, - and _). The value is kept in the state,
sealed with a key of yours outside it (~/.config/kumo/secret.key, or
$KUMO_SECRET_KEY_FILE), so every later call, replay and recipe of this
state gets the same value, with secret(name) as well. It is never printed:
` + "`kumo secret show NAME`" + ` tells it to you.`,
	Fn:        generateFn,
	Effectful: true,
	Plan: func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (builtins.Effect, starlark.Value, error) {
		if len(args) == 0 {
			return builtins.Effect{}, nil, builtins.Inputf(b, "want a name")
		}
		name, _ := starlark.AsString(args[0])
		return builtins.Effect{Kind: builtins.EffectOther, What: "generate secret " + name + " (unless it exists)"}, &Secret{Name: name}, nil
	},
}

var formatDef = &builtins.Def{
	Name: "secret.format",
	Doc: `secret.format(template, **values)
Returns text with values put in for {name} in template ({{ and }} stand
for braces), as a secret: values may be secrets, and the text is revealed
only when a live builtin uses it (put_file's content, ssh_run's stdin or
env), masked everywhere else. For configuration files and commands that
hold passwords:
  put_file(db, "/etc/app.ini", content = secret.format(ini, password = pw), mode = 0o600)
  ssh_run(db, "mysql", stdin = secret.format("CREATE USER app IDENTIFIED BY '{pw}';", pw = pw))`,
	Fn: formatFn,
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

var alphabets = map[string]string{
	"alnum":  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
	"hex":    "0123456789abcdef",
	"base64": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
}

func generateFn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	length, alphabet := 32, "alnum"
	if err := builtins.Unpack(b, args, kwargs, "name", &name, "length?", &length, "alphabet?", &alphabet); err != nil {
		return nil, err
	}
	if !nameRE.MatchString(name) {
		return nil, builtins.Inputf(b, "bad name %q: use letters, digits, '.', '-' and '_'", name)
	}
	chars, ok := alphabets[alphabet]
	if !ok {
		return nil, builtins.Inputf(b, "alphabet %q: want alnum, hex or base64", alphabet)
	}
	if length < 8 || length > 4096 {
		return nil, builtins.Inputf(b, "length=%d: want 8 to 4096", length)
	}
	env, err := builtins.FromThread(thread)
	if err != nil {
		return nil, err
	}
	if _, err := env.Store.Secret(name); err == nil {
		return &Secret{Name: name}, nil
	} else if err != state.ErrNotFound {
		return nil, err
	}
	value, err := random(chars, length)
	if err != nil {
		return nil, err
	}
	key, err := seal.LoadKey(true)
	if err != nil {
		return nil, builtins.Errorf(b, "the key that seals generated secrets (%s): %v", seal.KeyFile(), err)
	}
	sealed, err := seal.Seal(key, name, value)
	if err != nil {
		return nil, err
	}
	kind := fmt.Sprintf("%s %d", alphabet, length)
	kept, err := env.Store.AddSecret(state.SealedSecret{Name: name, Sealed: sealed, Kind: kind, Run: env.Run})
	if err != nil {
		return nil, err
	}
	if kept.Run == env.Run && string(kept.Sealed) == string(sealed) {
		env.Note(fmt.Sprintf("secret %s generated (%s characters); kumo secret show %s tells it", name, strings.Replace(kind, " ", ", ", 1), name))
	}
	return &Secret{Name: name}, nil
}

// random is n characters drawn uniformly from chars.
func random(chars string, n int) (string, error) {
	out := make([]byte, n)
	max := big.NewInt(int64(len(chars)))
	for i := range out {
		k, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		out[i] = chars[k.Int64()]
	}
	return string(out), nil
}

func formatFn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) != 1 {
		return nil, builtins.Inputf(b, "want the template, then values by name")
	}
	tmpl, ok := starlark.AsString(args[0])
	if !ok {
		return nil, builtins.Inputf(b, "for parameter template: got %s, want string", args[0].Type())
	}
	values := map[string]starlark.Value{}
	for _, kv := range kwargs {
		name := string(kv[0].(starlark.String))
		switch v := kv[1].(type) {
		case starlark.String, starlark.Int, starlark.Float, starlark.Bool, builtins.SecretValue:
			values[name] = v
		default:
			return nil, builtins.Inputf(b, "value %s: got %s, want string, number or secret", name, v.Type())
		}
	}
	t := &Text{template: tmpl, values: values}
	if _, err := t.render(func(builtins.SecretValue) (string, error) { return "", nil }); err != nil {
		return nil, builtins.Inputf(b, "%v", err)
	}
	return t, nil
}

// Text is a template with values, some of them secrets: a secret itself,
// revealed only by the builtins that use it.
type Text struct {
	template string
	values   map[string]starlark.Value
}

var _ builtins.SecretValue = (*Text)(nil)

func (t *Text) String() string        { return "<secret " + t.SecretName() + ">" }
func (t *Text) Type() string          { return "secret" }
func (t *Text) Freeze()               {}
func (t *Text) Truth() starlark.Bool  { return starlark.True }
func (t *Text) Hash() (uint32, error) { return starlark.String(t.SecretName()).Hash() }

// SecretName names the text by the secrets in it and a digest of the
// rest: a changed template or value is a different text (for replay),
// and nothing of a secret's value is in it.
func (t *Text) SecretName() string {
	h := sha256.New()
	h.Write([]byte(t.template))
	var secrets []string
	for _, k := range sortedKeys(t.values) {
		if s, ok := t.values[k].(builtins.SecretValue); ok {
			secrets = append(secrets, s.SecretName())
			fmt.Fprintf(h, "\x00%s=secret:%s", k, s.SecretName())
		} else {
			fmt.Fprintf(h, "\x00%s=%s", k, t.values[k].String())
		}
	}
	return fmt.Sprintf("format(%s)#%s", strings.Join(secrets, ", "), hex.EncodeToString(h.Sum(nil)[:4]))
}

// Reveal renders the text with the secrets' values.
func (t *Text) Reveal(env *builtins.Env) (string, error) {
	return t.render(func(s builtins.SecretValue) (string, error) { return s.Reveal(env) })
}

func (t *Text) render(reveal func(builtins.SecretValue) (string, error)) (string, error) {
	var out strings.Builder
	s := t.template
	for len(s) > 0 {
		i := strings.IndexAny(s, "{}")
		if i < 0 {
			out.WriteString(s)
			break
		}
		out.WriteString(s[:i])
		switch {
		case strings.HasPrefix(s[i:], "{{"):
			out.WriteByte('{')
			s = s[i+2:]
		case strings.HasPrefix(s[i:], "}}"):
			out.WriteByte('}')
			s = s[i+2:]
		case s[i] == '}':
			return "", fmt.Errorf("a single } in the template: write }} for a brace")
		default:
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("a { without its } in the template: write {{ for a brace")
			}
			name := s[i+1 : i+end]
			v, ok := t.values[name]
			if !ok {
				return "", fmt.Errorf("the template uses {%s}, which is not given (have: %s)", name, strings.Join(sortedKeys(t.values), ", "))
			}
			if sv, ok := v.(builtins.SecretValue); ok {
				text, err := reveal(sv)
				if err != nil {
					return "", err
				}
				out.WriteString(text)
			} else if str, ok := starlark.AsString(v); ok {
				out.WriteString(str)
			} else {
				out.WriteString(v.String())
			}
			s = s[i+end+1:]
		}
	}
	return out.String(), nil
}

func sortedKeys(m map[string]starlark.Value) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
