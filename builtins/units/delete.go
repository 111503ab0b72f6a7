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
	"github.com/kumo-dev/kumo/providers"
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
	ref := nodeRef(env, *n)
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

// DeleteGroup deletes a unit group with all its units and nodes, then
// what providers made for the group as a whole.
func DeleteGroup(ctx context.Context, env *builtins.Env, group string) error {
	rs, err := env.Store.Resources(state.Query{Run: env.Run, Group: group})
	if err != nil {
		return err
	}
	// Nodes, then units, then what providers made for the group, then the
	// group itself: a failure part-way leaves the group recorded, so that
	// running destroy again finishes the job.
	var nodes, units, groups []state.Resource
	for _, r := range rs {
		switch r.Kind {
		case state.KindNode:
			nodes = append(nodes, r)
		case state.KindUnit:
			units = append(units, r)
		default:
			groups = append(groups, r)
		}
	}
	if err := deleteResources(ctx, env, append(nodes, units...)); err != nil {
		return err
	}
	for name, list := range unitSpecs(units) {
		if prov, err := env.Provider(name); err == nil {
			if c, ok := prov.(providers.GroupCleaner); ok {
				if err := c.DeleteGroup(ctx, env.Run, group, list); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
		}
	}
	return deleteResources(ctx, env, groups)
}

// unitSpecs gathers the spec fields of the units among rs, by provider.
func unitSpecs(rs []state.Resource) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, r := range rs {
		if r.Kind == state.KindUnit {
			out[r.Provider] = append(out[r.Provider], specFields(r.Spec))
		}
	}
	return out
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
	all, err := env.Store.Resources(state.Query{Run: env.Run})
	if err != nil {
		return 0, err
	}
	specs := unitSpecs(all)
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
		stray, err := prov.List(ctx, env.Run, specs[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: listing nodes: %w", name, err))
			continue
		}
		for _, inst := range stray {
			if err := prov.Delete(ctx, providers.Ref{ID: inst.ID, Token: inst.Token, Spec: inst.Spec}); err != nil {
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
