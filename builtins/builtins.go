// Package builtins holds what every family of kumo builtins shares: how a
// builtin is declared (Def), how journaled builtins are intercepted, the
// per-run Env that builtins reach through the thread, the journal codec
// and the errors a user can cause. The families live in sub-packages,
// one per folder: units, ssh, files, wait, secret.
package builtins

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/lang"
)

// Func is the shape of every builtin, as in go.starlark.net.
type Func = func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)

// A Def declares one builtin function or method.
type Def struct {
	Name string // "ssh_run", or "UnitGroup.create_unit" for a method
	Doc  string // first line: the signature; then what it does
	Fn   Func

	// Journal marks builtins that touch the world (create, run, read
	// remote state). Their calls are journaled when a cell runs live and
	// answered from the journal when it is replayed. Pure builtins
	// (spec, secret) run every time.
	Journal bool
}

// ShortName is the name without its type: "create_unit".
func (d *Def) ShortName() string {
	if i := strings.LastIndexByte(d.Name, '.'); i >= 0 {
		return d.Name[i+1:]
	}
	return d.Name
}

// Summary is the first sentence of the doc after the signature line.
func (d *Def) Summary() string {
	_, body, _ := strings.Cut(d.Doc, "\n")
	para, _, _ := strings.Cut(body, "\n\n")
	s := strings.Join(strings.Fields(para), " ")
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i+1]
	}
	return s
}

// An Interceptor stands between the recipe and every journaled builtin.
// The runner installs one on the thread (see lang/runner): it journals
// live calls and answers replayed ones. Builtin bodies never know.
type Interceptor interface {
	Call(thread *starlark.Thread, def *Def, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)
}

const interceptorKey = "kumo.journal"

// SetInterceptor installs i on thread (nil removes it).
func SetInterceptor(thread *starlark.Thread, i Interceptor) {
	if i == nil {
		thread.SetLocal(interceptorKey, nil)
		return
	}
	thread.SetLocal(interceptorKey, i)
}

// Builtin makes the Starlark value of a function Def. The journal wraps
// here, once, for every builtin and method.
func (d *Def) Builtin() *starlark.Builtin {
	return starlark.NewBuiltin(d.ShortName(), d.Call)
}

// Call runs the builtin, through the thread's interceptor if it is journaled.
func (d *Def) Call(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if d.Journal {
		if i, ok := thread.Local(interceptorKey).(Interceptor); ok && i != nil {
			return i.Call(thread, d, b, args, kwargs)
		}
	}
	return d.Fn(thread, b, args, kwargs)
}

// Methods is the method table of a value type, keyed by short name.
type Methods map[string]*Def

// Attr returns the method name bound to recv, or nil.
func (m Methods) Attr(recv starlark.Value, name string) starlark.Value {
	d := m[name]
	if d == nil {
		return nil
	}
	return d.Builtin().BindReceiver(recv)
}

// Names lists the methods, sorted.
func (m Methods) Names() []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Unpack is starlark.UnpackArgs whose errors are input errors: a wrong
// argument is the recipe's mistake, and the CLI exits 2 for it.
func Unpack(b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple, pairs ...any) error {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, pairs...); err != nil {
		return &lang.InputError{Err: err}
	}
	return nil
}

// Inputf is an input error prefixed with the builtin's name.
func Inputf(b *starlark.Builtin, format string, args ...any) error {
	return &lang.InputError{Err: fmt.Errorf("%s: %s", b.Name(), fmt.Sprintf(format, args...))}
}

// Errorf is a run-time failure prefixed with the builtin's name.
func Errorf(b *starlark.Builtin, format string, args ...any) error {
	return fmt.Errorf("%s: %w", b.Name(), fmt.Errorf(format, args...))
}

// ErrNoRun is returned by builtins used where no run is set up.
var ErrNoRun = errors.New("this builtin needs a kumo run (use kumo run or kumo repl)")
