package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/state"
)

// CreateUnit returns the unit called name of group, making it with nodes
// nodes of spec if the group has none by that name.
//
// The unit made by this same call before (same site) converges: what
// vanished is made again and the node count follows nodes. A unit made
// elsewhere is only returned, and must match what this call asks for.
// Returns the unit and, when this call made it, the nodes it made.
func (e *Engine) CreateUnit(ctx context.Context, call Call, group, name string, spec Spec, nodes int, limit time.Duration) (Unit, error) {
	u, err := e.createUnit(ctx, call, group, name, spec, nodes, limit)
	return unitOf(u), err
}

func (e *Engine) createUnit(ctx context.Context, call Call, group, name string, spec Spec, nodes int, limit time.Duration) (state.Resource, error) {
	prov, err := e.Provider(spec.Provider)
	if err != nil {
		return state.Resource{}, inputf("%v", err)
	}
	g, err := e.group(Call{}, group)
	if err != nil {
		return state.Resource{}, err
	}
	u, err := e.Store.Resource(state.Query{Run: e.Run, Kind: state.KindUnit, Group: group, Name: name})
	switch {
	case errors.Is(err, state.ErrNotFound):
		if err := e.checkCapacity(ctx, prov, spec, nodes); err != nil {
			return u, err
		}
		u = state.Resource{Run: e.Run, Kind: state.KindUnit, Group: group, Unit: name, Name: name, Provider: spec.Provider,
			Token: NewToken(), Status: state.Intent, Spec: spec.JSON(), Data: state.Data{Nodes: nodes, Origin: call.Site}}
		if l, ok := prov.(providers.Locator); ok {
			u.Data.Location = l.Locate(spec.Fields)
		}
		intents := append([]*state.Resource{&u}, e.nodeIntents(u, nil, call.Site, seqs(1, nodes))...)
		if err := e.Store.InsertIntents(intents); err != nil {
			return u, err
		}
		where := spec.Provider
		if c, ok := prov.(providers.Caveat); ok {
			where += " (" + c.Caveat() + ")"
		}
		e.note("creating unit %s/%s: %s on %s", group, name, plural(nodes, "node", "nodes"), where)
	case err != nil:
		return u, err
	default:
		if err := sameUnit(u, spec); err != nil {
			return u, err
		}
		if call.Site == "" || u.Data.Origin != call.Site {
			// Get: another call made the unit. Asking for another size is a
			// mistake to resolve where the unit is made, not to paper over.
			if u.Data.Nodes != nodes {
				return u, inputf("unit %s/%s already exists with %s; change it where it is made, or use add_nodes() or delete_nodes()",
					group, name, plural(u.Data.Nodes, "node", "nodes"))
			}
			if err := e.realize(ctx, u, g, e.pending(u, ""), limit); err != nil {
				return u, err
			}
			return u, e.markReady(&u)
		}
		if u.Data.Nodes != nodes {
			u.Data.Nodes = nodes
			if err := e.Store.UpdateResource(&u); err != nil {
				return u, err
			}
		}
	}
	call.Effects.Made(u)
	if _, err := e.converge(ctx, call, u, nil, g, nodes, limit, u.Status == state.Ready); err != nil {
		return u, err
	}
	return u, e.markReady(&u)
}

func (e *Engine) markReady(u *state.Resource) error {
	if u.Status == state.Ready {
		return nil
	}
	u.Status = state.Ready
	return e.Store.UpdateResource(u)
}

// sameUnit refuses a spec other than the one the unit was made with:
// kumo does not change a unit's nodes in place.
func sameUnit(u state.Resource, spec Spec) error {
	have, err := DecodeSpec(u.Spec)
	if err != nil {
		return err
	}
	if have.Provider != spec.Provider {
		return inputf("unit %s/%s lives on %s; this call asks for %s. A run keeps its units where they are: "+
			"give --name for a separate run on %s, or delete the unit first", u.Group, u.Name, have.Provider, spec.Provider, spec.Provider)
	}
	if !have.Equal(spec) {
		return inputf("unit %s/%s already exists with %s; this call asks for %s. kumo does not change a unit's spec in place: delete the unit first",
			u.Group, u.Name, have, spec)
	}
	return nil
}

