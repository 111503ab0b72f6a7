package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/state"
)

// A unit spread over several candidate specs (a placement with
// spread=True) has its nodes in parts: the nodes of the unit's own spec
// (the first candidate it was made on) and, per other spec, the nodes
// made with it, recorded with that spec as their own (state.Part). Node
// numbers run across parts; every node is deleted, refreshed and powered
// through its own provider.

// CreatePart makes the unit called name of group if the group has none
// by that name (with spec as the unit's own), and converges the nodes
// this call made in it with spec to want (ConvergePart). total is the
// unit's node count over all its parts.
func (e *Engine) CreatePart(ctx context.Context, call Call, group, name string, spec Spec, want, total int, limit time.Duration) (int, error) {
	prov, err := e.Provider(spec.Provider)
	if err != nil {
		return 0, inputf("%v", err)
	}
	u, err := e.Store.Resource(state.Query{Run: e.Run, Kind: state.KindUnit, Group: group, Name: name})
	switch {
	case errors.Is(err, state.ErrNotFound):
		if _, err := e.group(Call{}, group); err != nil {
			return 0, err
		}
		u = state.Resource{Run: e.Run, Kind: state.KindUnit, Group: group, Unit: name, Name: name, Provider: spec.Provider,
			Token: NewToken(), Status: state.Intent, Spec: spec.JSON(), Data: state.Data{Nodes: total, Origin: call.Site}}
		if l, ok := prov.(providers.Locator); ok {
			u.Data.Location = l.Locate(spec.Fields)
		}
		if err := e.Store.InsertIntents([]*state.Resource{&u}); err != nil {
			return 0, err
		}
		e.note("creating unit %s/%s: %s over its placement's candidates", group, name, plural(total, "node", "nodes"))
	case err != nil:
		return 0, err
	case u.Data.Origin != call.Site:
		return 0, inputf("unit %s/%s was made by another call; change it where it is made, or use add_nodes() or delete_nodes()", group, name)
	}
	call.Effects.Made(u)
	if u.Data.Nodes != total {
		u.Data.Nodes = total
		if err := e.Store.UpdateResource(&u); err != nil {
			return 0, err
		}
	}
	n, err := e.convergePart(ctx, call, u, spec, want, limit)
	if err != nil && !providers.IsCapacity(err) {
		return n, err
	}
	// Read again: ConvergePart may have recorded a new part in the row.
	if u, rerr := e.Store.Resource(state.Query{ID: u.ID}); rerr != nil {
		return n, rerr
	} else if merr := e.markReady(&u); merr != nil {
		return n, merr
	}
	return n, err
}

// ConvergePart converges the nodes call made in unit u with spec (the
// unit's own, or a part of it, recorded if new) to want. What does not
// fit is given back: a pool provider (on-prem) makes only what it has
// free, and the nodes a cloud refused for capacity are deleted; the
// error is then a providers.CapacityError. Returns how many nodes of
// spec the call has in the unit.
func (e *Engine) ConvergePart(ctx context.Context, call Call, u Unit, spec Spec, want int, limit time.Duration) (int, error) {
	return e.convergePart(ctx, call, u.rec, spec, want, limit)
}

func (e *Engine) convergePart(ctx context.Context, call Call, u state.Resource, spec Spec, want int, limit time.Duration) (int, error) {
	prov, err := e.Provider(spec.Provider)
	if err != nil {
		return 0, inputf("%v", err)
	}
	g, err := e.group(Call{}, u.Group)
	if err != nil {
		return 0, err
	}
	part, err := e.part(&u, prov, spec)
	if err != nil {
		return 0, err
	}
	have, err := e.partNodes(u, part, call)
	if err != nil {
		return 0, err
	}
	var short error // what a pool has no room for
	if pool, ok := prov.(providers.Pool); ok && want > len(have) {
		free, all, err := pool.Capacity(ctx, spec.Flavor, spec.Fields)
		if err != nil {
			return len(have), err
		}
		if missing := want - len(have); free < missing {
			short = &providers.CapacityError{Err: fmt.Errorf("%s: not enough free hosts for flavor %s: wanted %d more, free %d, total %d", spec.Provider, spec.Flavor, missing, free, all)}
			want = len(have) + free
		}
	}
	_, err = e.converge(ctx, call, u, part, g, want, limit, true)
	if err != nil && !providers.IsCapacity(err) {
		return 0, err
	}
	if err != nil {
		// Give back the nodes the provider had no room for: they may or
		// may not exist there, and are looked up by their tokens.
		nodes, lerr := e.partNodes(u, part, call)
		if lerr != nil {
			return 0, lerr
		}
		var refused []state.Resource
		for _, n := range nodes {
			if n.Status != state.Ready {
				refused = append(refused, n)
			}
		}
		if derr := e.deleteAll(ctx, call, refused); derr != nil {
			return 0, fmt.Errorf("%s had no room (%v), and giving back what it did not make failed: %w", spec.Provider, err, derr)
		}
		short = err
	}
	made, err := e.partNodes(u, part, call)
	if err != nil {
		return 0, err
	}
	return len(made), short
}

// PartCounts returns, for each of specs, how many nodes this call has in
// unit name of group made with it (0 for all when there is no unit), and
// how many it has made with other specs.
func (e *Engine) PartCounts(call Call, group, name string, specs []Spec) ([]int, int, error) {
	counts := make([]int, len(specs))
	u, err := e.Store.Resource(state.Query{Run: e.Run, Kind: state.KindUnit, Group: group, Name: name})
	if errors.Is(err, state.ErrNotFound) {
		return counts, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	nodes, err := e.unitNodes(u)
	if err != nil {
		return nil, 0, err
	}
	others := 0
	for _, n := range nodes {
		if n.Data.Origin != call.Site || n.Status == state.Deleting {
			continue
		}
		spec, _, err := nodeSpec(u, n)
		if err != nil {
			return nil, 0, err
		}
		found := false
		for i, s := range specs {
			if s.Equal(spec) {
				counts[i]++
				found = true
				break
			}
		}
		if !found {
			others++
		}
	}
	return counts, others, nil
}

// part returns the part of u for spec, recording it if it is new: nil
// when spec is the unit's own.
func (e *Engine) part(u *state.Resource, prov providers.Provider, spec Spec) (*state.Part, error) {
	own, err := DecodeSpec(u.Spec)
	if err != nil {
		return nil, err
	}
	if own.Equal(spec) {
		return nil, nil
	}
	for i := range u.Data.Parts {
		if have, err := DecodeSpec(u.Data.Parts[i].Spec); err == nil && have.Equal(spec) {
			return &u.Data.Parts[i], nil
		}
	}
	p := state.Part{Provider: spec.Provider, Spec: spec.JSON()}
	if l, ok := prov.(providers.Locator); ok {
		p.Location = l.Locate(spec.Fields)
	}
	u.Data.Parts = append(u.Data.Parts, p)
	if err := e.Store.UpdateResource(u); err != nil {
		return nil, err
	}
	return &u.Data.Parts[len(u.Data.Parts)-1], nil
}

// partNodes are the nodes of part p that call made in u, not being
// deleted.
func (e *Engine) partNodes(u state.Resource, p *state.Part, call Call) ([]state.Resource, error) {
	all, err := e.unitNodes(u)
	if err != nil {
		return nil, err
	}
	var out []state.Resource
	for _, n := range all {
		if n.Data.Origin == call.Site && ofPart(n, p) && n.Status != state.Deleting {
			out = append(out, n)
		}
	}
	return out, nil
}
