package units

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/state"
)

// Builtins of this family that are functions; the rest are methods.
var Builtins = []*builtins.Def{unitGroupBuiltin, specBuiltin, placementBuiltin, scheduleBuiltin}

// MethodDefs lists every method, for `kumo doc`.
func MethodDefs() []*builtins.Def {
	var out []*builtins.Def
	for _, m := range []builtins.Methods{groupMethods, unitMethods} {
		for _, name := range m.Names() {
			out = append(out, m[name])
		}
	}
	return out
}

var unitGroupBuiltin = &builtins.Def{
	Name: "unit_group",
	Doc: `unit_group(name, create=True)
Returns the unit group called name. A group holds related units
(servers, clients, ...) that may live on different providers. Its nodes
share an SSH key that kumo makes and keeps, private, beside the state.

With create=True the group is this run's own, made if the run has none
(the same recipe run under another --name makes another copy). With
create=False it is an existing group, which may be another run's of the
same state (a recipe beside this one): a family of recipes works on the
group one of them made, as day-2 recipes add users or nodes to a
cluster, reading what it decided with ug.vars(). A group no run has made
is then an error saying to run the recipe that makes it first.`,
	Fn:        unitGroup,
	Effectful: true,
	Plan:      planUnitGroup,
}

func unitGroup(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	create := true
	if err := builtins.Unpack(b, args, kwargs, "name", &name, "create?", &create); err != nil {
		return nil, err
	}
	if !fleet.ValidName(name) {
		return nil, builtins.Inputf(b, "bad name %q: use letters, digits, '-' and '_'", name)
	}
	_, eng, call, err := engineOf(thread)
	if err != nil {
		return nil, err
	}
	g, _, err := eng.OpenGroup(call, name, create)
	if err != nil {
		return nil, failed(thread, b, err)
	}
	return &UnitGroup{Run: g.Run, Name: name, Token: g.Token}, nil
}

var groupMethods = builtins.Methods{
	"create_unit": {
		Name: "UnitGroup.create_unit",
		Doc: `ug.create_unit(name, spec, nodes=1, timeout="10m", wait_ssh=True)
Returns the unit called name, creating it with nodes nodes of spec (a
spec, or a placement(...) to choose among) if the group has none by that
name. Returns when every node is RUNNING and
answers SSH (wait_ssh=False: once the provider says RUNNING, for nodes
that answer later or not at all). Nodes are created in parallel. Creation is crash-safe: each
node is recorded before its provider is asked for it, and a re-run adopts
what an interrupted run created instead of creating it again.

When its cell runs again, the call returns the unit it made before: nodes
that have vanished since are made again, and a changed nodes= adds or
deletes nodes to match (saying so). A different spec is refused: delete
the unit first.`,
		Fn: createUnit, Effectful: true, Plan: planCreateUnit,
	},
	"units": {
		Name: "UnitGroup.units",
		Doc: `ug.units()
Returns the group's units.`,
		Fn: groupUnits, Effectful: true, Plan: planUnits,
	},
	"nodes": {
		Name: "UnitGroup.nodes",
		Doc: `ug.nodes(node_state=None)
Returns the nodes of every unit of the group, optionally only those in
node_state ("RUNNING", "POWER_OFF", ...). States are refreshed from the
providers.`,
		Fn: listNodes(starlark.None, nodeList), Effectful: true,
	},
	"find_ip_addresses": {
		Name: "UnitGroup.find_ip_addresses",
		Doc: `ug.find_ip_addresses(node_state="RUNNING")
Returns the IP addresses of the group's nodes in node_state (None: all).`,
		Fn: listNodes(starlark.String("RUNNING"), ipList), Effectful: true,
	},
	"set_vars": {
		Name: "UnitGroup.set_vars",
		Doc: `ug.set_vars(**values)
Keeps values with the group, in the state: what the recipe that made it
decided (addresses, partition names, a generated secret), for the
recipes that work on the group later to read with ug.vars() instead of
retyping. Values are plain data (strings, numbers, lists, dicts) or
secrets, which are kept by name only. Other variables stay as they are;
the output says which changed.`,
		Fn: setVars, Effectful: true,
	},
	"vars": {
		Name: "UnitGroup.vars",
		Doc: `ug.vars()
Returns the group's variables as a dict (see set_vars): ug.vars()["partition"],
ug.vars().get("users", []).`,
		Fn: getVars, Effectful: true,
	},
	"delete": {
		Name: "UnitGroup.delete",
		Doc: `ug.delete()
Deletes every unit and node of the group, then the group and its key
(VCP's cleanup()). Deleting a group that is already gone does nothing, so
a teardown cell can run again.`,
		Fn: groupDelete, Effectful: true, Plan: planGroupDelete,
	},
}

