package fleet

import "github.com/kumo-dev/kumo/state"

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
type Reader struct{ Records Records }

// Node is the node with the state's id.
func (r Reader) Node(id int64) (state.Resource, error) {
	return r.Records.Resource(state.Query{ID: id})
}

// Group is unit group name of run (any run's when run is "").
func (r Reader) Group(run, name string) (state.Resource, error) {
	return r.Records.Resource(state.Query{Run: run, Kind: state.KindGroup, Name: name})
}

// Unit is unit name of group.
func (r Reader) Unit(run, group, name string) (state.Resource, error) {
	return r.Records.Resource(state.Query{Run: run, Kind: state.KindUnit, Group: group, Name: name})
}

// Units are the units of group.
func (r Reader) Units(run, group string) ([]state.Resource, error) {
	return r.Records.Resources(state.Query{Run: run, Kind: state.KindUnit, Group: group})
}

// Nodes are the nodes of run, of its group and unit when given.
func (r Reader) Nodes(run, group, unit string) ([]state.Resource, error) {
	return r.Records.Resources(state.Query{Run: run, Kind: state.KindNode, Group: group, Unit: unit})
}

// ByToken is the resource of run made under an idempotency token.
func (r Reader) ByToken(run, token string) (state.Resource, error) {
	return r.Records.Resource(state.Query{Run: run, Token: token})
}