// checkCapacity fails before anything is made when the provider finds
// the spec wrong (credentials, region, instance type, image) or a pool
// provider (on-prem) has fewer free machines than wanted.
func (e *Engine) checkCapacity(ctx context.Context, prov providers.Provider, spec Spec, wanted int) error {
	if wanted <= 0 {
		return nil
	}
	e.status("checking flavor %s with %s", spec.Flavor, spec.Provider)
	defer e.status("")
	if v, ok := prov.(providers.Validator); ok {
		if err := v.Validate(ctx, spec.Flavor, spec.Fields); err != nil {
			return err
		}
	}
	pool, ok := prov.(providers.Pool)
	if !ok {
		return nil
	}
	free, total, err := pool.Capacity(ctx, spec.Flavor, spec.Fields)
	if err != nil {
		return err
	}
	if free < wanted {
		return &providers.CapacityError{Err: fmt.Errorf("%s: not enough free hosts for flavor %s: wanted %d, free %d, total %d", spec.Provider, spec.Flavor, wanted, free, total)}
	}
	return nil
}

// unitSpec is a unit's spec and provider.
func (e *Engine) unitSpec(u state.Resource) (Spec, providers.Provider, error) {
	spec, err := DecodeSpec(u.Spec)
	if err != nil {
		return spec, nil, err
	}
	prov, err := e.Provider(u.Provider)
	return spec, prov, err
}

// partCapacity is checkCapacity for n more nodes of an existing unit, of
// part p (nil: its own spec).
func (e *Engine) partCapacity(ctx context.Context, u state.Resource, p *state.Part, n int) error {
	spec, prov, err := e.unitSpec(u)
	if p != nil && err == nil {
		if spec, err = DecodeSpec(p.Spec); err == nil {
			prov, err = e.Provider(p.Provider)
		}
	}
	if err != nil {
		return err
	}
	return e.checkCapacity(ctx, prov, spec, n)
}

// ofPart reports whether node n was made with part p's spec (nil: the
// unit's own).
func ofPart(n state.Resource, p *state.Part) bool {
	if p == nil {
		return !inPart(n)
	}
	return inPart(n) && string(n.Spec) == string(p.Spec)
}

// asker makes the requests for nodes of unit u of group g, each to the
// provider of its spec (the unit's, or its part's): the same for a node
// made, adopted or revived under its token.
func (e *Engine) asker(u, g state.Resource) (func(n state.Resource) (providers.Provider, providers.NodeRequest, error), error) {
	keyFile, err := groupKeyFile(e.Store, g)
	if err != nil {
		return nil, err
	}
	pub, err := GroupKey(keyFile)
	if err != nil {
		return nil, err
	}
	return func(n state.Resource) (providers.Provider, providers.NodeRequest, error) {
		spec, fields, err := nodeSpec(u, n)
		if err != nil {
			return nil, providers.NodeRequest{}, err
		}
		prov, err := e.Provider(n.Provider)
		return prov, providers.NodeRequest{
			Token: n.Token, Run: n.Run, Group: n.Group, Unit: n.Unit, Name: n.Name, Index: n.Seq,
			Flavor: spec.Flavor, Spec: fields, AuthorizedKey: strings.TrimSpace(pub),
		}, err
	}, nil
}

func seqs(first, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = first + i
	}
	return out
}

// nodeIntents are rows for new nodes of u numbered seqs, of part p (nil:
// the unit's own spec).
func (e *Engine) nodeIntents(u state.Resource, p *state.Part, site string, seqs []int) []*state.Resource {
	provider, spec := u.Provider, json.RawMessage(nil)
	if p != nil {
		provider, spec = p.Provider, p.Spec
	}
	var out []*state.Resource
	for _, seq := range seqs {
		out = append(out, &state.Resource{
			Run: e.Run, Kind: state.KindNode, Group: u.Group, Unit: u.Name, Name: fmt.Sprintf("%s-%d", u.Name, seq), Seq: seq,
			Provider: provider, Token: NewToken(), Status: state.Intent, State: string(providers.Starting), Spec: spec,
			Data: state.Data{Origin: site},
		})
	}
	return out
}

