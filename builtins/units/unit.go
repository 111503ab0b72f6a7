package units

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/providers"
)

var unitMethods = builtins.Methods{
	"nodes": {
		Name: "Unit.nodes",
		Doc: `unit.nodes(node_state=None)
Returns the unit's nodes, optionally only those in node_state.`,
		Fn: listNodes(starlark.None, nodeList), Effectful: true,
	},
	"find_ip_addresses": {
		Name: "Unit.find_ip_addresses",
		Doc: `unit.find_ip_addresses(node_state="RUNNING")
Returns the IP addresses of the unit's nodes in node_state (None: all).`,
		Fn: listNodes(starlark.String("RUNNING"), ipList), Effectful: true,
	},
	"add_nodes": {
		Name: "Unit.add_nodes",
		Doc: `unit.add_nodes(n, timeout="10m", spec=None, wait_ssh=True)
Scales the unit out by n nodes of its spec, in parallel; returns the new
nodes once they are RUNNING and answer SSH (wait_ssh=False: once they
are RUNNING, as for create_unit). When its cell runs again, the
call returns the nodes it added before (making again any that vanished);
a changed n adds or deletes nodes to match, saying so. spec= puts the new
nodes elsewhere: a spec (another flavor or provider: they join the unit
as a part of it), or a placement, which chooses among its candidates as
for create_unit (the first with room for all n, or with spread=True each
taking what it has room for).`,
		Fn: addNodes, Effectful: true, Plan: planAddNodes,
	},
	"delete_nodes": {
		Name: "Unit.delete_nodes",
		Doc: `unit.delete_nodes(count=None, nodes=None)
Scales the unit in: deletes the given nodes (node values or names), or
the count most recently added ones. Returns the names of the deleted
nodes. Nodes already deleted are skipped; when its cell runs again, the
call does not delete more than it did.`,
		Fn: deleteNodes, Effectful: true, Plan: planDeleteNodes,
	},
	"power_off": {
		Name: "Unit.power_off",
		Doc: `unit.power_off()
Powers every node of the unit off; their disks (for local nodes, their
folders) are kept.`,
		Fn: powerOff, Effectful: true, Plan: planPower(false),
	},
	"power_on": {
		Name: "Unit.power_on",
		Doc: `unit.power_on(timeout="10m", wait_ssh=True)
Powers the unit's nodes back on and waits until they answer SSH
(wait_ssh=False: until their provider says they run).`,
		Fn: powerOn, Effectful: true, Plan: planPower(true),
	},
	"delete": {
		Name: "Unit.delete",
		Doc: `unit.delete()
Deletes the unit and all its nodes. Deleting a unit that is already gone
does nothing.`,
		Fn: unitDelete, Effectful: true, Plan: planUnitDelete,
	},
}

func createUnit(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	var where starlark.Value
	nodes := 1
	var timeout builtins.Timeout = builtins.Timeout(defaultTimeout)
	waitSSH := true
	if err := builtins.Unpack(b, args, kwargs, "name", &name, "spec", &where, "nodes?", &nodes, "timeout?", &timeout, "wait_ssh?", &waitSSH); err != nil {
		return nil, err
	}
	sp, _ := where.(*Spec)
	placed, _ := where.(*Placement)
	if sp == nil && placed == nil {
		return nil, builtins.Inputf(b, "for parameter spec: got %s, want spec or placement", where.Type())
	}
	if !fleet.ValidName(name) {
		return nil, builtins.Inputf(b, "bad unit name %q: use letters, digits, '-' and '_'", name)
	}
	if nodes < 0 || nodes > 1000 {
		return nil, builtins.Inputf(b, "nodes=%d: want 0 to 1000", nodes)
	}
	g, err := receiverGroupRow(thread, b)
	if err != nil {
		return nil, err
	}
	_, eng, call, err := engineIn(thread, g.Run)
	if err != nil {
		return nil, err
	}
	eng = sshWaiting(eng, waitSSH)
	create := func(spec fleet.Spec) (fleet.Unit, error) {
		return eng.CreateUnit(starkit.Context(thread), call, g.Name, name, spec, nodes, timeout.D())
	}
	var u fleet.Unit
	switch {
	case placed != nil && placed.Spread:
		part := func(spec fleet.Spec, want int) (int, error) {
			return eng.CreatePart(starkit.Context(thread), call, g.Name, name, spec, want, nodes, timeout.D())
		}
		if err = spreadUnit(thread, b, eng, call, g.Name, name, placed, nodes, part); err == nil {
			u, err = eng.Unit(g.Name, name)
		}
	case placed != nil:
		u, err = placeUnit(thread, b, eng, call, g.Name, name, placed, nodes, create)
	default:
		spec, ferr := sp.Fleet()
		if ferr != nil {
			return nil, builtins.Inputf(b, "%v", ferr)
		}
		u, err = create(spec)
	}
	if err != nil {
		return nil, failed(thread, b, err)
	}
	return unitValue(u), nil
}

