package units

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	kssh "github.com/kumo-dev/kumo/builtins/ssh"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/lang/state"
	"github.com/kumo-dev/kumo/providers"
)

var unitMethods = builtins.Methods{
	"nodes": {
		Name: "Unit.nodes",
		Doc: `unit.nodes(node_state=None)
Returns the unit's nodes, optionally only those in node_state.`,
		Fn: listNodes(starlark.None, nodeList), Journal: true,
	},
	"find_ip_addresses": {
		Name: "Unit.find_ip_addresses",
		Doc: `unit.find_ip_addresses(node_state="RUNNING")
Returns the IP addresses of the unit's nodes in node_state (None: all).`,
		Fn: listNodes(starlark.String("RUNNING"), ipList), Journal: true,
	},
	"add_nodes": {
		Name: "Unit.add_nodes",
		Doc: `unit.add_nodes(n, timeout="10m")
Scales the unit out by n nodes of its spec, in parallel; returns the new
nodes once they are RUNNING and answer SSH.`,
		Fn: addNodes, Journal: true,
	},
	"delete_nodes": {
		Name: "Unit.delete_nodes",
		Doc: `unit.delete_nodes(count=None, nodes=None)
Scales the unit in: deletes the given nodes (node values or names), or
the count most recently added ones. Returns the names of the deleted nodes.`,
		Fn: deleteNodes, Journal: true,
	},
	"power_off": {
		Name: "Unit.power_off",
		Doc: `unit.power_off()
Powers every node of the unit off; their disks (for local nodes, their
folders) are kept.`,
		Fn: powerOff, Journal: true,
	},
	"power_on": {
		Name: "Unit.power_on",
		Doc: `unit.power_on(timeout="10m")
Powers the unit's nodes back on and waits until they answer SSH.`,
		Fn: powerOn, Journal: true,
	},
	"delete": {
		Name: "Unit.delete",
		Doc: `unit.delete()
Deletes the unit and all its nodes.`,
		Fn: unitDelete, Journal: true,
	},
}

