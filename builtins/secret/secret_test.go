package secret

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/builtinstest"
	"github.com/kumo-dev/kumo/builtins/starkit"
)

// fixture has secret as recipes have it, and reveal(x), which does what
// a live builtin (ssh_run's env, put_file's content) does with a secret.
func fixture(t *testing.T) *builtinstest.Fixture {
	t.Setenv("KUMO_SECRET_KEY_FILE", filepath.Join(t.TempDir(), "secret.key"))
	f := builtinstest.New(t)
	f.Globals["secret"] = Global()
	f.Globals["reveal"] = starlark.NewBuiltin("reveal", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		s, ok := args[0].(builtins.SecretValue)
		if !ok {
			return nil, errors.New("not a secret")
		}
		v, err := s.Reveal(f.Env)
		return starlark.String(v), err
	})
	return f
}

func str(t *testing.T, f *builtinstest.Fixture, name string) string {
	t.Helper()
	s, ok := starlark.AsString(f.Value(name))
	if !ok {
		t.Fatalf("%s = %v, want a string", name, f.Value(name))
	}
	return s
}

func TestSecretFromTheEnvironmentIsMasked(t *testing.T) {
	f := fixture(t)
	t.Setenv("KUMO_SECRET_DB_PASSWORD", "hunter22")
	f.MustExec(`pw = secret("db-password")
shown = str(pw)
v = reveal(pw)
print("the password is " + v)`)
	if got := str(t, f, "v"); got != "hunter22" {
		t.Errorf("revealed %q, want the variable's value", got)
	}
	if got := str(t, f, "shown"); got != "<secret db-password>" {
		t.Errorf("str(secret) = %q: a secret shows its name only", got)
	}
	if got := f.Env.Secrets.Mask("x hunter22 y"); strings.Contains(got, "hunter22") {
		t.Errorf("after reveal the masker still lets the value through: %q", got)
	}
}

func TestSecretIsAskedOncePerRun(t *testing.T) {
	f := fixture(t)
	var asked []string
	f.Env.Ask = func(prompt string, secret bool) (string, error) {
		asked = append(asked, prompt)
		if !secret {
			t.Error("asked for a secret with echo on")
		}
		return "s3cret-value", nil
	}
	f.MustExec(`a = reveal(secret("token"))
b = reveal(secret("token"))`)
	if len(asked) != 1 || asked[0] != "secret token: " {
		t.Errorf("asked %q, want once, for token", asked)
	}
	if str(t, f, "a") != "s3cret-value" || str(t, f, "b") != "s3cret-value" {
		t.Errorf("revealed %v and %v", f.Value("a"), f.Value("b"))
	}
}

func TestSecretNotSetSaysWhatToDo(t *testing.T) {
	f := fixture(t)
	f.Env.Ask = func(string, bool) (string, error) { return "", errors.New("no terminal") }
	err := f.Exec(`reveal(secret("admin password"))`)
	for _, want := range []string{"secret admin password is not set", "export KUMO_SECRET_ADMIN_PASSWORD=", `secret.generate("admin password")`, "no terminal"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}

func TestSecretTooShortToMask(t *testing.T) {
	f := fixture(t)
	t.Setenv("KUMO_SECRET_PIN", "123")
	err := f.Exec(`reveal(secret("pin"))`)
	if err == nil || !strings.Contains(err.Error(), "shorter than 4 characters") {
		t.Fatalf("err = %v", err)
	}
	if err := f.Exec(`secret("")`); !starkit.IsInputError(err) {
		t.Errorf("secret(\"\"): %v, want an input error", err)
	}
}

func TestGenerateKeepsOneSealedValue(t *testing.T) {
	f := fixture(t)
	t.Setenv("KUMO_SECRET_DB", "from-the-environment") // the generated one wins
	f.MustExec(`a = reveal(secret.generate("db", length = 20, alphabet = "hex"))
b = reveal(secret.generate("db"))
c = reveal(secret("db"))`)
	a := str(t, f, "a")
	if !regexp.MustCompile(`^[0-9a-f]{20}$`).MatchString(a) {
		t.Errorf("generated %q, want 20 hex characters", a)
	}
	if str(t, f, "b") != a || str(t, f, "c") != a {
		t.Errorf("later calls gave %v and %v, want the first value %q", f.Value("b"), f.Value("c"), a)
	}
	if notes := f.Notes(); len(notes) != 1 || !strings.Contains(notes[0], "secret db generated (hex, 20 characters)") {
		t.Errorf("notes %q, want one saying it was generated", notes)
	}
	if got, err := Generated(f.Store, "db"); err != nil || got != a {
		t.Errorf("Generated = %q, %v", got, err)
	}
	// Sealed: the value is nowhere in the state's files.
	files, _ := filepath.Glob(filepath.Join(f.Dir, ".kumo", "state.db*"))
	for _, p := range files {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), a) {
			t.Errorf("%s holds the value in clear", p)
		}
	}
	if strings.Contains(f.Printed(), a) {
		t.Errorf("printed the value: %s", f.Printed())
	}
}

