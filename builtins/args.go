package builtins

import (
	"fmt"
	"time"

	"go.starlark.net/starlark"
)

// Timeout is a duration argument: a Go duration string ("90s", "10m",
// "1h30m") or a number of seconds. It unpacks itself (starlark.Unpacker),
// so a builtin declares `timeout := builtins.Timeout(10 * time.Minute)`
// and passes &timeout to Unpack.
type Timeout time.Duration

// D is the duration.
func (t Timeout) D() time.Duration { return time.Duration(t) }

// Unpack implements starlark.Unpacker.
func (t *Timeout) Unpack(v starlark.Value) error {
	switch v := v.(type) {
	case starlark.String:
		d, err := time.ParseDuration(string(v))
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not a duration (try \"30s\", \"10m\" or a number of seconds)", string(v))
		}
		*t = Timeout(d)
		return nil
	case starlark.Int:
		n, ok := v.Int64()
		if !ok || n <= 0 {
			return fmt.Errorf("want a positive number of seconds, got %s", v)
		}
		*t = Timeout(time.Duration(n) * time.Second)
		return nil
	case starlark.Float:
		if v <= 0 {
			return fmt.Errorf("want a positive number of seconds, got %s", v)
		}
		*t = Timeout(time.Duration(float64(v) * float64(time.Second)))
		return nil
	}
	return fmt.Errorf("got %s, want a duration string or seconds", v.Type())
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
