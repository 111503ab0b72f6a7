package fleet

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/state"
)

// refresh reads the nodes' states from their providers: one List per
// provider and run for all its nodes (a cloud answers 100 nodes in one
// call). A node its provider no longer has is Gone. Nothing is written.
func (e *Engine) refresh(ctx context.Context, nodes []state.Resource) (map[int64]providers.NodeState, error) {
	type where struct{ provider, run string }
	byProvider := map[where][]state.Resource{}
	for _, n := range nodes {
		w := where{n.Provider, n.Run}
		byProvider[w] = append(byProvider[w], n)
	}
	keys := slices.SortedFunc(maps.Keys(byProvider), func(a, b where) int {
		return strings.Compare(a.provider+"\x00"+a.run, b.provider+"\x00"+b.run)
	})
	out := map[int64]providers.NodeState{}
	for _, w := range keys {
		list, name := byProvider[w], w.provider
		prov, err := e.Provider(name)
		if err != nil {
			return nil, err
		}
		var wheres []map[string]any
		seen := map[string]bool{}
		for _, n := range list {
			ref := e.ref(n)
			key := fmt.Sprint(ref.Spec)
			if !seen[key] {
				seen[key] = true
				wheres = append(wheres, ref.Spec)
			}
		}
		insts, err := prov.List(ctx, w.run, wheres)
		if err != nil {
			return nil, fmt.Errorf("%s: listing nodes: %w", name, err)
		}
		byToken := map[string]providers.Instance{}
		for _, inst := range insts {
			byToken[inst.Token] = inst
		}
		for _, n := range list {
			st := providers.Gone
			if inst, ok := byToken[n.Token]; ok {
				st = inst.State
			}
			out[n.ID] = st
		}
	}
	return out, nil
}

// readyOnly keeps the nodes whose provider answered: not intents, not
// nodes being deleted.
func readyOnly(nodes []state.Resource) []state.Resource {
	var out []state.Resource
	for _, n := range nodes {
		if n.Status == state.Ready {
			out = append(out, n)
		}
	}
	return out
}

// Nodes returns the ready nodes of group (of its unit, unless unit is
// ""), their states read from their providers and recorded, and only
// those in nodeState unless it is "".
func (e *Engine) Nodes(ctx context.Context, group, unit string, nodeState providers.NodeState) ([]Node, error) {
	all, err := e.Store.Resources(state.Query{Run: e.Run, Kind: state.KindNode, Group: group, Unit: unit})
	if err != nil {
		return nil, err
	}
	nodes := readyOnly(all)
	states, err := e.refresh(ctx, nodes)
	if err != nil {
		return nil, err
	}
	var out []Node
	for _, n := range nodes {
		if st := states[n.ID]; string(st) != n.State {
			n.State = string(st)
			if err := e.Store.UpdateResource(&n); err != nil {
				return nil, err
			}
		}
		if nodeState == "" || n.State == string(nodeState) {
			out = append(out, nodeOf(n))
		}
	}
	return out, nil
}

// Missing checks nodes by token and returns, for each one its provider
// no longer has or has in ERROR, why. The runner asks before a live cell
// uses what replayed cells returned. A resource whose record is gone was
// deleted through kumo, on purpose (a teardown cell, the REPL): that is
// not vanishing, and a cell that uses it fails saying where it was made.
func (e *Engine) Missing(ctx context.Context, tokens []string) (map[string]string, error) {
	out := map[string]string{}
	var nodes []state.Resource
	for _, t := range tokens {
		// Any run's: a cell may have made nodes in another run's group.
		r, err := e.Store.Resource(state.Query{Token: t})
		switch {
		case err == state.ErrNotFound:
		case err != nil:
			return nil, err
		case r.Kind == state.KindNode && r.Status == state.Ready:
			nodes = append(nodes, r)
		}
	}
	states, err := e.refresh(ctx, nodes)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		switch states[n.ID] {
		case providers.Gone:
			out[n.Token] = n.Name + " is gone from " + n.Provider
		case providers.Error:
			out[n.Token] = n.Name + " is in ERROR at " + n.Provider
		}
	}
	return out, nil
}
