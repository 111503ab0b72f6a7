package builtins

import (
	"time"

	"go.starlark.net/starlark"
)

// Duration reads a timeout argument: a Go duration string ("90s", "10m",
// "1h30m") or a number of seconds.
func Duration(b *starlark.Builtin, param string, v starlark.Value) (time.Duration, error) {
	switch v := v.(type) {
	case starlark.String:
		d, err := time.ParseDuration(string(v))
		if err != nil || d <= 0 {
			return 0, Inputf(b, "for parameter %s: %q is not a duration (try \"30s\", \"10m\" or a number of seconds)", param, string(v))
		}
		return d, nil
	case starlark.Int:
		n, ok := v.Int64()
		if !ok || n <= 0 {
			return 0, Inputf(b, "for parameter %s: want a positive number of seconds, got %s", param, v)
		}
		return time.Duration(n) * time.Second, nil
	case starlark.Float:
		if v <= 0 {
			return 0, Inputf(b, "for parameter %s: want a positive number of seconds, got %s", param, v)
		}
		return time.Duration(float64(v) * float64(time.Second)), nil
	}
	return 0, Inputf(b, "for parameter %s: got %s, want a duration string or seconds", param, v.Type())
}

// Strings reads a list of strings argument.
func Strings(b *starlark.Builtin, param string, v starlark.Value) ([]string, error) {
	it, ok := v.(starlark.Iterable)
	if !ok {
		return nil, Inputf(b, "for parameter %s: got %s, want list of strings", param, v.Type())
	}
	var out []string
	iter := it.Iterate()
	defer iter.Done()
	var x starlark.Value
	for iter.Next(&x) {
		s, ok := starlark.AsString(x)
		if !ok {
			return nil, Inputf(b, "for parameter %s: got %s in list, want string", param, x.Type())
		}
		out = append(out, s)
	}
	return out, nil
}
