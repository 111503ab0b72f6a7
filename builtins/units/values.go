// Package units holds the builtins that make and manage machines, after
// the VCP SDK's object model: unit_group() and spec(), then the methods
// of unit groups (a set of related units), units (homogeneous nodes of
// one provider and spec) and the node values they return.
package units

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/fleet"
)

// Values of this package are handles: a name and, for nodes, a snapshot
// of what was known when the value was returned. Anything that reads the
// world is a method call, which the journal records, never an attribute:
// replaying a cell must see exactly what the live run saw.

// UnitGroup is the value of unit_group(). Token tells one group from
// another of the same name made after the first was deleted: cells that
// hold the old one are not replayed against the new.
type UnitGroup struct {
	Run, Name string
	Token     string `json:",omitempty"`
}

// Unit is a unit of a group.
type Unit struct {
	Run, Group, Name, Provider string
	Token                      string `json:",omitempty"`
}

func unitValue(r fleet.Unit) *Unit {
	return &Unit{Run: r.Run, Group: r.Group, Name: r.Name, Provider: r.Provider, Token: r.Token}
}

// defaultTimeout is how long creating and powering nodes may take.
const defaultTimeout = 10 * time.Minute

// Node is one machine of a unit, as it was when returned.
type Node struct {
	ID                             int64 // resource id in the state
	Run, Group, Unit, Name         string
	State, IP, PrivateIP, Provider string
	ProviderID                     string
	// SiteIP is the provider's private address; PrivateIP is the mesh
	// address once the node joined a mesh, else the same.
	SiteIP string `json:",omitempty"`
	Port   int
	Token  string `json:",omitempty"`
	// HostName is the machine's own name (an on-prem inventory's).
	HostName string `json:",omitempty"`
}

func nodeValue(r fleet.Node) *Node {
	n := &Node{
		ID: r.ID, Run: r.Run, Group: r.Group, Unit: r.Unit, Name: r.Name, State: string(r.State),
		IP: r.IP, PrivateIP: r.PrivateIP, SiteIP: r.PrivateIP, Provider: r.Provider, ProviderID: r.ProviderID, Port: r.Port,
		Token: r.Token, HostName: r.HostName,
	}
	if r.MeshIP != "" {
		n.PrivateIP = r.MeshIP // what node-to-node traffic uses, across sites
	}
	return n
}

var (
	_ builtins.Encodable = (*UnitGroup)(nil)
	_ builtins.Encodable = (*Unit)(nil)
	_ builtins.Encodable = (*Node)(nil)
	_ builtins.Host      = (*Node)(nil)
	_ builtins.Handle    = (*UnitGroup)(nil)
	_ builtins.Handle    = (*Unit)(nil)
)

// --- UnitGroup ---

func (g *UnitGroup) String() string          { return fmt.Sprintf("unit_group(%q)", g.Name) }
func (g *UnitGroup) Type() string            { return "unit_group" }
func (g *UnitGroup) Freeze()                 {}
func (g *UnitGroup) Truth() starlark.Bool    { return starlark.True }
func (g *UnitGroup) Hash() (uint32, error)   { return starlark.String(g.Name).Hash() }
func (g *UnitGroup) AttrNames() []string     { return append([]string{"name"}, groupMethods.Names()...) }
func (g *UnitGroup) JournalKind() string     { return "unit_group" }
func (g *UnitGroup) JournalData() any        { return g }
func (g *UnitGroup) DigestString() string    { return "unit_group:" + g.Run + "/" + g.Name }
func (g *UnitGroup) Scope() (string, string) { return g.Name, "" }
func (g *UnitGroup) Attr(name string) (starlark.Value, error) {
	if name == "name" {
		return starlark.String(g.Name), nil
	}
	return groupMethods.Attr(g, name), nil
}

// --- Unit ---

func (u *Unit) String() string        { return fmt.Sprintf("<unit %s/%s>", u.Group, u.Name) }
func (u *Unit) Type() string          { return "unit" }
func (u *Unit) Freeze()               {}
func (u *Unit) Truth() starlark.Bool  { return starlark.True }
func (u *Unit) Hash() (uint32, error) { return starlark.String(u.Group + "/" + u.Name).Hash() }
func (u *Unit) AttrNames() []string {
	return append([]string{"group", "name", "provider"}, unitMethods.Names()...)
}
func (u *Unit) JournalKind() string     { return "unit" }
func (u *Unit) JournalData() any        { return u }
func (u *Unit) DigestString() string    { return "unit:" + u.Run + "/" + u.Group + "/" + u.Name }
func (u *Unit) Scope() (string, string) { return u.Group, u.Name }
func (u *Unit) Attr(name string) (starlark.Value, error) {
	switch name {
	case "name":
		return starlark.String(u.Name), nil
	case "group":
		return starlark.String(u.Group), nil
	case "provider":
		return starlark.String(u.Provider), nil
	}
	return unitMethods.Attr(u, name), nil
}

