package runner

import "github.com/kumo-dev/kumo/state"

// Records is what the runner needs of the state: the run, its cells and
// their journal. *state.Store is one, on SQLite or PostgreSQL.
type Records interface {
	GetRun(name string) (state.Run, bool, error)
	StartRun(name, recipe string, overrides map[string]string) error
	SetOverrides(name string, overrides map[string]string) error
	SetParams(name, params string) error
	FinishRun(name string, status state.RunStatus) error

	Cells(run string) ([]state.CellRecord, error)
	Realign(run string, positions map[int64]int, drop []int64) error
	StartCell(run string, c *state.CellRecord) error
	SetLiveOutput(run string, id int64, o state.Output) error
	FinishCell(run string, c *state.CellRecord) error

	// The journal: each effectful call of a cell, and what the calls
	// made (for the world check).
	AppendCall(run string, c state.Call) error
	Calls(run string, cell int64) ([]state.Call, error)
	Effects(run string) (map[int64]state.CellEffects, error)

	Location() string // for messages
}

var _ Records = (*state.Store)(nil)
