package fleet

import (
	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/state"
)

// Group, Unit and Node are what the fleet tells the rest of kumo about
// what exists: typed values read from the state's records, which stay
// inside the fleet. A value handed back to an Engine method carries its
// record with it, so the method works on exactly what its caller saw.

// Status is where a resource's record stands.
type Status = state.ResourceStatus

const (
	// Intent: written before its provider was asked; it may not exist.
	Intent = state.Intent
	// Ready: its provider made it and the state recorded it.
	Ready = state.Ready
	// Deleting: its provider is being asked to delete it.
	Deleting = state.Deleting
)

// Hop is a login node an on-prem host is reached through.
type Hop = state.Hop

// Group is a unit group: units whose nodes share a login key.
type Group struct {
	ID        int64
	Run, Name string
	// Token tells the group from a later one of the same name, made
	// after this one was deleted.
	Token string
	rec   state.Resource
}

// Unit is a unit of a group: nodes of one provider and spec, or of
// several parts, each a spec.
type Unit struct {
	ID                                int64
	Run, Group, Name, Provider, Token string
	// Location is where its provider finds the unit's nodes, beyond the
	// spec's fields (an inventory's absolute path).
	Location map[string]any
	rec      state.Resource
}

// Spec is what the unit was made with.
func (u Unit) Spec() (Spec, error) { return DecodeSpec(u.rec.Spec) }

// Node is one machine of a unit, as its record was when read.
type Node struct {
	ID                     int64
	Run, Group, Unit, Name string
	Provider, Token        string
	Status                 Status
	State                  providers.NodeState // as last recorded
	ProviderID             string
	// IP is where kumo logs in; PrivateIP the provider's private
	// address; MeshIP the node's address on the mesh it joined (Mesh),
	// what other nodes reach it at across sites.
	IP, PrivateIP string
	Port          int
	User          string
	Mesh, MeshIP  string
	HostName      string // the machine's own name (an on-prem inventory's)
	Existing      bool   // kumo did not make it (an on-prem host)
	OwnKeyFile    string // an existing host's login key; "" is the user's keys
	Jump          *Hop   // a login node to reach it through
	Origin        string // the call that made it: "CELL/Builtin#N"
	rec           state.Resource
}

func groupOf(r state.Resource) Group {
	return Group{ID: r.ID, Run: r.Run, Name: r.Name, Token: r.Token, rec: r}
}

func unitOf(r state.Resource) Unit {
	return Unit{ID: r.ID, Run: r.Run, Group: r.Group, Name: r.Name, Provider: r.Provider, Token: r.Token,
		Location: r.Data.Location, rec: r}
}

func nodeOf(r state.Resource) Node {
	d := r.Data
	return Node{ID: r.ID, Run: r.Run, Group: r.Group, Unit: r.Unit, Name: r.Name, Provider: r.Provider, Token: r.Token,
		Status: r.Status, State: providers.NodeState(r.State), ProviderID: d.ProviderID,
		IP: d.IP, PrivateIP: d.PrivateIP, Port: d.Port, User: d.User, Mesh: d.Mesh, MeshIP: d.MeshIP,
		HostName: d.HostName, Existing: d.Existing, OwnKeyFile: d.KeyFile, Jump: d.Jump, Origin: d.Origin, rec: r}
}

func nodesOf(rs []state.Resource) []Node {
	out := make([]Node, len(rs))
	for i, r := range rs {
		out[i] = nodeOf(r)
	}
	return out
}