func createUnit(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	var sp *Spec
	nodes := 1
	var timeout starlark.Value = starlark.String("10m")
	if err := builtins.Unpack(b, args, kwargs, "name", &name, "spec", &sp, "nodes?", &nodes, "timeout?", &timeout); err != nil {
		return nil, err
	}
	if !validName(name) {
		return nil, builtins.Inputf(b, "bad unit name %q: use letters, digits, '-' and '_'", name)
	}
	if nodes < 0 || nodes > 1000 {
		return nil, builtins.Inputf(b, "nodes=%d: want 0 to 1000", nodes)
	}
	limit, err := builtins.Duration(b, "timeout", timeout)
	if err != nil {
		return nil, err
	}
	env, g, err := receiverGroup(thread, b)
	if err != nil {
		return nil, err
	}
	specJSON, fields, err := sp.JSON()
	if err != nil {
		return nil, builtins.Inputf(b, "%v", err)
	}
	if _, err := env.Provider(sp.Provider); err != nil {
		return nil, builtins.Inputf(b, "%v", err)
	}
	u, err := env.Store.Resource(state.Query{Run: env.Run, Kind: state.KindUnit, Group: g.Name, Name: name})
	switch {
	case err == nil:
		// Get: the unit exists. Asking for something else is a mistake the
		// user must resolve, not something to paper over.
		if !bytes.Equal(canonical(u.Spec), canonical(specJSON)) {
			return nil, builtins.Inputf(b, "unit %s already exists with %s; delete it first to change its spec", name, u.Spec)
		}
		if u.Data.Nodes != nodes {
			return nil, builtins.Inputf(b, "unit %s already exists with %d nodes; use add_nodes() or delete_nodes() to change that", name, u.Data.Nodes)
		}
	case errors.Is(err, state.ErrNotFound):
		if err := checkCapacity(lang.Context(thread), env, sp.Provider, sp.Flavor, specFields(specJSON), nodes); err != nil {
			return nil, builtins.Errorf(b, "%v", err)
		}
		u = state.Resource{Run: env.Run, Kind: state.KindUnit, Group: g.Name, Unit: name, Name: name, Provider: sp.Provider,
			Token: newToken(), Status: state.Intent, Spec: specJSON, Data: state.Data{Nodes: nodes}}
		intents := []*state.Resource{&u}
		intents = append(intents, nodeIntents(env, g.Name, name, sp.Provider, 1, nodes)...)
		if err := env.Store.InsertIntents(intents); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	ctx := lang.Context(thread)
	if _, err := realizeUnit(ctx, env, u, fields, limit); err != nil {
		return nil, builtins.Errorf(b, "%v", err)
	}
	if u.Status != state.Ready {
		u.Status = state.Ready
		if err := env.Store.UpdateResource(&u); err != nil {
			return nil, err
		}
	}
	return &Unit{Run: env.Run, Group: g.Name, Name: name, Provider: sp.Provider}, nil
}

// checkCapacity fails before anything is made when the provider finds
// the spec wrong (credentials, region, instance type, image) or a pool
// provider (on-prem) has fewer free machines than wanted.
func checkCapacity(ctx context.Context, env *builtins.Env, provider, flavor string, fields map[string]any, wanted int) error {
	prov, err := env.Provider(provider)
	if err != nil {
		return err
	}
	if v, ok := prov.(providers.Validator); ok && wanted > 0 {
		if err := v.Validate(ctx, flavor, fields); err != nil {
			return err
		}
	}
	pool, ok := prov.(providers.Pool)
	if !ok || wanted == 0 {
		return nil
	}
	free, total, err := pool.Capacity(ctx, flavor, fields)
	if err != nil {
		return err
	}
	if free < wanted {
		return fmt.Errorf("%s: not enough free hosts for flavor %s: wanted %d, free %d, total %d", provider, flavor, wanted, free, total)
	}
	return nil
}

// nodeRef names a node to its provider, with its unit's spec fields.
func nodeRef(env *builtins.Env, n state.Resource) providers.Ref {
	ref := providers.Ref{ID: n.Data.ProviderID, Token: n.Token}
	if u, err := env.Store.Resource(state.Query{Run: n.Run, Kind: state.KindUnit, Group: n.Group, Name: n.Unit}); err == nil {
		ref.Spec = specFields(u.Spec)
	}
	return ref
}

// specFields reads the fields of a stored spec.
func specFields(specJSON []byte) map[string]any {
	var s struct {
		Fields map[string]any `json:"fields"`
	}
	json.Unmarshal(specJSON, &s)
	return s.Fields
}

// canonical re-marshals JSON so that key order does not matter.
func canonical(b []byte) []byte {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	out, _ := json.Marshal(v)
	return out
}

func newToken() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func nodeIntents(env *builtins.Env, group, unit, provider string, first, n int) []*state.Resource {
	var out []*state.Resource
	for i := 0; i < n; i++ {
		seq := first + i
		out = append(out, &state.Resource{
			Run: env.Run, Kind: state.KindNode, Group: group, Unit: unit, Name: fmt.Sprintf("%s-%d", unit, seq), Seq: seq,
			Provider: provider, Token: newToken(), Status: state.Intent, State: providers.Starting,
		})
	}
	return out
}

// realizeUnit asks the provider for every node of the unit still at
// Intent, in parallel, records each answer, and waits until all nodes
// answer SSH. Returns the nodes it made ready.
func realizeUnit(ctx context.Context, env *builtins.Env, u state.Resource, fields map[string]any, limit time.Duration) ([]state.Resource, error) {
	all, err := env.Store.Resources(state.Query{Run: env.Run, Kind: state.KindNode, Group: u.Group, Unit: u.Name})
	if err != nil {
		return nil, err
	}
	var pending []state.Resource
	for _, n := range all {
		if n.Status == state.Intent {
			pending = append(pending, n)
		}
	}
	if len(pending) == 0 {
		return nil, nil
	}
	var spec struct {
		Flavor string         `json:"flavor"`
		Fields map[string]any `json:"fields"`
	}
	json.Unmarshal(u.Spec, &spec)
	if fields == nil {
		fields = spec.Fields
	}
	prov, err := env.Provider(u.Provider)
	if err != nil {
		return nil, err
	}
	g, err := ensureGroup(env, u.Group)
	if err != nil {
		return nil, err
	}
	pub, err := groupKey(g.Data.KeyFile)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	env.Notef("creating %d node(s) of unit %s on %s", len(pending), u.Name, u.Provider)
	err = forEach(len(pending), func(i int) error {
		n := &pending[i]
		inst, err := prov.Create(ctx, providers.NodeRequest{
			Token: n.Token, Run: n.Run, Group: n.Group, Unit: n.Unit, Name: n.Name, Index: n.Seq,
			Flavor: spec.Flavor, Spec: fields, AuthorizedKey: strings.TrimSpace(pub),
		})
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		faultPoint("after-create")
		if err := record(env, n, inst); err != nil {
			return err
		}
		return waitSSH(ctx, env, n)
	})
	if err != nil {
		return nil, err
	}
	return pending, nil
}

// record writes the provider's answer into the node's row and pins the
// host key the provider reported, if it knows it.
func record(env *builtins.Env, n *state.Resource, inst providers.Instance) error {
	n.Status = state.Ready
	n.State = inst.State
	n.Data = state.Data{ProviderID: inst.ID, IP: inst.IP, PrivateIP: inst.PrivateIP, Port: inst.Port, User: inst.User,
		KeyFile: inst.KeyFile, Existing: inst.Existing}
	if j := inst.Jump; j != nil {
		n.Data.Jump = &state.Hop{Name: j.Name, Host: j.Host, Port: j.Port, User: j.User, KeyFile: j.KeyFile}
	}
	if err := env.Store.UpdateResource(n); err != nil {
		return err
	}
	if inst.HostKey != "" {
		return env.Store.PinKey(env.Run, state.NodeKeyTarget(n.ID), inst.HostKey)
	}
	return nil
}

// waitSSH polls until the node completes an SSH login and runs `true`.
// A refused host key is final; anything else is retried until ctx ends.
func waitSSH(ctx context.Context, env *builtins.Env, n *state.Resource) error {
	ep, err := env.Target(nodeValue(*n))
	if err != nil {
		return err
	}
	pool := kssh.PoolOf(env)
	delay := 50 * time.Millisecond
	for {
		err := pool.Ping(ctx, ep)
		if err == nil {
			return nil
		}
		var hk *kssh.HostKeyError
		if errors.As(err, &hk) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer SSH in time: %v", n.Name, err)
		case <-time.After(delay):
		}
		if delay < time.Second {
			delay *= 2
		}
	}
}

