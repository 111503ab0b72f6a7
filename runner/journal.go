package runner

import (
	"fmt"
	"strconv"
	"time"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/state"
)

// journal is the builtins.Interceptor of a run: deterministic replay.
//
// Pure Starlark is deterministic; only builtins touch the world. So a
// cell that succeeded before and whose source and inputs have not changed
// since can be re-run without touching the world at all: every journaled
// builtin call it makes is answered with the result recorded the first
// time. The cell's own code runs for real, so its globals, functions
// included, are rebuilt exactly, which a snapshot of the globals could
// not do (functions and closures do not serialize).
//
// The price is that replay must make the same calls in the same order.
// If it does not (something the cell depends on changed in a way its
// inputs do not show), continuing would hand the recipe results that
// belong to other calls, so a mismatch stops the run as a divergence
// rather than quietly running the call live.
//
// Live calls get a site, "CELL/Builtin#N" (the Nth call of that builtin
// in the cell record CELL), which creating builtins hand to the resource
// engine: the same call in the same cell, run again, finds what it made.
type journal struct {
	store  Records
	run    string
	file   string // the recipe, for advice
	masker *builtins.Masker

	cell   *lang.Cell
	id     int64        // the cell's record
	params bool         // the cell is the parameters cell
	replay bool         // answer from calls instead of running
	calls  []state.Call // the cell's journal, when replaying
	seq    int
	sites  map[string]int // calls so far per builtin, for sites
	// touched: a live call of this execution may have changed the world
	// (it succeeded, made or deleted something, or failed other than on
	// bad input). A run that fails on bad input untouched forgets the
	// -p values it was given.
	touched *bool
	// check, when set, is given each replayed call, to look in check
	// mode at what it set up (Runner.Check).
	check func(thread *starlark.Thread, def *builtins.Def, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple, desc string)
}

func (j *journal) begin(c *lang.Cell, id int64, params, replay bool, calls []state.Call) {
	j.cell, j.id, j.params, j.replay, j.calls, j.seq = c, id, params, replay, calls, 0
	j.sites = map[string]int{}
}

// end checks that a replayed cell made every call its journal holds.
func (j *journal) end() error {
	if j.replay && j.seq < len(j.calls) {
		next := j.calls[j.seq]
		return j.diverged(j.seq+1, next.Args, "(no further call: the cell ended)")
	}
	return nil
}

func (j *journal) diverged(seq int, journaled, now string) error {
	return &DivergenceError{Cell: j.cell, File: j.file, Seq: seq, Journaled: journaled, Now: now}
}

func (j *journal) Call(thread *starlark.Thread, def *builtins.Def, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if j.params {
		return nil, &starkit.InputError{Err: fmt.Errorf("%s: the [parameters] cell holds values only; call %s in a later cell", def.ShortName(), def.ShortName())}
	}
	desc := j.masker.Mask(builtins.DescribeCall(def.ShortName(), b.Receiver(), args, kwargs))
	digest := builtins.Digest(def.Name + "\x00" + desc)
	if j.replay {
		if j.seq >= len(j.calls) {
			return nil, j.diverged(j.seq+1, "(no such call: the journal ends here)", desc)
		}
		c := j.calls[j.seq]
		if c.Builtin != def.Name || c.ArgsDigest != digest {
			return nil, j.diverged(j.seq+1, c.Args, desc)
		}
		j.seq++
		if j.check != nil {
			j.check(thread, def, b, args, kwargs, desc)
		}
		return builtins.Decode(c.Result)
	}
	j.sites[def.Name]++
	effects := &state.Effects{}
	builtins.SetCallSite(thread, builtins.CallSite{
		Site:    strconv.FormatInt(j.id, 10) + "/" + def.Name + "#" + strconv.Itoa(j.sites[def.Name]),
		Effects: effects,
	})
	start := time.Now()
	v, err := def.Fn(thread, b, args, kwargs)
	builtins.SetCallSite(thread, builtins.CallSite{})
	if made, deleted := effects.Lists(); err == nil || !starkit.IsInputError(err) || len(made)+len(deleted) > 0 {
		*j.touched = true
	}
	if err != nil {
		// Failed calls are not journaled: a failed cell runs live next
		// time, and what the call made is found again through its site.
		return nil, err
	}
	enc, err := builtins.Encode(v)
	if err != nil {
		return nil, fmt.Errorf("%s: journaling the result: %w", def.ShortName(), err)
	}
	j.seq++
	made, deleted := effects.Lists()
	call := state.Call{Cell: j.id, Seq: j.seq, Builtin: def.Name, ArgsDigest: digest, Args: desc,
		Result: j.masker.Mask(enc), Duration: time.Since(start), Made: made, Deleted: deleted}
	if err := j.store.AppendCall(j.run, call); err != nil {
		return nil, fmt.Errorf("%s: recording the call in the state: %w", def.ShortName(), err)
	}
	return v, nil
}

// DivergenceError is a replayed cell whose calls no longer match its journal.
type DivergenceError struct {
	Cell      *lang.Cell
	File      string
	Seq       int
	Journaled string
	Now       string
}

func (e *DivergenceError) Error() string {
	return fmt.Sprintf("replay diverged in %s at call #%d:\n  journaled: %s\n  now:       %s\n"+
		"Something this cell depends on changed in a way kumo cannot see (a file it reads, a value its functions close over).\n"+
		"To run it live again: kumo run %s --from %d", e.Cell.Name(), e.Seq, e.Journaled, e.Now, e.File, e.Cell.Index)
}
