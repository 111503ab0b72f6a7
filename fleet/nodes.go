package fleet

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/state"
)

// Unit returns the unit called name of group, or an error saying it was
// deleted.
func (e *Engine) Unit(group, name string) (Unit, error) {
	u, err := e.Store.Resource(state.Query{Run: e.Run, Kind: state.KindUnit, Group: group, Name: name})
	if err == state.ErrNotFound {
		return unitOf(u), fmt.Errorf("unit %s/%s was deleted", group, name)
	}
	return unitOf(u), err
}

// NodesOf returns the nodes of unit u as the state records them (no
// provider is asked).
func (e *Engine) NodesOf(u Unit) ([]Node, error) {
	rs, err := e.unitNodes(u.rec)
	return nodesOf(rs), err
}

// AddNodes scales u out by n nodes of its spec. From a cell the call
// converges: run again, it returns the nodes it added before (making
// again any that vanished) and grows or shrinks to a changed n. Returns
// the call's nodes.
func (e *Engine) AddNodes(ctx context.Context, call Call, unit Unit, n int, limit time.Duration) ([]Node, error) {
	u := unit.rec
	g, err := e.group(Call{}, u.Group)
	if err != nil {
		return nil, err
	}
	if call.Site != "" {
		made, err := e.converge(ctx, call, u, nil, g, n, limit, true)
		return nodesOf(made), err
	}
	if err := e.partCapacity(ctx, u, nil, n); err != nil {
		return nil, err
	}
	first, err := e.Store.NextSeq(e.Run, u.Group, u.Name)
	if err != nil {
		return nil, err
	}
	intents := e.nodeIntents(u, nil, "", seqs(first, n))
	if err := e.Store.InsertIntents(intents); err != nil {
		return nil, err
	}
	e.note("%s/%s: adding %s (%s)", u.Group, u.Name, plural(n, "node", "nodes"), namesOf(intents))
	pending := make([]state.Resource, len(intents))
	for i, r := range intents {
		pending[i] = *r
	}
	if err := e.realize(ctx, u, g, pending, limit); err != nil {
		return nil, err
	}
	var out []Node
	for _, r := range pending {
		if fresh, err := e.Store.Resource(state.Query{ID: r.ID}); err == nil {
			out = append(out, nodeOf(fresh))
		}
	}
	return out, nil
}

// A Selector picks a node to delete: by resource id, or by name.
type Selector struct {
	ID   int64
	Name string
}