// unitNodes returns the nodes of u.
func (e *Engine) unitNodes(u state.Resource) ([]state.Resource, error) {
	return e.Store.Resources(state.Query{Run: e.Run, Kind: state.KindNode, Group: u.Group, Unit: u.Name})
}

// pending lists the nodes of u from site still at Intent.
func (e *Engine) pending(u state.Resource, site string) []state.Resource {
	all, _ := e.unitNodes(u)
	var out []state.Resource
	for _, n := range all {
		if n.Status == state.Intent && n.Data.Origin == site {
			out = append(out, n)
		}
	}
	return out
}

// converge brings the nodes that call's site made in u (in part p, nil
// for the unit's own spec) to want: it
// finishes deletions cut short, checks the ones it has with their
// provider, makes again what vanished, and makes or deletes nodes until
// there are want. Returns the site's nodes, by number.
// announce says new nodes are to be noted (CreateUnit has already said
// it is creating the unit).
func (e *Engine) converge(ctx context.Context, call Call, u state.Resource, p *state.Part, g state.Resource, want int, limit time.Duration, announce bool) ([]state.Resource, error) {
	all, err := e.unitNodes(u)
	if err != nil {
		return nil, err
	}
	var mine, deleting []state.Resource
	for _, n := range all {
		switch {
		case n.Data.Origin != call.Site || !ofPart(n, p):
		case n.Status == state.Deleting:
			deleting = append(deleting, n)
		default:
			mine = append(mine, n)
		}
	}
	if err := e.deleteAll(ctx, call, deleting); err != nil {
		return nil, err
	}
	alive, gone, err := e.sortOut(ctx, mine)
	if err != nil {
		return nil, err
	}
	var reuse []int // numbers of vanished nodes, given to their replacements
	for _, n := range gone {
		if providers.NodeState(n.State) == providers.Error {
			if err := e.revive(ctx, u, g, n, limit); err == nil {
				alive = append(alive, n)
				continue
			} else {
				e.note("%s is in ERROR at %s and could not be started again (%v); replacing it", n.Name, n.Provider, err)
			}
		} else {
			e.note("%s is gone from %s; making it again", n.Name, n.Provider)
		}
		if err := e.deleteAll(ctx, Call{}, []state.Resource{n}); err != nil {
			return nil, err
		}
		reuse = append(reuse, n.Seq)
	}
	sort.Slice(alive, func(i, j int) bool { return alive[i].Seq < alive[j].Seq })
	var kept []state.Resource // made and recorded by an earlier run of this call
	for _, n := range alive {
		if n.Status == state.Ready {
			kept = append(kept, n)
		}
	}
	if len(kept) > 0 && len(gone) == 0 && len(kept) <= want {
		e.note("%s/%s: %s made by this call before still there (%s)", u.Group, u.Name,
			plural(len(kept), "node", "nodes"), names(kept))
	}
	if surplus := len(alive) - want; surplus > 0 {
		victims := alive[len(alive)-surplus:]
		alive = alive[:len(alive)-surplus]
		e.note("%s/%s: this call made %d node(s) and now asks for %d: deleting %s", u.Group, u.Name, len(alive)+surplus, want, names(victims))
		if err := e.deleteAll(ctx, call, victims); err != nil {
			return nil, err
		}
	}
	if missing := want - len(alive); missing > 0 {
		if err := e.partCapacity(ctx, u, p, missing); err != nil {
			return nil, err
		}
		numbers := reuse
		if len(numbers) > missing {
			numbers = numbers[:missing]
		}
		if extra := missing - len(numbers); extra > 0 {
			next, err := e.Store.NextSeq(e.Run, u.Group, u.Name)
			if err != nil {
				return nil, err
			}
			numbers = append(numbers, seqs(next, extra)...)
		}
		intents := e.nodeIntents(u, p, call.Site, numbers)
		if err := e.Store.InsertIntents(intents); err != nil {
			return nil, err
		}
		for _, n := range intents {
			alive = append(alive, *n)
		}
		switch before := len(alive) - len(intents); {
		case before > 0:
			e.note("%s/%s: adding %s (%s) to the %d made by this call before", u.Group, u.Name, plural(len(intents), "node", "nodes"), namesOf(intents), before)
		case announce:
			e.note("%s/%s: adding %s (%s)", u.Group, u.Name, plural(len(intents), "node", "nodes"), namesOf(intents))
		}
	}
	var pending []state.Resource
	for _, n := range alive {
		if n.Status == state.Intent {
			pending = append(pending, n)
		}
	}
	if err := e.realize(ctx, u, g, pending, limit); err != nil {
		return nil, err
	}
	// Re-read: realize filled in addresses and states.
	done, err := e.unitNodes(u)
	if err != nil {
		return nil, err
	}
	var out []state.Resource
	for _, n := range done {
		if n.Data.Origin == call.Site && ofPart(n, p) && n.Status == state.Ready {
			out = append(out, n)
			call.Effects.Made(n)
		}
	}
	return out, nil
}

