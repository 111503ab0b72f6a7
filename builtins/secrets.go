package builtins

import "go.starlark.net/starlark"

// A SecretValue is what secret() returns: a name whose value is fetched
// only when a live builtin needs it. Builtins that accept secrets (env
// values, stdin, file content) reveal them; everything that prints or
// stores a call sees only the name.
type SecretValue interface {
	starlark.Value
	SecretName() string
	Reveal(env *Env) (string, error)
}

// TextArg reads an argument that may be a string, bytes or a secret.
func TextArg(env *Env, v starlark.Value) (string, bool, error) {
	switch v := v.(type) {
	case starlark.String:
		return string(v), true, nil
	case starlark.Bytes:
		return string(v), true, nil
	case SecretValue:
		s, err := v.Reveal(env)
		return s, true, err
	}
	return "", false, nil
}
