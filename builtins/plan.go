package builtins

import (
	"errors"
	"fmt"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// An Effect is what a journaled call would do to the world if its cell
// ran live now: what kumo plan shows. Kind says which sort; the rest is
// filled where it applies.
type Effect struct {
	Kind      EffectKind `json:"kind"`
	Provider  string     `json:"provider,omitempty"`
	Flavor    string     `json:"flavor,omitempty"`
	Nodes     int        `json:"nodes,omitempty"`      // nodes made, deleted, powered
	PriceHour float64    `json:"price_hour,omitempty"` // USD per node per hour, 0 when the catalog does not say
	Target    string     `json:"target,omitempty"`     // the nodes a command or file goes to
	What      string     `json:"what"`                 // one line for a reader
}

// EffectKind sorts effects.
type EffectKind string

const (
	EffectCreate  EffectKind = "create"  // nodes made
	EffectDelete  EffectKind = "delete"  // nodes or units deleted
	EffectPower   EffectKind = "power"   // nodes powered off or on
	EffectCommand EffectKind = "command" // a command run on nodes
	EffectCopy    EffectKind = "copy"    // a file copied to or from nodes
	EffectRead    EffectKind = "read"    // the world read: the value is known only live
	EffectWait    EffectKind = "wait"
	EffectOther   EffectKind = "call"
)

// A Planner says what a call would do, without doing it: it may read
// the state, never a provider or a node. It returns the call's result
// where that is known without the world (the unit a create_unit call
// names), else nil: the plan goes on with an Unknown.
type Planner func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (Effect, starlark.Value, error)

// Unknown stands, while kumo plans, for the result of a call that has
// not run: its value is known only when the cell runs live. It can be
// passed on (to other calls, which are planned with it), printed and
// stored; anything that needs its content stops the cell's plan there.
type Unknown struct {
	From string // "create_unit(...) at lab.star:12"
	// Tested is called when the recipe branches on the value: what the
	// plan shows after that is a guess.
	Tested func(u *Unknown)
}

var (
	_ starlark.HasAttrs  = (*Unknown)(nil)
	_ starlark.Mapping   = (*Unknown)(nil)
	_ starlark.HasBinary = (*Unknown)(nil)
	_ starlark.Callable  = (*Unknown)(nil)
)

// String is ‹where it comes from›: the plan says once what ‹…› means.
func (u *Unknown) String() string { return "‹" + u.From + "›" }
func (u *Unknown) Type() string   { return "unknown" }
func (u *Unknown) Freeze()        {}
func (u *Unknown) Truth() starlark.Bool {
	if u.Tested != nil {
		u.Tested(u)
	}
	return starlark.True
}
func (u *Unknown) Hash() (uint32, error) { return 0, u.needed("hashed") }
func (u *Unknown) AttrNames() []string   { return nil }

// What is derived from an unknown value is unknown: its attributes,
// elements, arithmetic and what calling it returns (r.stdout.strip()).
// Iterating over it or taking its length needs the value itself, and
// stops the cell's plan there.
func (u *Unknown) Attr(name string) (starlark.Value, error) {
	return u.derive("." + name), nil
}

func (u *Unknown) Get(k starlark.Value) (starlark.Value, bool, error) {
	return u.derive("[" + k.String() + "]"), true, nil
}

func (u *Unknown) Binary(op syntax.Token, y starlark.Value, side starlark.Side) (starlark.Value, error) {
	return u.derive(" " + op.String() + " …"), nil
}

func (u *Unknown) Name() string { return u.From }

func (u *Unknown) CallInternal(*starlark.Thread, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return u.derive("()"), nil
}

func (u *Unknown) derive(suffix string) *Unknown {
	return &Unknown{From: u.From + suffix, Tested: u.Tested}
}

func (u *Unknown) needed(what string) error {
	return &UnknownNeeded{From: u.From, What: what}
}

// UnknownNeeded is the error of a planned cell that needs a value only a
// live call gives.
type UnknownNeeded struct{ From, What string }

func (e *UnknownNeeded) Error() string {
	return fmt.Sprintf("%s needs the result of %s, known only when the cell runs", e.What, e.From)
}

// NeedsUnknown reports whether err is a planned cell stopping on an
// Unknown's content: UnknownNeeded, or Starlark's own words when it
// iterates over one or takes its length.
func NeedsUnknown(err error) bool {
	var need *UnknownNeeded
	if errors.As(err, &need) {
		return true
	}
	msg := err.Error()
	for _, sign := range []string{"unknown value is not iterable", "value of type unknown", "got unknown,", "unsupported comparison"} {
		if strings.Contains(msg, sign) {
			return true
		}
	}
	return false
}

// UnknownWords says in a user's words what Starlark said of an Unknown.
func UnknownWords(msg string) string {
	switch {
	case strings.Contains(msg, "unknown value is not iterable"), strings.Contains(msg, "got unknown, want iterable"):
		return "it loops over a value known only when the cell runs"
	case strings.Contains(msg, "value of type unknown has no len"):
		return "it counts (len) a value known only when the cell runs"
	}
	return "it needs a value known only when the cell runs (" + strings.ReplaceAll(msg, "unknown", "a value not known yet") + ")"
}

const planKey = "kumo.plan"

// PlanState is what a plan knows beyond the state: what the world check
// found gone, and the units planned calls would make. The runner keeps
// one per plan and gives it to each planned cell's thread.
type PlanState struct {
	Gone  map[string]string                    // resources gone from their providers, by token
	Units map[string]map[string]starlark.Value // units to be made: group -> name -> unit
}

// SetPlan gives the thread's planners the plan's state (nil: none).
func SetPlan(thread *starlark.Thread, p *PlanState) {
	thread.SetLocal(planKey, p)
}

// PlanOf is the plan's state, empty when there is none.
func PlanOf(thread *starlark.Thread) *PlanState {
	if p, _ := thread.Local(planKey).(*PlanState); p != nil {
		return p
	}
	return &PlanState{}
}

// PlanUnit notes a unit a planned call makes in group.
func (p *PlanState) PlanUnit(group, name string, unit starlark.Value) {
	if p.Units == nil {
		p.Units = map[string]map[string]starlark.Value{}
	}
	if p.Units[group] == nil {
		p.Units[group] = map[string]starlark.Value{}
	}
	p.Units[group][name] = unit
}

// TargetText names a call's target for a plan: a node's name, a list's
// names, an address.
func TargetText(v starlark.Value) string {
	name := func(x starlark.Value) string {
		if s, ok := x.(starlark.String); ok {
			return string(s)
		}
		if h, ok := x.(starlark.HasAttrs); ok {
			if _, unknown := x.(*Unknown); !unknown {
				if n, err := h.Attr("name"); err == nil {
					if s, ok := n.(starlark.String); ok {
						return string(s)
					}
				}
			}
		}
		return x.String()
	}
	if l, ok := v.(*starlark.List); ok {
		var names []string
		for i := 0; i < l.Len(); i++ {
			names = append(names, name(l.Index(i)))
		}
		return "[" + strings.Join(names, ", ") + "]"
	}
	return name(v)
}

// FirstLine is a command's first non-blank line, "…" marking the rest.
func FirstLine(cmd string) string {
	lines := strings.Split(strings.TrimSpace(cmd), "\n")
	first := strings.TrimSpace(lines[0])
	if len(first) > 100 {
		first = first[:99] + "…"
	} else if len(lines) > 1 {
		first += fmt.Sprintf(" … (%d lines)", len(lines))
	}
	return first
}

// ShowCall renders a call for a reader of a plan: as DescribeCall, but
// kumo's values (nodes, units, groups) by their names.
func ShowCall(name string, recv starlark.Value, args starlark.Tuple, kwargs []starlark.Tuple) string {
	if recv != nil {
		name = show(recv) + "." + name
	}
	var parts []string
	for _, a := range args {
		parts = append(parts, show(a))
	}
	for _, kv := range kwargs {
		parts = append(parts, string(kv[0].(starlark.String))+"="+show(kv[1]))
	}
	return name + "(" + strings.Join(parts, ", ") + ")"
}

func show(v starlark.Value) string {
	switch v := v.(type) {
	case *Unknown:
		return v.String()
	case *starlark.List:
		var parts []string
		for i := 0; i < v.Len(); i++ {
			parts = append(parts, show(v.Index(i)))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case Encodable:
		if h, ok := v.(starlark.HasAttrs); ok {
			if n, err := h.Attr("name"); err == nil {
				if s, ok := n.(starlark.String); ok {
					return string(s)
				}
			}
		}
	}
	return describe(v)
}