// receiverGroup is the group a method was called on, which must exist.
func receiverGroup(thread *starlark.Thread, b *starlark.Builtin) (*builtins.Env, *UnitGroup, error) {
	env, err := builtins.FromThread(thread)
	if err != nil {
		return nil, nil, err
	}
	g := b.Receiver().(*UnitGroup)
	if _, err := env.Reader().Group(g.Run, g.Name); err != nil {
		if err == state.ErrNotFound {
			return nil, nil, builtins.Errorf(b, "unit group %s was deleted; run the cell that makes it again", g.Name)
		}
		return nil, nil, err
	}
	return env, g, nil
}

func groupUnits(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := builtins.Unpack(b, args, kwargs); err != nil {
		return nil, err
	}
	env, g, err := receiverGroup(thread, b)
	if err != nil {
		return nil, err
	}
	rs, err := env.Reader().Units(g.Run, g.Name)
	if err != nil {
		return nil, err
	}
	var out []starlark.Value
	for _, r := range rs {
		out = append(out, unitValue(r))
	}
	return starlark.NewList(out), nil
}

func groupDelete(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := builtins.Unpack(b, args, kwargs); err != nil {
		return nil, err
	}
	g := b.Receiver().(*UnitGroup)
	_, eng, call, err := engineIn(thread, g.Run)
	if err != nil {
		return nil, err
	}
	if err := eng.DeleteGroup(starkit.Context(thread), call, g.Name); err != nil {
		return nil, failed(thread, b, err)
	}
	return starlark.None, nil
}

func ipList(nodes []fleet.Node) *starlark.List {
	var out []starlark.Value
	for _, n := range nodes {
		out = append(out, starlark.String(n.IP))
	}
	return starlark.NewList(out)
}

func nodeList(nodes []fleet.Node) *starlark.List {
	var out []starlark.Value
	for _, n := range nodes {
		out = append(out, nodeValue(n))
	}
	return starlark.NewList(out)
}

func setVars(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) > 0 {
		return nil, builtins.Inputf(b, "give variables by name: ug.set_vars(partition = \"debug\")")
	}
	if len(kwargs) == 0 {
		return nil, builtins.Inputf(b, "no variables given")
	}
	values := map[string]json.RawMessage{}
	for _, kv := range kwargs {
		name := string(kv[0].(starlark.String))
		v, err := builtins.EncodeValue(kv[1])
		if err != nil {
			return nil, builtins.Inputf(b, "variable %s: %v", name, err)
		}
		values[name] = v
	}
	g, err := receiverGroupRow(thread, b)
	if err != nil {
		return nil, err
	}
	_, eng, call, err := engineIn(thread, g.Run)
	if err != nil {
		return nil, err
	}
	return starlark.None, failed(thread, b, eng.SetVars(call, g.Name, values))
}

func getVars(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := builtins.Unpack(b, args, kwargs); err != nil {
		return nil, err
	}
	g, err := receiverGroupRow(thread, b)
	if err != nil {
		return nil, err
	}
	_, eng, _, err := engineIn(thread, g.Run)
	if err != nil {
		return nil, err
	}
	vars, err := eng.Vars(g.Name)
	if err != nil {
		return nil, failed(thread, b, err)
	}
	out := starlark.NewDict(len(vars))
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		v, err := builtins.DecodeValue(vars[name])
		if err != nil {
			return nil, fmt.Errorf("unit group %s: variable %s: %w", g.Name, name, err)
		}
		out.SetKey(starlark.String(name), v)
	}
	return out, nil
}