// DeleteNodes scales u in: the nodes picked by which, or the count most
// recently added ones. Deleting a node that is already gone is a no-op;
// from a cell, a call run again does not delete more than it did.
// Returns the names of the deleted nodes.
func (e *Engine) DeleteNodes(ctx context.Context, call Call, unit Unit, count int, which []Selector) ([]string, error) {
	u := unit.rec
	all, err := e.unitNodes(u)
	if err != nil {
		return nil, err
	}
	done := u.Data.DeletedBy[call.Site] // what this call deleted when it ran before
	var victims []state.Resource
	var result []string
	if which != nil {
		for _, s := range which {
			i := slices.IndexFunc(all, func(n state.Resource) bool { return (s.ID != 0 && n.ID == s.ID) || (s.ID == 0 && n.Name == s.Name) })
			switch {
			case i >= 0:
				victims = append(victims, all[i])
				result = append(result, all[i].Name)
			case s.ID != 0 || slices.Contains(done, s.Name):
				e.note("%s is already deleted", s.Name)
				result = append(result, s.Name)
			default:
				return nil, inputf("%s is not a node of unit %s/%s (it has: %s)", s.Name, u.Group, u.Name, names(all))
			}
		}
	} else {
		// Nodes this call chose before and did not finish deleting come
		// first; then the newest of the rest, until count are deleted.
		var rest []state.Resource
		for _, n := range all {
			if call.Site != "" && n.Status == state.Deleting && n.Data.DeletingBy == call.Site {
				victims = append(victims, n)
			} else if n.Status != state.Deleting {
				rest = append(rest, n)
			}
		}
		already := 0
		for _, name := range done {
			if !slices.ContainsFunc(all, func(n state.Resource) bool { return n.Name == name }) {
				already++
				result = append(result, name)
			}
		}
		need := count - already - len(victims)
		switch {
		case need > len(rest):
			return nil, inputf("count=%d: unit %s/%s has %s", count, u.Group, u.Name, plural(len(rest)+len(victims), "node", "nodes"))
		case need < 0:
			e.note("%s/%s: this call deleted %d node(s) before and now asks for %d; kumo does not bring deleted nodes back (add_nodes() makes new ones)",
				u.Group, u.Name, already+len(victims), count)
		case need > 0:
			victims = append(victims, rest[len(rest)-need:]...)
		}
		if already > 0 {
			e.note("%s/%s: %s deleted by this call before", u.Group, u.Name, plural(already, "node", "nodes"))
		}
		for _, v := range victims {
			result = append(result, v.Name)
		}
	}
	if len(victims) == 0 {
		return result, nil
	}
	if call.Site != "" {
		// Remember the choice before deleting anything, so that a deletion
		// cut short is finished on these nodes, not begun on others.
		if u.Data.DeletedBy == nil {
			u.Data.DeletedBy = map[string][]string{}
		}
		for _, v := range victims {
			if !slices.Contains(u.Data.DeletedBy[call.Site], v.Name) {
				u.Data.DeletedBy[call.Site] = append(u.Data.DeletedBy[call.Site], v.Name)
			}
		}
		if err := e.Store.UpdateResource(&u); err != nil {
			return nil, err
		}
	}
	e.note("%s/%s: deleting %s", u.Group, u.Name, names(victims))
	return result, e.deleteAll(ctx, call, victims)
}

// PowerOff powers every node of u off; disks are kept. Nodes already off
// are left alone.
func (e *Engine) PowerOff(ctx context.Context, unit Unit) error {
	u := unit.rec
	nodes, provs, err := e.unitAndProviders(u)
	if err != nil {
		return err
	}
	var on []state.Resource
	for _, n := range nodes {
		if providers.NodeState(n.State) != providers.PowerOff {
			on = append(on, n)
		}
	}
	if len(on) == 0 {
		e.note("%s/%s: every node is already powered off", u.Group, u.Name)
		return nil
	}
	e.note("%s/%s: powering off %s", u.Group, u.Name, names(on))
	return e.each(ctx, len(on), func(i int) error {
		n := &on[i]
		if e.Disconnect != nil {
			e.Disconnect(nodeOf(*n))
		}
		if err := provs[n.Provider].PowerOff(ctx, e.ref(*n)); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		n.State = string(providers.PowerOff)
		return e.Store.UpdateResource(n)
	})
}

// PowerOn powers u's nodes back on and waits until they answer.
func (e *Engine) PowerOn(ctx context.Context, unit Unit, limit time.Duration) error {
	u := unit.rec
	nodes, provs, err := e.unitAndProviders(u)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	e.note("%s/%s: powering on %s", u.Group, u.Name, names(nodes))
	return e.each(ctx, len(nodes), func(i int) error {
		n := &nodes[i]
		inst, err := provs[n.Provider].PowerOn(ctx, e.ref(*n))
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		if err := e.record(n, inst); err != nil {
			return err
		}
		if e.Ready != nil {
			return e.Ready(ctx, nodeOf(*n))
		}
		return nil
	})
}

// unitAndProviders is what power_off and power_on start from: the
// unit's nodes and the provider of each (its part's, where it has one).
func (e *Engine) unitAndProviders(u state.Resource) ([]state.Resource, map[string]providers.Provider, error) {
	nodes, err := e.unitNodes(u)
	if err != nil {
		return nil, nil, err
	}
	provs := map[string]providers.Provider{}
	for _, n := range nodes {
		if provs[n.Provider] == nil {
			p, err := e.Provider(n.Provider)
			if err != nil {
				return nil, nil, err
			}
			provs[n.Provider] = p
		}
	}
	return nodes, provs, nil
}

func removeKey(path string) {
	os.Remove(path)
	os.Remove(path + ".pub")
}
