package fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/state"
)

// Destroy deletes every resource of the run, then asks each provider
// for nodes of the run the state does not know (a leak) and deletes those
// too. It returns the nodes deleted, each named once.
func (e *Engine) Destroy(ctx context.Context) ([]string, error) {
	all, err := e.Store.Resources(state.Query{Run: e.Run})
	if err != nil {
		return nil, err
	}
	wheres := unitWheres(all)
	var deleted []string
	seen := map[string]bool{} // tokens: a node is counted once
	for _, r := range all {
		if r.Kind == state.KindNode {
			deleted = append(deleted, r.Name)
			seen[r.Token] = true
		}
	}
	var errs []error
	groups := map[string]bool{}
	for _, r := range all {
		if r.Kind == state.KindGroup {
			groups[r.Name] = true
			if err := e.DeleteGroup(ctx, Call{}, r.Name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// Rows whose group row is missing (should not happen) go too.
	var orphans []state.Resource
	for _, r := range all {
		if !groups[r.Group] {
			orphans = append(orphans, r)
		}
	}
	if len(orphans) > 0 {
		errs = append(errs, e.deleteAll(ctx, Call{}, orphans))
	}
	for _, name := range slices.Sorted(maps.Keys(e.Providers)) {
		prov := e.Providers[name]
		stray, err := prov.List(ctx, e.Run, wheres[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: listing nodes: %w", name, err))
			continue
		}
		for _, inst := range stray {
			if err := prov.Delete(ctx, providers.Ref{ID: inst.ID, Token: inst.Token, Spec: inst.Location}); err != nil {
				errs = append(errs, err)
				continue
			}
			if !seen[inst.Token] {
				seen[inst.Token] = true
				e.note("deleted %s node %s, which the state did not know", name, inst.ID)
				deleted = append(deleted, inst.ID)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return deleted, err
	}
	os.RemoveAll(filepath.Join(e.Store.Dir(), "keys", e.Run))
	return deleted, nil
}

// Forgotten is a resource whose record was dropped without its
// provider's word: it may still exist there.
type Forgotten struct{ Kind, Group, Name, Provider string }

// ForgetUnreachable drops the run's resources whose provider cannot be reached
// without deleting them, and returns them: what kumo made there may still
// exist and is the user's to remove.
func (e *Engine) ForgetUnreachable(unreachable map[string]error) ([]Forgotten, error) {
	all, err := e.Store.Resources(state.Query{Run: e.Run})
	if err != nil {
		return nil, err
	}
	var dropped []Forgotten
	for _, r := range all {
		if _, gone := unreachable[r.Provider]; r.Kind == state.KindGroup || !gone {
			continue
		}
		if err := e.Store.DeleteResource(r.ID); err != nil {
			return dropped, err
		}
		dropped = append(dropped, Forgotten{Kind: r.Kind, Group: r.Group, Name: r.Name, Provider: r.Provider})
	}
	return dropped, nil
}

// Unreachable asks each provider the run's units use for its nodes and
// returns, for those that cannot answer at all, why.
func (e *Engine) Unreachable(ctx context.Context) map[string]error {
	all, err := e.Store.Resources(state.Query{Run: e.Run, Kind: state.KindUnit})
	if err != nil {
		return nil
	}
	out := map[string]error{}
	for prov, wheres := range unitWheres(all) {
		p, err := e.Provider(prov)
		if err == nil {
			_, err = p.List(ctx, e.Run, wheres)
		}
		if err != nil {
			out[prov] = RootCause(err)
		}
	}
	return out
}

// RootCause is the part of a long chain of wrapped errors that says what
// happened: for a network failure, the failed dial.
func RootCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op
	}
	return err
}
