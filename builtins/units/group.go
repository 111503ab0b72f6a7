package units

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.starlark.net/starlark"
	"golang.org/x/crypto/ssh"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/lang/state"
)

// Builtins of this family that are functions; the rest are methods.
var Builtins = []*builtins.Def{unitGroupBuiltin, specBuiltin}

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
	Doc: `unit_group(name)
Returns the unit group called name, creating it if this run has none by
that name. A group holds related units (servers, clients, ...) that may
live on different providers. Its nodes share an SSH key that kumo makes
and keeps, private, beside the state.`,
	Fn:      unitGroup,
	Journal: true,
}

func unitGroup(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	if err := builtins.Unpack(b, args, kwargs, "name", &name); err != nil {
		return nil, err
	}
	if !validName(name) {
		return nil, builtins.Inputf(b, "bad name %q: use letters, digits, '-' and '_'", name)
	}
	env, err := builtins.FromThread(thread)
	if err != nil {
		return nil, err
	}
	if _, err := ensureGroup(env, name); err != nil {
		return nil, builtins.Errorf(b, "%v", err)
	}
	return &UnitGroup{Run: env.Run, Name: name}, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// ensureGroup returns the group's row, making the group and its key. The
// key is written before the row, and reused if a crash left it behind.
func ensureGroup(env *builtins.Env, name string) (state.Resource, error) {
	g, err := env.Store.Resource(state.Query{Run: env.Run, Kind: state.KindGroup, Name: name})
	if err == nil {
		return g, nil
	}
	if !errors.Is(err, state.ErrNotFound) {
		return g, err
	}
	keyFile := filepath.Join(env.Store.Dir(), "keys", env.Run, name)
	if _, err := groupKey(keyFile); err != nil {
		return g, err
	}
	g = state.Resource{Run: env.Run, Kind: state.KindGroup, Group: name, Name: name, Token: newToken(),
		Status: state.Ready, Data: state.Data{KeyFile: keyFile}}
	if err := env.Store.InsertIntents([]*state.Resource{&g}); err != nil {
		return g, err
	}
	return g, nil
}

// groupKey returns the group's public key in authorized_keys form,
// generating the ed25519 key pair on first use (mode 0600).
func groupKey(path string) (string, error) {
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

var groupMethods = builtins.Methods{
	"create_unit": {
		Name: "UnitGroup.create_unit",
		Doc: `ug.create_unit(name, spec, nodes=1, timeout="10m")
Returns the unit called name, creating it with nodes nodes of spec if the
group has none by that name. Returns when every node is RUNNING and
answers SSH. Nodes are created in parallel. Creation is crash-safe: each
node is recorded before its provider is asked for it, and a re-run adopts
what an interrupted run created instead of creating it again.`,
		Fn: createUnit, Journal: true,
	},
	"units": {
		Name: "UnitGroup.units",
		Doc: `ug.units()
Returns the group's units.`,
		Fn: groupUnits, Journal: true,
	},
	"nodes": {
		Name: "UnitGroup.nodes",
		Doc: `ug.nodes(node_state=None)
Returns the nodes of every unit of the group, optionally only those in
node_state ("RUNNING", "POWER_OFF", ...). States are refreshed from the
providers.`,
		Fn: listNodes(starlark.None, nodeList), Journal: true,
	},
	"find_ip_addresses": {
		Name: "UnitGroup.find_ip_addresses",
		Doc: `ug.find_ip_addresses(node_state="RUNNING")
Returns the IP addresses of the group's nodes in node_state (None: all).`,
		Fn: listNodes(starlark.String("RUNNING"), ipList), Journal: true,
	},
	"delete": {
		Name: "UnitGroup.delete",
		Doc: `ug.delete()
Deletes every unit and node of the group, then the group and its key
(VCP's cleanup()).`,
		Fn: groupDelete, Journal: true,
	},
}

func receiverGroup(thread *starlark.Thread, b *starlark.Builtin) (*builtins.Env, *UnitGroup, error) {
	env, err := builtins.FromThread(thread)
	if err != nil {
		return nil, nil, err
	}
	g := b.Receiver().(*UnitGroup)
	if _, err := env.Store.Resource(state.Query{Run: env.Run, Kind: state.KindGroup, Name: g.Name}); err != nil {
		if errors.Is(err, state.ErrNotFound) {
			return nil, nil, builtins.Errorf(b, "unit group %s was deleted", g.Name)
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
	rs, err := env.Store.Resources(state.Query{Run: env.Run, Kind: state.KindUnit, Group: g.Name})
	if err != nil {
		return nil, err
	}
	var out []starlark.Value
	for _, r := range rs {
		out = append(out, &Unit{Run: r.Run, Group: r.Group, Name: r.Name, Provider: r.Provider})
	}
	return starlark.NewList(out), nil
}

func groupDelete(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := builtins.Unpack(b, args, kwargs); err != nil {
		return nil, err
	}
	env, g, err := receiverGroup(thread, b)
	if err != nil {
		return nil, err
	}
	if err := DeleteGroup(lang.Context(thread), env, g.Name); err != nil {
		return nil, builtins.Errorf(b, "%v", err)
	}
	return starlark.None, nil
}

func ipList(nodes []state.Resource) *starlark.List {
	var out []starlark.Value
	for _, n := range nodes {
		out = append(out, starlark.String(n.Data.IP))
	}
	return starlark.NewList(out)
}

func nodeList(nodes []state.Resource) *starlark.List {
	var out []starlark.Value
	for _, n := range nodes {
		out = append(out, nodeValue(n))
	}
	return starlark.NewList(out)
}
