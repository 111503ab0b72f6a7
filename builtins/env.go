package builtins

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/state"
)

// Env is what builtins need of the run they serve: its name, the state
// store, the providers and where output goes. It reaches builtins through
// the thread (FromThread), never through package variables, so that tests
// and the REPL can hold several at once.
type Env struct {
	Run       string
	Store     *state.Store
	Providers map[string]providers.Provider
	Out       Output
	Secrets   *Masker
	// Fault, if set, is called at named points of the resource engine
	// (the crash tests kill kumo there; see fleet.Engine.Fault).
	Fault func(point string)
	// Join, if set, lets this process work on another run's unit groups
	// (see fleet.Engine.In): the CLI takes that run's lock.
	Join func(run string) error
	// Verbose asks builtins for details of how they work (Detail): which
	// file transfer a node got, say.
	Verbose bool
	// Planning is set while kumo plan works out a run: the state is only
	// read then (pure builtins that record something, as schedule(),
	// record nothing).
	Planning bool
	// Ask, if set, asks the user for a value (secret: without showing
	// it): the Jupyter kernel asks its notebook. Unset, kumo asks at the
	// terminal.
	Ask func(prompt string, secret bool) (string, error)

	mu      sync.Mutex
	plugins map[string]any
}

const envKey = "kumo.env"

// Attach makes e the env of builtins called on thread.
func (e *Env) Attach(thread *starlark.Thread) { thread.SetLocal(envKey, e) }

// FromThread returns the env of the run thread belongs to.
func FromThread(thread *starlark.Thread) (*Env, error) {
	if e, ok := thread.Local(envKey).(*Env); ok && e != nil {
		return e, nil
	}
	return nil, ErrNoRun
}

// Provider returns the provider called name.
func (e *Env) Provider(name string) (providers.Provider, error) {
	if p, ok := e.Providers[name]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("unknown provider %q (have: %s)", name, strings.Join(e.ProviderNames(), ", "))
}

// ProviderNames lists the configured providers, sorted.
func (e *Env) ProviderNames() []string {
	var names []string
	for n := range e.Providers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Plugin returns the per-run state a builtin family keeps under key (an
// SSH connection pool, say), making it with init on first use. Values
// that are io.Closers are closed with the env.
func (e *Env) Plugin(key string, init func() any) any {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.plugins == nil {
		e.plugins = map[string]any{}
	}
	v, ok := e.plugins[key]
	if !ok {
		v = init()
		e.plugins[key] = v
	}
	return v
}

// Close releases the families' per-run state.
func (e *Env) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range e.plugins {
		if c, ok := v.(io.Closer); ok {
			c.Close()
		}
	}
	e.plugins = nil
	return nil
}

// Line prints one line of output from source (a node), masked.
func (e *Env) Line(source, stream, text string) {
	if e.Out != nil {
		e.Out.Line(source, stream, e.Secrets.Mask(text))
	}
}

// Note prints a line of kumo's own, masked.
func (e *Env) Note(text string) {
	if e.Out != nil {
		e.Out.Note(e.Secrets.Mask(text))
	}
}

// Detail prints a note only when the run is verbose.
func (e *Env) Detail(text string) {
	if e.Verbose {
		e.Note(text)
	}
}

// Status shows a live status line for long work ("" clears it), masked.
func (e *Env) Status(text string) {
	if e != nil && e.Out != nil {
		e.Out.Status(e.Secrets.Mask(text))
	}
}

// Output receives what builtins print while a cell runs.
type Output interface {
	// Line is one line a node printed; stream is "stdout" or "stderr".
	Line(source, stream, text string)
	// Note is a message of kumo's own: what it makes, keeps, deletes.
	Note(text string)
	// Status is a live line for long work (creating nodes, waiting),
	// replaced by the next status and cleared by "". A terminal shows it
	// with a spinner and the time elapsed; elsewhere it is printed now
	// and then.
	Status(text string)
}

// Masker replaces the values of secrets with a placeholder wherever kumo
// prints or stores text. Secrets are added when first revealed.
type Masker struct {
	mu     sync.RWMutex
	values []string
}

// Add registers a secret value.
func (m *Masker) Add(value string) {
	if m == nil || value == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.values {
		if v == value {
			return
		}
	}
	m.values = append(m.values, value)
	// Also its JSON-escaped form, as it appears inside journal entries.
	if b, err := json.Marshal(value); err == nil {
		if esc := string(b[1 : len(b)-1]); esc != value {
			m.values = append(m.values, esc)
		}
	}
	sort.Slice(m.values, func(i, j int) bool { return len(m.values[i]) > len(m.values[j]) })
}

// Mask hides every registered secret in s.
func (m *Masker) Mask(s string) string {
	if m == nil {
		return s
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, v := range m.values {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, "********")
		}
	}
	return s
}

// Reader reads the state's records of unit groups, units and nodes:
// through the fleet, as everything that looks at the world does.
func (e *Env) Reader() fleet.Reader { return fleet.Reader{Records: e.Store} }
