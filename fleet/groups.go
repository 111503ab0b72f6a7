package fleet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/state"
)

// OpenGroup returns the unit group called name: this run's, made if
// create and the run has none. Without create it may be another run's:
// a family of recipes works on the group one of them made (a cluster,
// and the recipes that add its users or nodes), and work on it then goes
// to that run (see In). Without create, a group no run has made is an
// error saying to run the recipe that makes it first. (With create, a
// run never takes another's group: the same recipe run under another
// --name makes a copy of its environment.)
func (e *Engine) OpenGroup(call Call, name string, create bool) (Group, *Engine, error) {
	_, err := e.Store.Resource(state.Query{Run: e.Run, Kind: state.KindGroup, Name: name})
	if err == nil {
		g, err := e.group(call, name)
		return groupOf(g), e, err
	}
	if !errors.Is(err, state.ErrNotFound) {
		return Group{}, nil, err
	}
	found, err := e.Store.Resources(state.Query{Kind: state.KindGroup, Name: name})
	if err != nil {
		return Group{}, nil, err
	}
	if create {
		// A new, empty group where another run has one of that name is
		// what a copy of an environment wants, and a surprise in a REPL
		// meant to look at that run's: say which it is.
		if len(found) > 0 {
			e.note("unit group %s: a new one in run %s; run %s has one of that name too (to work on it: kumo repl --name %s, or unit_group(%q, create = False) in a run that has none)", name, e.Run, found[0].Run, found[0].Run, name)
		}
		g, err := e.group(call, name)
		return groupOf(g), e, err
	}
	switch len(found) {
	case 0:
		return Group{}, nil, inputf("no run of %s has made unit group %s: run the recipe that makes it first", e.Store.Location(), name)
	case 1:
		owner, err := e.In(found[0].Run)
		if err != nil {
			return Group{}, nil, err
		}
		e.note("unit group %s was made by run %s: working on it there", name, found[0].Run)
		return groupOf(found[0]), owner, nil
	}
	var runs []string
	for _, g := range found {
		runs = append(runs, g.Run)
	}
	return Group{}, nil, inputf("unit group %s was made by several runs (%s): each copy of an environment needs a group name of its own", name, strings.Join(runs, ", "))
}

// Group returns the run's unit group called name, making it and its key
// if the run has none. The key is written before the row, and reused if
// a crash left it behind.
func (e *Engine) Group(call Call, name string) (Group, error) {
	g, err := e.group(call, name)
	return groupOf(g), err
}

func (e *Engine) group(call Call, name string) (state.Resource, error) {
	g, err := e.Store.Resource(state.Query{Run: e.Run, Kind: state.KindGroup, Name: name})
	if err == nil {
		if call.Site != "" && g.Data.Origin == call.Site {
			call.Effects.Made(g)
		}
		return g, nil
	}
	if !errors.Is(err, state.ErrNotFound) {
		return g, err
	}
	keyFile := e.keyFile(name)
	if _, err := GroupKey(keyFile); err != nil {
		return g, err
	}
	if err := shareGroupKey(e.Store, e.Run, name, keyFile); err != nil {
		return g, err
	}
	g = state.Resource{Run: e.Run, Kind: state.KindGroup, Group: name, Name: name, Token: NewToken(),
		Status: state.Ready, Data: state.Data{KeyFile: keyFile, Origin: call.Site}}
	if err := e.Store.InsertIntents([]*state.Resource{&g}); err != nil {
		return g, err
	}
	call.Effects.Made(g)
	return g, nil
}

func (e *Engine) keyFile(group string) string {
	return e.Store.GroupKeyFile(state.Resource{Run: e.Run, Name: group})
}

// GroupKey returns the group's public key in authorized_keys form,
// generating the ed25519 key pair on first use (mode 0600).
func GroupKey(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		signer, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return "", fmt.Errorf("group key %s: %w", path, err)
		}
		return string(ssh.MarshalAuthorizedKey(signer.PublicKey())), nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "kumo group key")
	if err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	authorized := ssh.MarshalAuthorizedKey(sshPub)
	os.WriteFile(path+".pub", authorized, 0o600)
	return string(authorized), nil
}

