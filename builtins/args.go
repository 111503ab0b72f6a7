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
	d, err := unpackDuration(v, false)
	*t = Timeout(d)
	return err
}

// Duration is a duration argument read as Timeout is, that may also be
// 0 ("0s"): for a span that can be none.
type Duration time.Duration

// D is the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Unpack implements starlark.Unpacker.
func (d *Duration) Unpack(v starlark.Value) error {
	x, err := unpackDuration(v, true)
	*d = Duration(x)
	return err
}

// unpackDuration reads a Go duration string or a number of seconds,
// positive, or with zero also 0.
func unpackDuration(v starlark.Value, zero bool) (time.Duration, error) {
	tooSmall := func(d time.Duration) bool { return d < 0 || d == 0 && !zero }
	want := "a positive number of seconds"
	if zero {
		want = "a number of seconds, 0 or more"
	}
	switch v := v.(type) {
	case starlark.String:
		d, err := time.ParseDuration(string(v))
		if err != nil || tooSmall(d) {
			return 0, fmt.Errorf("%q is not a duration (try \"30s\", \"10m\" or a number of seconds)", string(v))
		}
		return d, nil
	case starlark.Int:
		n, ok := v.Int64()
		if !ok || tooSmall(time.Duration(n)) {
			return 0, fmt.Errorf("want %s, got %s", want, v)
		}
		return time.Duration(n) * time.Second, nil
	case starlark.Float:
		if tooSmall(time.Duration(float64(v) * float64(time.Second))) {
			return 0, fmt.Errorf("want %s, got %s", want, v)
		}
		return time.Duration(float64(v) * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("got %s, want a duration string or seconds", v.Type())
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
