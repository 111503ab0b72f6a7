// Package fleet is kumo's resource engine: the unit groups, units and
// nodes of a run, recorded in state and made by providers. The
// units builtins and the CLI (status, destroy) both work through it.
//
// Three rules hold everywhere here:
//
//   - Intent before effect. A resource is written to the state, with a
//     fresh idempotency token, before its provider is asked for it; a
//     crash in between leaves an intent that the next attempt adopts
//     through the provider (which knows the token) instead of making a
//     second resource.
//   - Calls converge. A creating call made from a cell has a site (the
//     Nth call of that builtin in that cell). Resources remember the site
//     that made them, so when the cell runs again the call finds what it
//     made before, re-creates only what has since vanished, and grows or
//     shrinks to a changed count. Deleting what is gone is a no-op.
//   - Nothing is made or deleted without a line saying so.
package fleet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/state"
)

// Engine manages the resources of one run.
type Engine struct {
	Store     Records
	Run       string
	Providers map[string]providers.Provider
	// Ready waits until a node answers (an SSH login); nil skips it.
	Ready func(ctx context.Context, n Node) error
	// Disconnect is told of a node that is powered off or deleted, so
	// that whoever keeps connections to it drops them; nil is fine.
	Disconnect func(n Node)
	Report     Reporter
	// Parallel bounds how many provider calls run at once (default 64).
	Parallel int
	// Fault, if set, is called at named points (the crash tests kill
	// kumo there): "after-create" is after a provider made a node and
	// before the state recorded it.
	Fault func(point string)
	// Join, if set, is called before this process works on the unit
	// groups of another run (see In): the CLI takes that run's lock.
	Join func(run string) error
	// KeepData keeps what providers hold of a deleted group beyond its
	// nodes (container groups' shared folders), saying where it is;
	// otherwise that goes with the group.
	KeepData bool
}

// In returns the engine for the resources of run: this one, or, for a
// unit group that another run made, a copy working in that run once
// this process has joined it. Recipes beside each other share their
// state and work on the same groups (a cluster, and the recipes that add
// its users or nodes); what they make in a group belongs to the run that
// made the group, which destroy removes whole.
func (e *Engine) In(run string) (*Engine, error) {
	if run == "" || run == e.Run {
		return e, nil
	}
	if e.Join != nil {
		if err := e.Join(run); err != nil {
			return nil, err
		}
	}
	other := *e
	other.Run = run
	return &other, nil
}

// Reporter shows what the engine does.
type Reporter interface {
	// Note is a line of its own: what is made, kept or deleted.
	Note(text string)
	// Status is a live line for long work, replaced by the next status
	// and cleared by "".
	Status(text string)
}

// Call is where an engine operation comes from. Site is "" outside a
// recipe's cells (the REPL, the CLI): such calls do not converge.
type Call struct {
	Site    string
	Effects *state.Effects // what the call made and deleted; nil: not recorded
}

func (e *Engine) note(format string, args ...any) {
	if e.Report != nil {
		e.Report.Note(fmt.Sprintf(format, args...))
	}
}

func (e *Engine) status(format string, args ...any) {
	if e.Report != nil {
		e.Report.Status(fmt.Sprintf(format, args...))
	}
}

func (e *Engine) fault(point string) {
	if e.Fault != nil {
		e.Fault(point)
	}
}

// Provider returns the provider called name.
func (e *Engine) Provider(name string) (providers.Provider, error) {
	if p, ok := e.Providers[name]; ok {
		return p, nil
	}
	var names []string
	for n := range e.Providers {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("unknown provider %q (have: %s)", name, strings.Join(names, ", "))
}

// Spec is a unit's spec as stored with it: a provider, a flavor and the
// fields after the recipe's overrides.
type Spec struct {
	Provider string         `json:"provider"`
	Flavor   string         `json:"flavor"`
	Fields   map[string]any `json:"fields"`
}

// DecodeSpec reads a stored spec.
func DecodeSpec(raw json.RawMessage) (Spec, error) {
	var s Spec
	if len(raw) == 0 {
		return s, nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("stored spec: %w", err)
	}
	return s, nil
}

// JSON is the spec as stored: equal specs give equal text.
func (s Spec) JSON() json.RawMessage {
	b, _ := json.Marshal(s) // map keys are sorted by encoding/json
	// Numbers from Starlark (int64) and from the state (float64) must
	// compare equal: decode and encode once more.
	var v any
	if json.Unmarshal(b, &v) == nil {
		b, _ = json.Marshal(v)
	}
	return b
}

// Equal reports whether two specs ask for the same nodes.
func (s Spec) Equal(o Spec) bool { return bytes.Equal(s.JSON(), o.JSON()) }

// String renders the spec the way recipes write it.
func (s Spec) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "spec(%q, %q", s.Provider, s.Flavor)
	keys := make([]string, 0, len(s.Fields))
	for k := range s.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, _ := json.Marshal(s.Fields[k])
		fmt.Fprintf(&b, ", %s=%s", k, v)
	}
	b.WriteString(")")
	return b.String()
}

