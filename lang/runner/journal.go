package runner

import (
	"fmt"
	"time"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/lang/state"
)

// journal is the builtins.Interceptor of a run: deterministic replay.
//
// Pure Starlark is deterministic; only builtins touch the world. So a
// cell that succeeded before and has not changed since can be re-run
// without touching the world at all: every journaled builtin call it
// makes is answered with the result recorded the first time. The cell's
// own code runs for real, so its globals, functions included, are rebuilt
// exactly, which a snapshot of the globals could not do (functions and
// closures do not serialize).
//
// The price is that replay must make the same calls in the same order.
// If it does not (a loaded module or the flavor file changed under it),
// continuing would hand the recipe results that belong to other calls,
// so a mismatch stops the run as a divergence rather than quietly
// running the call live.
type journal struct {
	store  *state.Store
	run    string
	masker *builtins.Masker

	cell   *lang.Cell
	params bool         // the cell is the parameters cell
	replay bool         // answer from calls instead of running
	calls  []state.Call // the cell's journal, when replaying
	seq    int
}

func (j *journal) begin(c *lang.Cell, params, replay bool, calls []state.Call) {
	j.cell, j.params, j.replay, j.calls, j.seq = c, params, replay, calls, 0
}

// end checks that a replayed cell made every call its journal holds.
func (j *journal) end() error {
	if j.replay && j.seq < len(j.calls) {
		next := j.calls[j.seq]
		return &DivergenceError{Cell: j.cell, Seq: j.seq + 1, Journaled: next.Args, Now: "(no further call: the cell ended)"}
	}
	return nil
}

func (j *journal) Call(thread *starlark.Thread, def *builtins.Def, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if j.params {
		return nil, &lang.InputError{Err: fmt.Errorf("%s: the [parameters] cell holds values only; call %s in a later cell", def.ShortName(), def.ShortName())}
	}
	desc := j.masker.Mask(builtins.DescribeCall(def.ShortName(), b.Receiver(), args, kwargs))
	digest := builtins.Digest(def.Name + "\x00" + desc)
	if j.replay {
		if j.seq >= len(j.calls) {
			return nil, &DivergenceError{Cell: j.cell, Seq: j.seq + 1, Journaled: "(no such call: the journal ends here)", Now: desc}
		}
		c := j.calls[j.seq]
		if c.Builtin != def.Name || c.ArgsDigest != digest {
			return nil, &DivergenceError{Cell: j.cell, Seq: j.seq + 1, Journaled: c.Args, Now: desc}
		}
		j.seq++
		return builtins.Decode(c.Result)
	}
	start := time.Now()
	v, err := def.Fn(thread, b, args, kwargs)
	if err != nil {
		// Failed calls are not journaled: a failed cell runs live next time.
		return nil, err
	}
	enc, err := builtins.Encode(v)
	if err != nil {
		return nil, fmt.Errorf("%s: journaling the result: %w", def.ShortName(), err)
	}
	j.seq++
	call := state.Call{Cell: j.cell.Index, Seq: j.seq, Builtin: def.Name, ArgsDigest: digest, Args: desc,
		Result: j.masker.Mask(enc), Duration: time.Since(start)}
	if err := j.store.AppendCall(j.run, call); err != nil {
		return nil, fmt.Errorf("%s: recording the call in the state: %w", def.ShortName(), err)
	}
	return v, nil
}

// DivergenceError is a replayed cell whose calls no longer match its journal.
type DivergenceError struct {
	Cell      *lang.Cell
	Seq       int
	Journaled string
	Now       string
}

func (e *DivergenceError) Error() string {
	return fmt.Sprintf("replay diverged in %s at call #%d:\n  journaled: %s\n  now:       %s\n"+
		"Something this cell depends on changed since it ran (a loaded module, the flavor file, an earlier cell's environment).\n"+
		"To run it live again: kumo run --from %d", e.Cell.Name(), e.Seq, e.Journaled, e.Now, e.Cell.Index)
}
