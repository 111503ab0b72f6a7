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
