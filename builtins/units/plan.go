package units

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/providers"
)

// Planners: what the unit builtins would do if their cell ran live now,
// read from the state alone (kumo plan). A call that finds what it made
// before plans to keep it, as the live call would.

func planUnitGroup(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (builtins.Effect, starlark.Value, error) {
	var name string
	create := true
	if err := builtins.Unpack(b, args, kwargs, "name", &name, "create?", &create); err != nil {
		return builtins.Effect{}, nil, err
	}
	env, err := builtins.FromThread(thread)
	if err != nil {
		return builtins.Effect{}, nil, err
	}
	g := &UnitGroup{Run: env.Run, Name: name}
	run := env.Run
	if !create {
		run = "" // another run's group, as the live call finds it
	}
	if r, err := env.Reader().Group(run, name); err == nil {
		g.Run, g.Token = r.Run, r.Token
		return builtins.Effect{Kind: builtins.EffectRead, What: "open unit group " + name + " (it exists)"}, g, nil
	}
	if !create {
		return builtins.Effect{}, nil, builtins.Inputf(b, "no unit group %q: run the recipe that makes it first", name)
	}
	return builtins.Effect{Kind: builtins.EffectCreate, What: "create unit group " + name + " and its SSH key"}, g, nil
}

func planCreateUnit(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (builtins.Effect, starlark.Value, error) {
	var name string
	var where starlark.Value
	nodes := 1
	var timeout builtins.Timeout
	waitSSH := true
	if err := builtins.Unpack(b, args, kwargs, "name", &name, "spec", &where, "nodes?", &nodes, "timeout?", &timeout, "wait_ssh?", &waitSSH); err != nil {
		return builtins.Effect{}, nil, err
	}
	env, err := builtins.FromThread(thread)
	if err != nil {
		return builtins.Effect{}, nil, err
	}
	// A placement plans the candidate it would ask first, and says the
	// ranking with the candidates that had no room a while ago.
	sp, _ := where.(*Spec)
	ranking := ""
	if p, ok := where.(*Placement); ok {
		lines, first := p.planned(env)
		spread := ""
		if p.Spread {
			spread = "; spread: each takes what it has room for"
		}
		sp, ranking = p.Ranked[first], " (placement: "+strings.Join(lines, "; ")+spread+")"
	}
	if sp == nil {
		return builtins.Effect{}, nil, builtins.Inputf(b, "for parameter spec: got %s, want spec or placement", where.Type())
	}
	g := b.Receiver().(*UnitGroup)
	e := builtins.Effect{Kind: builtins.EffectCreate, Provider: sp.Provider, Flavor: sp.Flavor, PriceHour: priceOf(env, sp)}
	u := &Unit{Run: g.Run, Group: g.Name, Name: name, Provider: sp.Provider}
	have := 0
	var gone []string // nodes the world check found gone: made again
	if r, err := env.Reader().Unit(g.Run, g.Name, name); err == nil {
		u.Token = r.Token
		have = countNodes(env, g.Run, g.Name, name)
		nodes, _ := env.Reader().Nodes(g.Run, g.Name, name)
		for _, n := range nodes {
			if _, ok := builtins.PlanOf(thread).Gone[n.Token]; ok {
				gone = append(gone, n.Name)
			}
		}
	}
	switch {
	case u.Token != "" && len(gone) > 0 && nodes >= have:
		e.Nodes = len(gone) + nodes - have
		e.What = fmt.Sprintf("unit %s/%s: make %d × %s/%s again (%s gone)", g.Name, name, len(gone), sp.Provider, sp.Flavor, strings.Join(gone, ", "))
		if nodes > have {
			e.What += fmt.Sprintf(", and add %d", nodes-have)
		}
	case u.Token == "":
		builtins.PlanOf(thread).PlanUnit(g.Name, name, u)
		e.Nodes = nodes
		e.What = fmt.Sprintf("create unit %s/%s: %d × %s/%s", g.Name, name, nodes, sp.Provider, sp.Flavor)
	case nodes > have:
		e.Nodes = nodes - have
		e.What = fmt.Sprintf("unit %s/%s has %d nodes: add %d × %s/%s", g.Name, name, have, nodes-have, sp.Provider, sp.Flavor)
	case nodes < have:
		e.Kind, e.Nodes = builtins.EffectDelete, have-nodes
		e.What = fmt.Sprintf("unit %s/%s has %d nodes: delete %d", g.Name, name, have, have-nodes)
	default:
		e.Kind = builtins.EffectRead
		e.What = fmt.Sprintf("unit %s/%s has its %d nodes: keep them (any that vanished are made again)", g.Name, name, have)
	}
	e.What += ranking
	return e, u, nil
}

// planUnits lists the group's units as the live call would, from the
// state, with the units planned calls before it make.
func planUnits(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (builtins.Effect, starlark.Value, error) {
	if err := builtins.Unpack(b, args, kwargs); err != nil {
		return builtins.Effect{}, nil, err
	}
	g := b.Receiver().(*UnitGroup)
	env, err := builtins.FromThread(thread)
	if err != nil {
		return builtins.Effect{}, nil, err
	}
	rs, err := env.Reader().Units(g.Run, g.Name)
	if err != nil {
		return builtins.Effect{}, nil, err
	}
	var out []starlark.Value
	have := map[string]bool{}
	for _, r := range rs {
		out = append(out, unitValue(r))
		have[r.Name] = true
	}
	planned := builtins.PlanOf(thread).Units[g.Name]
	for _, name := range sortedKeys(planned) {
		if !have[name] {
			out = append(out, planned[name])
		}
	}
	return builtins.Effect{Kind: builtins.EffectRead, What: fmt.Sprintf("list the units of group %s (%d)", g.Name, len(out))}, starlark.NewList(out), nil
}

func planAddNodes(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (builtins.Effect, starlark.Value, error) {
	var n int
	var timeout builtins.Timeout
	var where starlark.Value = starlark.None
	waitSSH := true
	if err := builtins.Unpack(b, args, kwargs, "n", &n, "timeout?", &timeout, "spec?", &where, "wait_ssh?", &waitSSH); err != nil {
		return builtins.Effect{}, nil, err
	}
	u := b.Receiver().(*Unit)
	e := builtins.Effect{Kind: builtins.EffectCreate, Provider: u.Provider, Nodes: n,
		What: fmt.Sprintf("add %d nodes to unit %s/%s", n, u.Group, u.Name)}
	env, envErr := builtins.FromThread(thread)
	sp, _ := where.(*Spec)
	ranking := ""
	if p, ok := where.(*Placement); ok && envErr == nil {
		lines, first := p.planned(env)
		sp, ranking = p.Ranked[first], "; placement: "+strings.Join(lines, "; ")
	}
	if sp != nil && envErr == nil {
		e.Provider, e.Flavor, e.PriceHour = sp.Provider, sp.Flavor, priceOf(env, sp)
		e.What += fmt.Sprintf(" (%s%s)", sp.label(), ranking)
		return e, nil, nil
	}
	if env, err := builtins.FromThread(thread); err == nil {
		if r, err := env.Reader().Unit(u.Run, u.Group, u.Name); err == nil {
			if sp, err := r.Spec(); err == nil {
				e.Flavor = sp.Flavor
				e.What += fmt.Sprintf(" (%s/%s)", sp.Provider, sp.Flavor)
				if p, err := env.Provider(sp.Provider); err == nil {
					if d, ok := p.(providers.Describer); ok {
						e.PriceHour = d.Describe(sp.Fields).PriceHour
					}
				}
			}
		}
	}
	return e, nil, nil
}

func planDeleteNodes(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (builtins.Effect, starlark.Value, error) {
	var count, which starlark.Value = starlark.None, starlark.None
	if err := builtins.Unpack(b, args, kwargs, "count?", &count, "nodes?", &which); err != nil {
		return builtins.Effect{}, nil, err
	}
	u := b.Receiver().(*Unit)
	e := builtins.Effect{Kind: builtins.EffectDelete, Provider: u.Provider}
	if n, err := starlark.AsInt32(count); err == nil {
		e.Nodes = n
		e.What = fmt.Sprintf("delete the %d newest nodes of unit %s/%s", n, u.Group, u.Name)
	} else if l, ok := which.(starlark.Indexable); ok {
		e.Nodes = l.Len()
		e.What = fmt.Sprintf("delete %d nodes of unit %s/%s: %s", l.Len(), u.Group, u.Name, which)
	} else {
		e.What = fmt.Sprintf("delete nodes of unit %s/%s", u.Group, u.Name)
	}
	return e, nil, nil
}

func planPower(on bool) builtins.Planner {
	return func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (builtins.Effect, starlark.Value, error) {
		u := b.Receiver().(*Unit)
		env, err := builtins.FromThread(thread)
		if err != nil {
			return builtins.Effect{}, nil, err
		}
		n := countNodes(env, u.Run, u.Group, u.Name)
		verb := "off"
		if on {
			verb = "on"
		}
		return builtins.Effect{Kind: builtins.EffectPower, Provider: u.Provider, Nodes: n,
			What: fmt.Sprintf("power %s the %d nodes of unit %s/%s", verb, n, u.Group, u.Name)}, starlark.None, nil
	}
}

func planUnitDelete(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (builtins.Effect, starlark.Value, error) {
	u := b.Receiver().(*Unit)
	env, err := builtins.FromThread(thread)
	if err != nil {
		return builtins.Effect{}, nil, err
	}
	n := countNodes(env, u.Run, u.Group, u.Name)
	return builtins.Effect{Kind: builtins.EffectDelete, Provider: u.Provider, Nodes: n,
		What: fmt.Sprintf("delete unit %s/%s and its %d nodes", u.Group, u.Name, n)}, starlark.None, nil
}

func planGroupDelete(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (builtins.Effect, starlark.Value, error) {
	g := b.Receiver().(*UnitGroup)
	env, err := builtins.FromThread(thread)
	if err != nil {
		return builtins.Effect{}, nil, err
	}
	n := countNodes(env, g.Run, g.Name, "")
	return builtins.Effect{Kind: builtins.EffectDelete, Nodes: n,
		What: fmt.Sprintf("delete unit group %s: its units, %d nodes and its key", g.Name, n)}, starlark.None, nil
}

// countNodes counts the recorded nodes of a unit ("" for the whole group).
func countNodes(env *builtins.Env, run, group, unit string) int {
	nodes, err := env.Reader().Nodes(run, group, unit)
	if err != nil {
		return 0
	}
	n := 0
	for _, r := range nodes {
		if r.Status != fleet.Deleting {
			n++
		}
	}
	return n
}

// priceOf is the hourly price of one node of sp, 0 when unknown.
func priceOf(env *builtins.Env, sp *Spec) float64 {
	p, err := env.Provider(sp.Provider)
	if err != nil {
		return 0
	}
	d, ok := p.(providers.Describer)
	if !ok {
		return 0
	}
	fs, err := sp.Fleet()
	if err != nil {
		return 0
	}
	return d.Describe(fs.Fields).PriceHour
}