// --- Node ---

func (n *Node) String() string {
	return fmt.Sprintf("<node %s %s %s:%d>", n.Name, n.State, n.IP, n.Port)
}
func (n *Node) Type() string          { return "node" }
func (n *Node) Freeze()               {}
func (n *Node) Truth() starlark.Bool  { return starlark.True }
func (n *Node) Hash() (uint32, error) { return starlark.MakeInt64(n.ID).Hash() }
func (n *Node) HostID() int64         { return n.ID }
func (n *Node) HostToken() string     { return n.Token }
func (n *Node) NodeName() string      { return n.Name }
func (n *Node) AttrNames() []string {
	return []string{"address", "group", "host_name", "id", "ip", "name", "port", "private_ip", "provider", "site_ip", "state", "unit"}
}
func (n *Node) JournalKind() string { return "node" }
func (n *Node) JournalData() any    { return n }
func (n *Node) DigestString() string {
	return fmt.Sprintf("node:%s/%s/%s/%s#%d", n.Run, n.Group, n.Unit, n.Name, n.ID)
}
func (n *Node) Attr(name string) (starlark.Value, error) {
	switch name {
	case "name":
		return starlark.String(n.Name), nil
	case "unit":
		return starlark.String(n.Unit), nil
	case "group":
		return starlark.String(n.Group), nil
	case "state":
		return starlark.String(n.State), nil
	case "ip":
		return starlark.String(n.IP), nil
	case "private_ip":
		return starlark.String(n.PrivateIP), nil
	case "site_ip":
		if n.SiteIP == "" { // a value journaled by an older kumo
			return starlark.String(n.PrivateIP), nil
		}
		return starlark.String(n.SiteIP), nil
	case "port":
		return starlark.MakeInt(n.Port), nil
	case "address":
		return starlark.String(fmt.Sprintf("%s:%d", n.IP, n.Port)), nil
	case "provider":
		return starlark.String(n.Provider), nil
	case "id":
		return starlark.String(n.ProviderID), nil
	case "host_name":
		if n.HostName == "" {
			return starlark.String(n.Name), nil
		}
		return starlark.String(n.HostName), nil
	}
	return nil, nil
}

// CompareSameType makes nodes comparable with ==, by identity.
func (n *Node) CompareSameType(op syntax.Token, y starlark.Value, depth int) (bool, error) {
	return starlark.CompareDepth(op, starlark.MakeInt64(n.ID), starlark.MakeInt64(y.(*Node).ID), depth)
}

func init() {
	builtins.RegisterDecoder("unit_group", decodeInto[UnitGroup])
	builtins.RegisterDecoder("unit", decodeInto[Unit])
	builtins.RegisterDecoder("node", decodeInto[Node])
}

func decodeInto[T any, P interface {
	*T
	starlark.Value
}](data json.RawMessage) (starlark.Value, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return P(&v), nil
}

// ValueDocs document the values of this family, for kumo doc.
var ValueDocs = []*builtins.Def{{
	Name: "unit_group", Kind: builtins.DocValue,
	Doc: `a unit group, as unit_group() returns it
Attributes: .name. Methods: ` + strings.Join(groupMethods.Names(), "(), ") + `() (kumo doc UnitGroup.NAME).`,
}, {
	Name: "unit", Kind: builtins.DocValue,
	Doc: `a unit, as ug.create_unit() and ug.units() return it
Attributes: .name, .group (its group's name), .provider. Methods: ` + strings.Join(unitMethods.Names(), "(), ") + `() (kumo doc Unit.NAME).`,
}, {
	Name: "node", Kind: builtins.DocValue,
	Doc: `a node, as unit.nodes(), ug.nodes() and add_nodes() return it
A node value is what was known when it was returned (call nodes() again
for fresh states). Nodes compare equal by identity and can be given to
ssh_run, put_file, get_file and wait_port.
  .name        web-1: its unit's name and number
  .unit        its unit's name
  .group       its group's name
  .state       RUNNING, STARTING, POWER_OFF, ERROR or GONE
  .ip          where kumo's host reaches it (its own 127.x address for local nodes)
  .private_ip  where other nodes reach it: its mesh address once it joined
               a mesh (mesh()), else its site_ip
  .site_ip     its address on its own site's network (the provider's private one)
  .port        its SSH port
  .address     ip:port
  .provider    local, onprem, aws, openstack
  .id          the provider's id for it (an instance id, a server id)
  .host_name   the machine's own name: an on-prem inventory's (h12) for
               onprem nodes, else .name`,
}, {
	Name: "spec", Kind: builtins.DocValue,
	Doc: `a node specification, as spec() returns it
Attributes: .provider, .flavor and every field of the provider (kumo doc
spec lists how to get them; kumo flavors shows the catalog). Fields can be
set: s.disk_gb = 32. An unknown field is an error listing the valid ones.`,
}}