// receiverGroupRow is receiverGroup for methods that need only its name.
func receiverGroupRow(thread *starlark.Thread, b *starlark.Builtin) (*UnitGroup, error) {
	_, g, err := receiverGroup(thread, b)
	return g, err
}

// listNodes makes the nodes() and find_ip_addresses() methods of unit
// groups and units: the ready nodes of the receiver, refreshed from their
// providers, in node_state (defaultState unless given), rendered.
func listNodes(defaultState starlark.Value, render func([]fleet.Node) *starlark.List) builtins.Func {
	return func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		nodeState := defaultState
		if err := builtins.Unpack(b, args, kwargs, "node_state?", &nodeState); err != nil {
			return nil, err
		}
		var want providers.NodeState
		if s, ok := nodeState.(starlark.String); ok {
			st, known := providers.ParseNodeState(string(s))
			if !known {
				var names []string
				for _, st := range providers.NodeStates {
					names = append(names, string(st))
				}
				return nil, builtins.Inputf(b, "node_state %q: want one of %s, or None for every node", string(s), strings.Join(names, ", "))
			}
			want = st
		} else if nodeState != starlark.None {
			return nil, builtins.Inputf(b, "for parameter node_state: got %s, want string or None", nodeState.Type())
		}
		var group, unit string
		var eng *fleet.Engine
		switch recv := b.Receiver().(type) {
		case *UnitGroup:
			if _, err := receiverGroupRow(thread, b); err != nil {
				return nil, err
			}
			group = recv.Name
			_, e, _, err := engineIn(thread, recv.Run)
			if err != nil {
				return nil, err
			}
			eng = e
		case *Unit:
			e, _, err := receiverUnit(thread, b)
			if err != nil {
				return nil, err
			}
			group, unit, eng = recv.Group, recv.Name, e
		default:
			return nil, fmt.Errorf("%s: unexpected receiver %s", b.Name(), recv.Type())
		}
		nodes, err := eng.Nodes(starkit.Context(thread), group, unit, want)
		if err != nil {
			return nil, failed(thread, b, err)
		}
		return render(nodes), nil
	}
}

// receiverUnit is the unit a method was called on, which must exist.
func receiverUnit(thread *starlark.Thread, b *starlark.Builtin) (*fleet.Engine, fleet.Unit, error) {
	u := b.Receiver().(*Unit)
	_, eng, _, err := engineIn(thread, u.Run)
	if err != nil {
		return nil, fleet.Unit{}, err
	}
	r, err := eng.Unit(u.Group, u.Name)
	if err != nil {
		return nil, r, failed(thread, b, err)
	}
	return eng, r, nil
}

func addNodes(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var n int
	var timeout builtins.Timeout = builtins.Timeout(defaultTimeout)
	var where starlark.Value = starlark.None
	waitSSH := true
	if err := builtins.Unpack(b, args, kwargs, "n", &n, "timeout?", &timeout, "spec?", &where, "wait_ssh?", &waitSSH); err != nil {
		return nil, err
	}
	if n < 1 || n > 1000 {
		return nil, builtins.Inputf(b, "n=%d: want 1 to 1000", n)
	}
	sp, _ := where.(*Spec)
	placed, _ := where.(*Placement)
	if where != starlark.None && sp == nil && placed == nil {
		return nil, builtins.Inputf(b, "for parameter spec: got %s, want spec, placement or None", where.Type())
	}
	eng, u, err := receiverUnit(thread, b)
	if err != nil {
		return nil, err
	}
	eng = sshWaiting(eng, waitSSH)
	ctx, call := starkit.Context(thread), callOf(thread)
	if where == starlark.None {
		made, err := eng.AddNodes(ctx, call, u, n, timeout.D())
		if err != nil {
			return nil, failed(thread, b, err)
		}
		return nodeList(made), nil
	}
	if sp != nil {
		env, err := builtins.FromThread(thread)
		if err != nil {
			return nil, err
		}
		placed = &Placement{Ranked: []*Spec{sp}, Prices: []float64{priceOf(env, sp)}, Reasons: []string{"given"}}
	}
	before, err := eng.NodesOf(u)
	if err != nil {
		return nil, err
	}
	part := func(spec fleet.Spec, want int) (int, error) {
		return eng.ConvergePart(ctx, call, u, spec, want, timeout.D())
	}
	if err := placeNodes(thread, b, eng, call, u.Group, u.Name, placed, n, part); err != nil {
		return nil, failed(thread, b, err)
	}
	// The call's nodes: in a cell, those it made (now or when it ran
	// before); in the REPL, those that are new.
	after, err := eng.NodesOf(u)
	if err != nil {
		return nil, err
	}
	known := map[int64]bool{}
	for _, r := range before {
		known[r.ID] = call.Site == ""
	}
	var made []fleet.Node
	for _, r := range after {
		if r.Status == fleet.Ready && r.Origin == call.Site && !known[r.ID] {
			made = append(made, r)
		}
	}
	return nodeList(made), nil
}