// forEach runs f for 0..n-1 concurrently and joins their errors.
func forEach(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// faultPoint lets the crash tests kill kumo -9 at an exact point: with
// KUMO_FAULT=after-create, kumo dies right after a provider made a node
// and before the state recorded it, the window the intent rows cover.
func faultPoint(name string) {
	if os.Getenv("KUMO_FAULT") == name {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

// listNodes makes the nodes() and find_ip_addresses() methods of unit
// groups and units: the ready nodes of the receiver, refreshed from their
// providers, in node_state (defaultState unless given), rendered.
func listNodes(defaultState starlark.Value, render func([]state.Resource) *starlark.List) builtins.Func {
	return func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		nodeState := defaultState
		if err := builtins.Unpack(b, args, kwargs, "node_state?", &nodeState); err != nil {
			return nil, err
		}
		var env *builtins.Env
		var q state.Query
		switch recv := b.Receiver().(type) {
		case *UnitGroup:
			e, g, err := receiverGroup(thread, b)
			if err != nil {
				return nil, err
			}
			env, q = e, state.Query{Run: e.Run, Kind: state.KindNode, Group: g.Name}
		case *Unit:
			e, u, err := receiverUnit(thread, b)
			if err != nil {
				return nil, err
			}
			env, q = e, state.Query{Run: e.Run, Kind: state.KindNode, Group: u.Group, Unit: u.Name}
		default:
			return nil, fmt.Errorf("%s: unexpected receiver %s", b.Name(), recv.Type())
		}
		nodes, err := refreshedNodes(thread, env, q, b, nodeState)
		if err != nil {
			return nil, err
		}
		return render(nodes), nil
	}
}

// unitNodesAndProvider is what power_off and power_on start from.
func unitNodesAndProvider(thread *starlark.Thread, b *starlark.Builtin) (*builtins.Env, []state.Resource, providers.Provider, error) {
	env, u, err := receiverUnit(thread, b)
	if err != nil {
		return nil, nil, nil, err
	}
	nodes, err := env.Store.Resources(state.Query{Run: env.Run, Kind: state.KindNode, Group: u.Group, Unit: u.Name})
	if err != nil {
		return nil, nil, nil, err
	}
	prov, err := env.Provider(u.Provider)
	return env, nodes, prov, err
}

func receiverUnit(thread *starlark.Thread, b *starlark.Builtin) (*builtins.Env, state.Resource, error) {
	env, err := builtins.FromThread(thread)
	if err != nil {
		return nil, state.Resource{}, err
	}
	u := b.Receiver().(*Unit)
	r, err := env.Store.Resource(state.Query{Run: env.Run, Kind: state.KindUnit, Group: u.Group, Name: u.Name})
	if errors.Is(err, state.ErrNotFound) {
		return nil, r, builtins.Errorf(b, "unit %s/%s was deleted", u.Group, u.Name)
	}
	return env, r, err
}

// refreshedNodes returns the ready nodes matching q, with their states
// read from their providers (in parallel), filtered by nodeState.
func refreshedNodes(thread *starlark.Thread, env *builtins.Env, q state.Query, b *starlark.Builtin, nodeState starlark.Value) ([]state.Resource, error) {
	want := ""
	if s, ok := nodeState.(starlark.String); ok {
		want = strings.ToUpper(string(s))
	} else if nodeState != starlark.None {
		return nil, builtins.Inputf(b, "for parameter node_state: got %s, want string or None", nodeState.Type())
	}
	all, err := env.Store.Resources(q)
	if err != nil {
		return nil, err
	}
	var nodes []state.Resource
	for _, n := range all {
		if n.Status == state.Ready {
			nodes = append(nodes, n)
		}
	}
	if err := refreshStates(lang.Context(thread), env, nodes); err != nil {
		return nil, builtins.Errorf(b, "%v", err)
	}
	var out []state.Resource
	for _, n := range nodes {
		if want == "" || n.State == want {
			out = append(out, n)
		}
	}
	return out, nil
}

// refreshStates reads the nodes' states from their providers: one List
// per provider for all its nodes (a cloud answers 100 nodes in one call),
// and records the ones that changed. A node its provider no longer has
// is in ERROR.
func refreshStates(ctx context.Context, env *builtins.Env, nodes []state.Resource) error {
	byProvider := map[string][]int{}
	for i, n := range nodes {
		byProvider[n.Provider] = append(byProvider[n.Provider], i)
	}
	for name, idx := range byProvider {
		prov, err := env.Provider(name)
		if err != nil {
			return err
		}
		var specs []map[string]any
		for _, i := range idx {
			specs = append(specs, nodeRef(env, nodes[i]).Spec)
		}
		insts, err := prov.List(ctx, env.Run, specs)
		if err != nil {
			return err
		}
		byToken := map[string]providers.Instance{}
		for _, inst := range insts {
			byToken[inst.Token] = inst
		}
		for _, i := range idx {
			n := &nodes[i]
			st := providers.Error
			if inst, ok := byToken[n.Token]; ok {
				st = inst.State
			}
			if st != n.State {
				n.State = st
				if err := env.Store.UpdateResource(n); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func addNodes(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var n int
	var timeout starlark.Value = starlark.String("10m")
	if err := builtins.Unpack(b, args, kwargs, "n", &n, "timeout?", &timeout); err != nil {
		return nil, err
	}
	if n < 1 || n > 1000 {
		return nil, builtins.Inputf(b, "n=%d: want 1 to 1000", n)
	}
	limit, err := builtins.Duration(b, "timeout", timeout)
	if err != nil {
		return nil, err
	}
	env, u, err := receiverUnit(thread, b)
	if err != nil {
		return nil, err
	}
	var spec struct {
		Flavor string `json:"flavor"`
	}
	json.Unmarshal(u.Spec, &spec)
	if err := checkCapacity(lang.Context(thread), env, u.Provider, spec.Flavor, specFields(u.Spec), n); err != nil {
		return nil, builtins.Errorf(b, "%v", err)
	}
	first, err := env.Store.NextSeq(env.Run, u.Group, u.Name)
	if err != nil {
		return nil, err
	}
	u.Data.Nodes += n
	if err := env.Store.UpdateResource(&u); err != nil {
		return nil, err
	}
	if err := env.Store.InsertIntents(nodeIntents(env, u.Group, u.Name, u.Provider, first, n)); err != nil {
		return nil, err
	}
	made, err := realizeUnit(lang.Context(thread), env, u, nil, limit)
	if err != nil {
		return nil, builtins.Errorf(b, "%v", err)
	}
	return nodeList(made), nil
}

func deleteNodes(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var count, which starlark.Value = starlark.None, starlark.None
	if err := builtins.Unpack(b, args, kwargs, "count?", &count, "nodes?", &which); err != nil {
		return nil, err
	}
	env, u, err := receiverUnit(thread, b)
	if err != nil {
		return nil, err
	}
	all, err := env.Store.Resources(state.Query{Run: env.Run, Kind: state.KindNode, Group: u.Group, Unit: u.Name})
	if err != nil {
		return nil, err
	}
	var victims []state.Resource
	switch {
	case count != starlark.None && which != starlark.None:
		return nil, builtins.Inputf(b, "give count or nodes, not both")
	case count != starlark.None:
		c, err := starlark.AsInt32(count)
		if err != nil || c < 1 || c > len(all) {
			return nil, builtins.Inputf(b, "count=%s: the unit has %d nodes", count, len(all))
		}
		victims = all[len(all)-c:]
	case which != starlark.None:
		list, ok := which.(starlark.Indexable)
		if !ok {
			return nil, builtins.Inputf(b, "for parameter nodes: got %s, want list of nodes or names", which.Type())
		}
		for i := 0; i < list.Len(); i++ {
			found := false
			for _, n := range all {
				x := list.Index(i)
				if node, ok := x.(*Node); (ok && node.ID == n.ID) || x == starlark.String(n.Name) {
					victims = append(victims, n)
					found = true
				}
			}
			if !found {
				return nil, builtins.Inputf(b, "%s is not a node of unit %s", list.Index(i), u.Name)
			}
		}
	default:
		return nil, builtins.Inputf(b, "give count= or nodes=")
	}
	if err := deleteResources(lang.Context(thread), env, victims); err != nil {
		return nil, builtins.Errorf(b, "%v", err)
	}
	u.Data.Nodes -= len(victims)
	if u.Data.Nodes < 0 {
		u.Data.Nodes = 0
	}
	if err := env.Store.UpdateResource(&u); err != nil {
		return nil, err
	}
	var names []starlark.Value
	for _, v := range victims {
		names = append(names, starlark.String(v.Name))
	}
	return starlark.NewList(names), nil
}

func powerOff(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := builtins.Unpack(b, args, kwargs); err != nil {
		return nil, err
	}
	env, nodes, prov, err := unitNodesAndProvider(thread, b)
	if err != nil {
		return nil, err
	}
	ctx := lang.Context(thread)
	err = forEach(len(nodes), func(i int) error {
		n := &nodes[i]
		kssh.PoolOf(env).DropNode(state.NodeKeyTarget(n.ID))
		if err := prov.PowerOff(ctx, nodeRef(env, *n)); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		n.State = providers.PowerOff
		return env.Store.UpdateResource(n)
	})
	if err != nil {
		return nil, builtins.Errorf(b, "%v", err)
	}
	return starlark.None, nil
}

func powerOn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var timeout starlark.Value = starlark.String("10m")
	if err := builtins.Unpack(b, args, kwargs, "timeout?", &timeout); err != nil {
		return nil, err
	}
	limit, err := builtins.Duration(b, "timeout", timeout)
	if err != nil {
		return nil, err
	}
	env, nodes, prov, err := unitNodesAndProvider(thread, b)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(lang.Context(thread), limit)
	defer cancel()
	err = forEach(len(nodes), func(i int) error {
		n := &nodes[i]
		inst, err := prov.PowerOn(ctx, nodeRef(env, *n))
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		if err := record(env, n, inst); err != nil {
			return err
		}
		return waitSSH(ctx, env, n)
	})
	if err != nil {
		return nil, builtins.Errorf(b, "%v", err)
	}
	return starlark.None, nil
}

func unitDelete(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := builtins.Unpack(b, args, kwargs); err != nil {
		return nil, err
	}
	env, u, err := receiverUnit(thread, b)
	if err != nil {
		return nil, err
	}
	nodes, err := env.Store.Resources(state.Query{Run: env.Run, Kind: state.KindNode, Group: u.Group, Unit: u.Name})
	if err != nil {
		return nil, err
	}
	if err := deleteResources(lang.Context(thread), env, append(nodes, u)); err != nil {
		return nil, builtins.Errorf(b, "%v", err)
	}
	return starlark.None, nil
}
