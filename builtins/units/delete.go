package units

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kumo-dev/kumo/builtins"
	kssh "github.com/kumo-dev/kumo/builtins/ssh"
	"github.com/kumo-dev/kumo/lang/state"
)

// deleteResources deletes nodes (in parallel) and then the units and
// groups among rs. A node still at Intent may or may not exist at its
// provider: it is looked up by its token, so an interrupted creation is
// cleaned up too.
func deleteResources(ctx context.Context, env *builtins.Env, rs []state.Resource) error {
	var nodes, others []state.Resource
	for _, r := range rs {
		if r.Kind == state.KindNode {
			nodes = append(nodes, r)
		} else {
			others = append(others, r)
		}
	}
	err := forEach(len(nodes), func(i int) error {
		n := &nodes[i]
		n.Status = state.Deleting
		if err := env.Store.UpdateResource(n); err != nil {
			return err
		}
		kssh.PoolOf(env).DropNode(state.NodeKeyTarget(n.ID))
		if err := deleteAtProvider(ctx, env, n); err != nil {
			return fmt.Errorf("%s: %w (it stays recorded; run destroy again)", n.Name, err)
		}
		return env.Store.DeleteResource(n.ID)
	})
	if err != nil {
		return err
	}
	for _, r := range others {
		if r.Kind == state.KindGroup && r.Data.KeyFile != "" {
			os.Remove(r.Data.KeyFile)
			os.Remove(r.Data.KeyFile + ".pub")
		}
		if err := env.Store.DeleteResource(r.ID); err != nil {
			return err
		}
	}
	return nil
}

func deleteAtProvider(ctx context.Context, env *builtins.Env, n *state.Resource) error {
	prov, err := env.Provider(n.Provider)
	if err != nil {
		return err
	}
	id := n.Data.ProviderID
	if id == "" {
		inst, ok, err := prov.Find(ctx, n.Token)
		if err != nil {
			return err
		}
		if !ok {
			return nil // the provider never made it
		}
		id = inst.ID
	}
	return prov.Delete(ctx, id)
}

// DeleteGroup deletes a unit group with all its units and nodes.
func DeleteGroup(ctx context.Context, env *builtins.Env, group string) error {
	rs, err := env.Store.Resources(state.Query{Run: env.Run, Group: group})
	if err != nil {
		return err
	}
	// Nodes first, then units, then the group: deleteResources keeps that order.
	var ordered []state.Resource
	for _, kind := range []string{state.KindNode, state.KindUnit, state.KindGroup} {
		for _, r := range rs {
			if r.Kind == kind {
				ordered = append(ordered, r)
			}
		}
	}
	return deleteResources(ctx, env, ordered)
}

// DestroyRun deletes every resource of the run, then asks each provider
// for nodes of the run the state does not know (a leak) and deletes those
// too. It returns how many nodes were deleted.
func DestroyRun(ctx context.Context, env *builtins.Env) (int, error) {
	nodes, err := env.Store.Resources(state.Query{Run: env.Run, Kind: state.KindNode})
	if err != nil {
		return 0, err
	}
	deleted := len(nodes)
	groups, err := env.Store.Resources(state.Query{Run: env.Run, Kind: state.KindGroup})
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, g := range groups {
		if err := DeleteGroup(ctx, env, g.Name); err != nil {
			errs = append(errs, err)
		}
	}
	// Rows whose group row is missing (should not happen) go too.
	rest, err := env.Store.Resources(state.Query{Run: env.Run})
	if err == nil && len(rest) > 0 {
		errs = append(errs, deleteResources(ctx, env, rest))
	}
	for _, name := range env.ProviderNames() {
		prov := env.Providers[name]
		stray, err := prov.List(ctx, env.Run)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: listing nodes: %w", name, err))
			continue
		}
		for _, inst := range stray {
			if err := prov.Delete(ctx, inst.ID); err != nil {
				errs = append(errs, err)
			} else {
				deleted++
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return deleted, err
	}
	os.RemoveAll(filepath.Join(env.Store.Dir(), "keys", env.Run))
	return deleted, nil
}