func deleteNodes(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var count, which starlark.Value = starlark.None, starlark.None
	if err := builtins.Unpack(b, args, kwargs, "count?", &count, "nodes?", &which); err != nil {
		return nil, err
	}
	var n int
	var selectors []fleet.Selector
	switch {
	case count != starlark.None && which != starlark.None:
		return nil, builtins.Inputf(b, "give count or nodes, not both")
	case count != starlark.None:
		c, err := starlark.AsInt32(count)
		if err != nil || c < 1 {
			return nil, builtins.Inputf(b, "for parameter count: want a positive int, got %s", count)
		}
		n = c
	case which != starlark.None:
		list, ok := which.(starlark.Indexable)
		if !ok || which.Type() == "string" {
			return nil, builtins.Inputf(b, "for parameter nodes: got %s, want list of nodes or names", which.Type())
		}
		selectors = []fleet.Selector{}
		for i := 0; i < list.Len(); i++ {
			switch x := list.Index(i).(type) {
			case *Node:
				selectors = append(selectors, fleet.Selector{ID: x.ID, Name: x.Name})
			case starlark.String:
				selectors = append(selectors, fleet.Selector{Name: string(x)})
			default:
				return nil, builtins.Inputf(b, "for parameter nodes: got %s in list, want node or name", x.Type())
			}
		}
	default:
		return nil, builtins.Inputf(b, "give count= or nodes=")
	}
	eng, u, err := receiverUnit(thread, b)
	if err != nil {
		return nil, err
	}
	deleted, err := eng.DeleteNodes(starkit.Context(thread), callOf(thread), u, n, selectors)
	if err != nil {
		return nil, failed(thread, b, err)
	}
	var names []starlark.Value
	for _, name := range deleted {
		names = append(names, starlark.String(name))
	}
	return starlark.NewList(names), nil
}

func powerOff(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := builtins.Unpack(b, args, kwargs); err != nil {
		return nil, err
	}
	eng, u, err := receiverUnit(thread, b)
	if err != nil {
		return nil, err
	}
	return starlark.None, failed(thread, b, eng.PowerOff(starkit.Context(thread), u))
}

func powerOn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var timeout builtins.Timeout = builtins.Timeout(defaultTimeout)
	waitSSH := true
	if err := builtins.Unpack(b, args, kwargs, "timeout?", &timeout, "wait_ssh?", &waitSSH); err != nil {
		return nil, err
	}
	eng, u, err := receiverUnit(thread, b)
	if err != nil {
		return nil, err
	}
	return starlark.None, failed(thread, b, sshWaiting(eng, waitSSH).PowerOn(starkit.Context(thread), u, timeout.D()))
}

// sshWaiting is eng, waiting for nodes to answer SSH or (wait_ssh=False:
// nodes of a provider with nothing to log in to yet, such as a cloud's
// test double) only for their provider to say they run.
func sshWaiting(eng *fleet.Engine, wait bool) *fleet.Engine {
	if wait {
		return eng
	}
	unwaiting := *eng
	unwaiting.Ready = nil
	return &unwaiting
}

func unitDelete(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := builtins.Unpack(b, args, kwargs); err != nil {
		return nil, err
	}
	u := b.Receiver().(*Unit)
	_, eng, call, err := engineIn(thread, u.Run)
	if err != nil {
		return nil, err
	}
	return starlark.None, failed(thread, b, eng.DeleteUnit(starkit.Context(thread), call, u.Group, u.Name))
}