func namesOf(rs []*state.Resource) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return strings.Join(out, ", ")
}

// sortOut checks ready nodes with their providers: alive ones (their
// states updated) stay, and those the provider no longer has or has in
// ERROR are gone. Nodes at Intent are alive: realize adopts them.
func (e *Engine) sortOut(ctx context.Context, nodes []state.Resource) (alive, gone []state.Resource, err error) {
	states, err := e.refresh(ctx, readyOnly(nodes))
	if err != nil {
		return nil, nil, err
	}
	for _, n := range nodes {
		if n.Status == state.Ready {
			if st := states[n.ID]; st == providers.Gone || st == providers.Error {
				n.State = string(st)
				gone = append(gone, n)
				continue
			}
		}
		alive = append(alive, n)
	}
	sort.Slice(alive, func(i, j int) bool { return alive[i].Seq < alive[j].Seq })
	return alive, gone, nil
}

// revive asks the provider for a node in ERROR again, under its own
// token: a provider that can start it again (a local node whose server
// died) returns it running, with its disk. Anything else fails.
func (e *Engine) revive(ctx context.Context, u, g state.Resource, n state.Resource, limit time.Duration) error {
	request, err := e.asker(u, g)
	if err != nil {
		return err
	}
	prov, req, err := request(n)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	inst, err := prov.Create(ctx, req)
	if err != nil {
		return err
	}
	if inst.State != providers.Running {
		return fmt.Errorf("it is %s", inst.State)
	}
	if err := e.record(&n, inst); err != nil {
		return err
	}
	if e.Ready != nil {
		if err := e.Ready(ctx, nodeOf(n)); err != nil {
			return err
		}
	}
	e.note("%s was in ERROR at %s; started it again", n.Name, n.Provider)
	return nil
}

// realize asks the provider for every node in pending, in parallel (up
// to Parallel at once), records each answer and waits until each answers.
func (e *Engine) realize(ctx context.Context, u state.Resource, g state.Resource, pending []state.Resource, limit time.Duration) error {
	if len(pending) == 0 {
		return nil
	}
	request, err := e.asker(u, g)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var made, ready atomic.Int32
	total := len(pending)
	progress := func() {
		if e.Ready == nil { // wait_ssh = False: nothing is asked to answer
			e.status("%s/%s on %s: %d/%d created", u.Group, u.Name, pending[0].Provider, made.Load(), total)
			return
		}
		e.status("%s/%s on %s: %d/%d created, %d/%d answering", u.Group, u.Name, pending[0].Provider, made.Load(), total, ready.Load(), total)
	}
	progress()
	defer e.status("")
	err = e.each(ctx, total, func(i int) error {
		n := &pending[i]
		prov, req, err := request(*n)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		inst, err := prov.Create(ctx, req)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		e.fault("after-create")
		if err := e.record(n, inst); err != nil {
			return err
		}
		made.Add(1)
		progress()
		if e.Ready != nil {
			if err := e.Ready(ctx, nodeOf(*n)); err != nil {
				return err
			}
		}
		ready.Add(1)
		progress()
		return nil
	})
	if err != nil {
		return err
	}
	e.note("%s/%s: %s running: %s", u.Group, u.Name, plural(total, "node", "nodes"), names(pending))
	return nil
}