// where is the spec fields a provider needs to find a unit's nodes: its
// spec with the location resolved when it was made laid over it (an
// inventory path made absolute replaces the relative one).
func where(u state.Resource) map[string]any {
	spec, _ := DecodeSpec(u.Spec)
	return laid(spec.Fields, u.Data.Location)
}

func laid(fields, location map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range fields {
		out[k] = v
	}
	for k, v := range location {
		out[k] = v
	}
	return out
}

// partWheres is where a unit's parts live, by provider.
func partWheres(u state.Resource) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, p := range u.Data.Parts {
		spec, _ := DecodeSpec(p.Spec)
		out[p.Provider] = append(out[p.Provider], laid(spec.Fields, p.Location))
	}
	return out
}

// inPart reports whether node n was made with a spec of its own (a part
// of its unit), not the unit's.
func inPart(n state.Resource) bool {
	return len(n.Spec) > 0 && string(n.Spec) != "{}"
}

// nodeSpec is the spec node n of unit u was made with, and where its
// provider finds it.
func nodeSpec(u, n state.Resource) (Spec, map[string]any, error) {
	if !inPart(n) {
		spec, err := DecodeSpec(u.Spec)
		return spec, where(u), err
	}
	spec, err := DecodeSpec(n.Spec)
	if err != nil {
		return spec, nil, err
	}
	for _, p := range u.Data.Parts {
		if ps, err := DecodeSpec(p.Spec); err == nil && ps.Equal(spec) {
			return spec, laid(spec.Fields, p.Location), nil
		}
	}
	return spec, laid(spec.Fields, nil), nil
}

// ref names a node to its provider.
func (e *Engine) ref(n state.Resource) providers.Ref {
	ref := providers.Ref{ID: n.Data.ProviderID, Token: n.Token}
	if u, err := e.Store.Resource(state.Query{Run: n.Run, Kind: state.KindUnit, Group: n.Group, Name: n.Unit}); err == nil {
		_, ref.Spec, _ = nodeSpec(u, n)
	}
	return ref
}

// NewToken is a fresh idempotency token.
func NewToken() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ValidName reports whether s may name a group or unit: it becomes part
// of node names, file names and cloud resource names.
func ValidName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// forEach runs f for 0..n-1, at most limit at once, and joins the errors.
func forEach(n, limit int, f func(i int) error) error {
	if limit <= 0 {
		limit = 64
	}
	errs := make([]error, n)
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// each is forEach with the engine's bound. When ctx was cancelled (Ctrl-C)
// the calls cut short all fail alike: that is one error, not one per node.
func (e *Engine) each(ctx context.Context, n int, f func(i int) error) error {
	err := forEach(n, e.Parallel, f)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return ErrInterrupted
	}
	return err
}

// ErrInterrupted is work cut short by Ctrl-C. What was done is recorded:
// running the cell again finishes the job.
var ErrInterrupted = errors.New("interrupted; what was done is recorded, and running the cell again finishes the job")

// names lists the resources' names for messages.
func names(rs []state.Resource) string {
	var out []string
	for _, r := range rs {
		out = append(out, label(r))
	}
	return strings.Join(out, ", ")
}

// label names a node for people: its name, and the machine's own where
// it has another ("farm-12 (h12)", an on-prem inventory's host).
func label(n state.Resource) string {
	if h := n.Data.HostName; h != "" && h != n.Name {
		return n.Name + " (" + h + ")"
	}
	return n.Name
}

// inputf is a mistake in what the recipe asked for.
func inputf(format string, args ...any) error { return starkit.Inputf(format, args...) }

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
