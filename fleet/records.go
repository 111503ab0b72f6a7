package fleet

import (
	"fmt"

	"github.com/kumo-dev/kumo/state"
)

// Records is what the fleet needs of the state: its resource rows, the
// groups' keys and the pinned host keys. *state.Store is one, on SQLite
// or PostgreSQL; another backend implements these and nothing else.
type Records interface {
	Resources(q state.Query) ([]state.Resource, error)
	Resource(q state.Query) (state.Resource, error)
	InsertIntents(rs []*state.Resource) error
	UpdateResource(r *state.Resource) error
	DeleteResource(id int64) error
	NextSeq(run, group, unit string) (int, error)
	PinKey(run, target, publicKey string) error

	// Shared: the state is a team's (PostgreSQL), so group keys are
	// kept in it, sealed, as well as in files beside it.
	Shared() bool
	PutGroupKey(run, group string, sealed []byte) error
	GroupKey(run, group string) ([]byte, error)
	DeleteGroupKey(run, group string) error
	GroupKeyFile(g state.Resource) string
	Dir() string      // where providers keep their files
	Location() string // the file or the PostgreSQL environment, for messages
}

var _ Records = (*state.Store)(nil)

// A Reader reads what the state records of unit groups, units and
// nodes, of any run: the one way builtins look at the world's records.
// What it cannot find is state.ErrNotFound.
type Reader struct{ Records Records }

// Node is the node with the state's id.
func (r Reader) Node(id int64) (Node, error) {
	n, err := r.Records.Resource(state.Query{ID: id, Kind: state.KindNode})
	return nodeOf(n), err
}

// NodeByToken is the node of run made under an idempotency token.
func (r Reader) NodeByToken(run, token string) (Node, error) {
	n, err := r.Records.Resource(state.Query{Run: run, Kind: state.KindNode, Token: token})
	return nodeOf(n), err
}

// Group is unit group name of run (any run's when run is "").
func (r Reader) Group(run, name string) (Group, error) {
	g, err := r.Records.Resource(state.Query{Run: run, Kind: state.KindGroup, Name: name})
	return groupOf(g), err
}

// Unit is unit name of group.
func (r Reader) Unit(run, group, name string) (Unit, error) {
	u, err := r.Records.Resource(state.Query{Run: run, Kind: state.KindUnit, Group: group, Name: name})
	return unitOf(u), err
}

// Units are the units of group.
func (r Reader) Units(run, group string) ([]Unit, error) {
	rs, err := r.Records.Resources(state.Query{Run: run, Kind: state.KindUnit, Group: group})
	out := make([]Unit, len(rs))
	for i, u := range rs {
		out[i] = unitOf(u)
	}
	return out, err
}

// Nodes are the nodes of run, of its group and unit when given.
func (r Reader) Nodes(run, group, unit string) ([]Node, error) {
	rs, err := r.Records.Resources(state.Query{Run: run, Kind: state.KindNode, Group: group, Unit: unit})
	return nodesOf(rs), err
}

// KeyFile is the private key kumo logs in to node n with: its unit
// group's (unsealed from a shared state when this machine has none yet),
// or, for a host kumo did not make, its own ("" is the user's keys).
func (r Reader) KeyFile(n Node) (string, error) {
	if n.Existing {
		return n.OwnKeyFile, nil
	}
	g, err := r.Records.Resource(state.Query{Run: n.Run, Kind: state.KindGroup, Name: n.Group})
	if err != nil {
		return "", fmt.Errorf("its unit group %s: %w", n.Group, err)
	}
	return groupKeyFile(r.Records, g)
}

// SetMesh records the mesh addresses of the nodes that joined mesh (node
// id to address): other nodes reach them there, and nodes() returns it
// as their private_ip. Nodes of run that left the mesh lose theirs.
func SetMesh(store Records, run, mesh string, addresses map[int64]string) error {
	for id, ip := range addresses {
		r, err := store.Resource(state.Query{ID: id, Kind: state.KindNode})
		if err != nil {
			return err
		}
		if r.Data.Mesh == mesh && r.Data.MeshIP == ip {
			continue
		}
		r.Data.Mesh, r.Data.MeshIP = mesh, ip
		if err := store.UpdateResource(&r); err != nil {
			return err
		}
	}
	others, err := store.Resources(state.Query{Run: run, Kind: state.KindNode})
	if err != nil {
		return err
	}
	for _, r := range others {
		if _, in := addresses[r.ID]; !in && r.Data.Mesh == mesh {
			r.Data.Mesh, r.Data.MeshIP = "", ""
			if err := store.UpdateResource(&r); err != nil {
				return err
			}
		}
	}
	return nil
}