func TestGenerateUnderAnotherKeySaysWhatToDo(t *testing.T) {
	f := fixture(t)
	f.MustExec(`secret.generate("db")`)
	t.Setenv("KUMO_SECRET_KEY_FILE", filepath.Join(t.TempDir(), "other.key"))
	os.WriteFile(os.Getenv("KUMO_SECRET_KEY_FILE"), []byte(strings.Repeat("k", 64)), 0o600)
	_, err := Generated(f.Store, "db")
	if err == nil || !strings.Contains(err.Error(), "kumo secret delete db") {
		t.Fatalf("with another key: %v, want a way out", err)
	}
	os.Remove(os.Getenv("KUMO_SECRET_KEY_FILE"))
	if _, err := Generated(f.Store, "db"); err == nil || !strings.Contains(err.Error(), "copy that file from the account that made it") {
		t.Errorf("without the key: %v", err)
	}
}

func TestGenerateRefusesBadArguments(t *testing.T) {
	for code, want := range map[string]string{
		`secret.generate("a b")`:                  `bad name "a b"`,
		`secret.generate("x", alphabet = "utf8")`: `alphabet "utf8": want alnum, hex or base64`,
		`secret.generate("x", length = 4)`:        "length=4: want 8 to 4096",
	} {
		f := fixture(t)
		err := f.Exec(code)
		if !starkit.IsInputError(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an input error saying %q", code, err, want)
		}
		if got, _ := f.Store.Secret("x"); got.Name != "" {
			t.Errorf("%s kept a secret", code)
		}
	}
}

func TestFormatRevealsOnlyWhenUsed(t *testing.T) {
	f := fixture(t)
	t.Setenv("KUMO_SECRET_PW", "p4ssword")
	f.MustExec(`t = secret.format("user={u} pw={pw} port={port} {{literal}}", u = "app", pw = secret("pw"), port = 3306)
shown = str(t)
same = str(secret.format("user={u} pw={pw} port={port} {{literal}}", u = "app", pw = secret("pw"), port = 3306))
other = str(secret.format("user={u} pw={pw}", u = "app", pw = secret("pw")))
v = reveal(t)`)
	if got := str(t, f, "v"); got != "user=app pw=p4ssword port=3306 {literal}" {
		t.Errorf("revealed %q", got)
	}
	shown := str(t, f, "shown")
	if strings.Contains(shown, "p4ssword") || !strings.HasPrefix(shown, "<secret format(pw)#") {
		t.Errorf("str(format) = %q", shown)
	}
	if shown != str(t, f, "same") || shown == str(t, f, "other") {
		t.Errorf("names %q, %q, %q: the same text must name alike, another template otherwise", shown, f.Value("same"), f.Value("other"))
	}
	for code, want := range map[string]string{
		`secret.format("a } b")`:             "a single } in the template",
		`secret.format("a {b")`:              "a { without its }",
		`secret.format("{x}", y = "1")`:      "uses {x}, which is not given (have: y)",
		`secret.format("{x}", x = [1])`:      "value x: got list",
		`secret.format("{x}", "positional")`: "want the template, then values by name",
	} {
		if err := f.Exec(code); !starkit.IsInputError(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an input error saying %q", code, err, want)
		}
	}
}
