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

	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/state"
)

// Func is the shape of every builtin, as in go.starlark.net.
type Func = func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)

// A Def declares one builtin function or method.
type Def struct {
	Name string // "ssh_run", or "UnitGroup.create_unit" for a method
	Doc  string // first line: the signature; then what it does
	Fn   Func

	// Effectful marks builtins that touch the world (create, run, read
	// remote state). Their calls are journaled when a cell runs live and
	// answered from the journal when it is replayed. Pure builtins
	// (spec, secret) run every time.
	Effectful bool
	// Plan, for journaled builtins that change the world, says what a
	// call would do (kumo plan). Without it, a plan shows the call.
	Plan Planner
	// Check, for journaled builtins whose calls can look without
	// changing anything, says what differs now from what a replayed call
	// would make so (kumo check).
	Check Checker

	// Kind sorts entries that are not kumo's own builtins, for kumo doc:
	// DocValue documents a type of value and its attributes, DocStarlark
	// a name kumo takes from go.starlark.net, DocREPL one only the REPL has.
	Kind DocKind
}

// DocKind sorts documentation entries.
type DocKind string

const (
	DocBuiltin  DocKind = ""
	DocValue    DocKind = "value"
	DocStarlark DocKind = "starlark"
	DocREPL     DocKind = "repl"
)

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
// The runner installs one on the thread (see runner): it journals
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

// InterceptorOf is the interceptor installed on thread, or nil.
func InterceptorOf(thread *starlark.Thread) Interceptor {
	i, _ := thread.Local(interceptorKey).(Interceptor)
	return i
}

// Builtin makes the Starlark value of a function Def. The journal wraps
// here, once, for every builtin and method.
func (d *Def) Builtin() *starlark.Builtin {
	return starlark.NewBuiltin(d.ShortName(), d.Call)
}

// Call runs the builtin, through the thread's interceptor if it is journaled.
func (d *Def) Call(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if d.Effectful {
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
		return &starkit.InputError{Err: err}
	}
	return nil
}

// Inputf is an input error prefixed with the builtin's name.
func Inputf(b *starlark.Builtin, format string, args ...any) error {
	return &starkit.InputError{Err: fmt.Errorf("%s: %s", b.Name(), fmt.Sprintf(format, args...))}
}

// Errorf is a run-time failure prefixed with the builtin's name.
func Errorf(b *starlark.Builtin, format string, args ...any) error {
	return fmt.Errorf("%s: %w", b.Name(), fmt.Errorf(format, args...))
}

// Wrap prefixes err with the builtin's name and keeps what it is: an
// InputError wrapped here still makes the CLI exit 2.
func Wrap(b *starlark.Builtin, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", b.Name(), err)
}

// A CallSite is where a journaled call comes from: the Nth call of its
// builtin in a cell (see runner), and what the call makes and
// deletes. Creating builtins pass it to the resource engine, so that a
// cell run again finds what the same call made before. Outside a cell
// (the REPL) it is empty.
type CallSite struct {
	Site    string
	Effects *state.Effects
}

const siteKey = "kumo.site"

// SetCallSite tells the builtin about to be called where it is called from.
func SetCallSite(thread *starlark.Thread, s CallSite) { thread.SetLocal(siteKey, s) }

// CallSiteOf is where the running builtin was called from.
func CallSiteOf(thread *starlark.Thread) CallSite {
	s, _ := thread.Local(siteKey).(CallSite)
	return s
}

// ErrNoRun is returned by builtins used where no run is set up.
var ErrNoRun = errors.New("this builtin needs a kumo run (use kumo run or kumo repl)")

// Outside inputs: some pure builtins read files (spec() reads the
// flavor catalog). Replay must see a change there as a change of the
// builtin, so such a builtin registers a digest of what it reads.
var inputs = map[string]func() string{}

// RegisterInput registers how to digest what the builtin called name
// reads from outside. Called from init of the builtin's package.
func RegisterInput(name string, digest func() string) { inputs[name] = digest }

// InputDigest digests what the builtin called name reads from outside
// ("" for one that reads nothing); name "" digests every such input.
func InputDigest(name string) string {
	if name != "" {
		if f := inputs[name]; f != nil {
			return f()
		}
		return ""
	}
	var names []string
	for n := range inputs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n + "=" + inputs[n]() + ";")
	}
	return b.String()
}