// DeleteGroup deletes a unit group with all its units and nodes, then
// what providers made for the group as a whole. A group that is already
// gone is not an error: a teardown cell can run again.
func (e *Engine) DeleteGroup(ctx context.Context, call Call, name string) error {
	rs, err := e.Store.Resources(state.Query{Run: e.Run, Group: name})
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		e.note("unit group %s is already deleted", name)
		return nil
	}
	// Nodes, then units, then what providers made for the group, then the
	// group itself: a failure part-way leaves the group recorded, so that
	// running the deletion (or destroy) again finishes the job.
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
	if len(nodes) > 0 {
		e.note("deleting unit group %s: %s", name, plural(len(nodes), "node", "nodes"))
	} else {
		e.note("deleting unit group %s", name)
	}
	if err := e.deleteAll(ctx, call, append(nodes, units...)); err != nil {
		return err
	}
	for prov, specs := range unitWheres(units) {
		if p, err := e.Provider(prov); err == nil {
			if c, ok := p.(providers.GroupCleaner); ok {
				if err := c.DeleteGroup(ctx, e.Run, name, specs); err != nil {
					return err // the provider's errors name it
				}
			}
			if err := e.groupData(p, name); err != nil {
				return err
			}
		}
	}
	return e.deleteAll(ctx, call, groups)
}

// groupData deletes what p keeps of the group beyond its nodes, or keeps
// it (KeepData), saying which and where.
func (e *Engine) groupData(p providers.Provider, group string) error {
	k, ok := p.(providers.DataKeeper)
	if !ok {
		return nil
	}
	paths := k.GroupData(e.Run, group)
	if len(paths) == 0 {
		return nil
	}
	list := strings.Join(paths, " ")
	if e.KeepData {
		e.note("kept the data of unit group %s (its shared folders, with the files users left there): %s. Remove it with: rm -rf %s, or kumo destroy --name %s --purge", group, list, list, e.Run)
		return nil
	}
	if err := k.DeleteGroupData(e.Run, group); err != nil {
		return err
	}
	e.note("deleted the shared folders of unit group %s: %s", group, list)
	return nil
}

// PurgeData deletes what providers still keep of the run's deleted
// groups (an earlier destroy --keep-data), saying where it was.
func (e *Engine) PurgeData() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(e.Providers)) {
		k, ok := e.Providers[name].(providers.DataKeeper)
		if !ok {
			continue
		}
		paths := k.GroupData(e.Run, "")
		if len(paths) == 0 {
			continue
		}
		if err := k.DeleteGroupData(e.Run, ""); err != nil {
			errs = append(errs, err)
			continue
		}
		e.note("purged the data kept of run %s: %s", e.Run, strings.Join(paths, " "))
	}
	return errors.Join(errs...)
}

// unitWheres gathers where the units among rs live, parts included, by
// provider.
func unitWheres(rs []state.Resource) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, r := range rs {
		if r.Kind == state.KindUnit {
			out[r.Provider] = append(out[r.Provider], where(r))
			for prov, ws := range partWheres(r) {
				out[prov] = append(out[prov], ws...)
			}
		}
	}
	return out
}

// Vars returns the variables kept with the run's unit group name.
func (e *Engine) Vars(name string) (map[string]json.RawMessage, error) {
	g, err := e.groupRow(name)
	if err != nil {
		return nil, err
	}
	return g.Data.Vars, nil
}

// SetVars sets variables of the run's unit group name, keeping the others,
// and says which changed.
func (e *Engine) SetVars(call Call, name string, values map[string]json.RawMessage) error {
	g, err := e.groupRow(name)
	if err != nil {
		return err
	}
	if g.Data.Vars == nil {
		g.Data.Vars = map[string]json.RawMessage{}
	}
	var changed []string
	for k, v := range values {
		if !bytes.Equal(g.Data.Vars[k], v) {
			changed = append(changed, k)
			g.Data.Vars[k] = v
		}
	}
	if len(changed) > 0 {
		if err := e.Store.UpdateResource(&g); err != nil {
			return err
		}
		sort.Strings(changed)
		e.note("unit group %s: set %s", name, strings.Join(changed, ", "))
	}
	// The digest of what this call set tells the later cells that use
	// the group that it changed.
	b, _ := json.Marshal(values)
	sum := sha256.Sum256(b)
	call.Effects.Changed(g, ":vars="+hex.EncodeToString(sum[:6]))
	return nil
}

// groupRow is the run's unit group name, which must exist.
func (e *Engine) groupRow(name string) (state.Resource, error) {
	g, err := e.Store.Resource(state.Query{Run: e.Run, Kind: state.KindGroup, Name: name})
	if errors.Is(err, state.ErrNotFound) {
		return g, fmt.Errorf("unit group %s was deleted", name)
	}
	return g, err
}
