// Package builtinstest is a test fixture for builtin families, after
// Tilt's starkit.Fixture: a state in a temporary folder, a run's Env on
// a thread, the family's builtins as globals, and what they printed.
// Code runs as a cell's code does, without the runner: journaled
// builtins are called directly.
package builtinstest

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/state"
	_ "github.com/kumo-dev/kumo/state/sqlite" // the state files are SQLite
)

// A Fixture runs recipe code against one run of a fresh state.
type Fixture struct {
	t       testing.TB
	Dir     string // the recipe's folder; the state is in Dir/.kumo
	Store   *state.Store
	Env     *builtins.Env
	Globals starlark.StringDict
	Ctx     context.Context

	mu     sync.Mutex
	notes  []string
	status []string
	lines  []string
}

// New makes a fixture for run "test" whose globals are the given
// builtins (and whatever else the caller adds to Globals).
func New(t testing.TB, defs ...*builtins.Def) *Fixture {
	t.Helper()
	dir := t.TempDir()
	store, err := state.Open(filepath.Join(dir, ".kumo", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	f := &Fixture{t: t, Dir: dir, Store: store, Globals: starlark.StringDict{}, Ctx: context.Background()}
	f.Env = &builtins.Env{Run: "test", Store: store, Out: f, Secrets: &builtins.Masker{}}
	for _, d := range defs {
		f.Globals[d.ShortName()] = d.Builtin()
	}
	t.Cleanup(func() {
		f.Env.Close()
		store.Close()
	})
	return f
}

// Exec runs src (a cell's code) in the fixture's globals, which keep
// what it defines.
func (f *Fixture) Exec(src string) error {
	f.t.Helper()
	thread := &starlark.Thread{Name: "test", Print: func(_ *starlark.Thread, msg string) { f.Line("", "print", msg) }}
	f.Env.Attach(thread)
	starkit.SetContext(thread, f.Ctx)
	starkit.SetRecipeDir(thread, f.Dir)
	file, err := (&syntax.FileOptions{TopLevelControl: true, GlobalReassign: true, Set: true, While: true}).Parse("test.star", src, 0)
	if err != nil {
		return err
	}
	return starlark.ExecREPLChunk(file, thread, f.Globals)
}

// MustExec runs src and fails the test if it fails.
func (f *Fixture) MustExec(src string) {
	f.t.Helper()
	if err := f.Exec(src); err != nil {
		f.t.Fatalf("%s\n%v", src, err)
	}
}

// Value is the global name after Exec (nil if it is not defined).
func (f *Fixture) Value(name string) starlark.Value { return f.Globals[name] }

// Output lines, masked as Env masks them.
func (f *Fixture) Line(source, stream, text string) { f.add(&f.lines, source+"|"+text) }
func (f *Fixture) Note(text string)                 { f.add(&f.notes, text) }
func (f *Fixture) Status(text string)               { f.add(&f.status, text) }

func (f *Fixture) add(to *[]string, s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	*to = append(*to, s)
}

// Notes, Statuses and Lines are what the builtins printed so far.
func (f *Fixture) Notes() []string    { return f.copy(f.notes) }
func (f *Fixture) Statuses() []string { return f.copy(f.status) }
func (f *Fixture) Lines() []string    { return f.copy(f.lines) }

func (f *Fixture) copy(s []string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), s...)
}

// Printed is everything printed, one string, for "never shows X" checks.
func (f *Fixture) Printed() string {
	return strings.Join(append(append(f.Notes(), f.Statuses()...), f.Lines()...), "\n")
}