// record writes the provider's answer into the node's row and pins the
// host key the provider reported, if it knows it.
func (e *Engine) record(n *state.Resource, inst providers.Instance) error {
	n.Status = state.Ready
	n.State = string(inst.State)
	origin, mesh, meshIP := n.Data.Origin, n.Data.Mesh, n.Data.MeshIP
	n.Data = state.Data{ProviderID: inst.ID, IP: inst.IP, PrivateIP: inst.PrivateIP, Port: inst.Port, User: inst.User,
		KeyFile: inst.KeyFile, HostName: inst.HostName, Existing: inst.Existing, Origin: origin, Mesh: mesh, MeshIP: meshIP}
	if j := inst.Jump; j != nil {
		n.Data.Jump = &state.Hop{Name: j.Name, Host: j.Host, Port: j.Port, User: j.User, KeyFile: j.KeyFile}
	}
	if err := e.Store.UpdateResource(n); err != nil {
		return err
	}
	if inst.HostKey != "" {
		return e.Store.PinKey(e.Run, state.NodeKeyTarget(n.ID), inst.HostKey)
	}
	return nil
}

// DeleteUnit deletes a unit and its nodes. A unit that is already gone
// is not an error.
func (e *Engine) DeleteUnit(ctx context.Context, call Call, group, name string) error {
	u, err := e.Store.Resource(state.Query{Run: e.Run, Kind: state.KindUnit, Group: group, Name: name})
	if errors.Is(err, state.ErrNotFound) {
		e.note("unit %s/%s is already deleted", group, name)
		return nil
	}
	if err != nil {
		return err
	}
	nodes, err := e.unitNodes(u)
	if err != nil {
		return err
	}
	e.note("deleting unit %s/%s: %s", group, name, plural(len(nodes), "node", "nodes"))
	return e.deleteAll(ctx, call, append(nodes, u))
}

// deleteAll deletes nodes (in parallel) and then the units and groups
// among rs. A node still at Intent may or may not exist at its provider:
// it is looked up by its token, so an interrupted creation is cleaned up
// too.
func (e *Engine) deleteAll(ctx context.Context, call Call, rs []state.Resource) error {
	var nodes, others []state.Resource
	for _, r := range rs {
		if r.Kind == state.KindNode {
			nodes = append(nodes, r)
		} else {
			others = append(others, r)
		}
	}
	var done atomic.Int32
	if len(nodes) > 0 {
		e.status("deleting %s: 0/%d deleted", plural(len(nodes), "node", "nodes"), len(nodes))
		defer e.status("")
	}
	err := e.each(ctx, len(nodes), func(i int) error {
		n := &nodes[i]
		defer func() {
			e.status("deleting %s: %d/%d deleted", plural(len(nodes), "node", "nodes"), done.Add(1), len(nodes))
		}()
		if n.Status != state.Deleting {
			n.Status = state.Deleting
			if n.Data.DeletingBy == "" {
				n.Data.DeletingBy = call.Site
			}
			if err := e.Store.UpdateResource(n); err != nil {
				return err
			}
		}
		if e.Disconnect != nil {
			e.Disconnect(nodeOf(*n))
		}
		if err := e.deleteAtProvider(ctx, n); err != nil {
			return fmt.Errorf("%s: %w (it stays recorded; run the deletion or kumo destroy again)", n.Name, err)
		}
		call.Effects.Deleted(*n)
		return e.Store.DeleteResource(n.ID)
	})
	if err != nil {
		return err
	}
	for _, r := range others {
		if r.Kind == state.KindGroup && r.Data.KeyFile != "" {
			removeKey(e.Store.GroupKeyFile(r))
			if err := e.Store.DeleteGroupKey(r.Run, r.Name); err != nil {
				return err
			}
		}
		call.Effects.Deleted(r)
		if err := e.Store.DeleteResource(r.ID); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) deleteAtProvider(ctx context.Context, n *state.Resource) error {
	prov, err := e.Provider(n.Provider)
	if err != nil {
		return err
	}
	ref := e.ref(*n)
	if ref.ID == "" {
		inst, ok, err := prov.Find(ctx, ref)
		if err != nil {
			return err
		}
		if !ok {
			return nil // the provider never made it
		}
		ref.ID = inst.ID
	}
	return prov.Delete(ctx, ref)
}
