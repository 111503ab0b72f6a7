package runner

import (
	"context"
	"strings"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/state"
)

// An Interactive run executes cells one at a time, as a notebook kernel
// is asked to, in one interpreter interp: each cell replays or runs
// live exactly as it would in a run of the whole recipe, against the
// cells given so far. The recipe grows (and cells change) between calls;
// cells keep their positions. Records of cells not executed yet in this
// session are kept, not dropped: the notebook may still get there.
type Interactive struct {
	r *Runner
	p *pass
	// last is how the last executed cell went, for the run's status.
	last Outcome
	// recs are the run's cell records as last read; a live cell changes
	// them, a replayed one does not.
	recs []state.CellRecord
}

// NewInteractive starts an interactive run: the run is recorded as under
// way. opts.Recipe may have no cells yet (its Path and Dir are the
// notebook's); the caller holds the run's lock.
func NewInteractive(opts Options) (*Interactive, error) {
	r := New(opts)
	r.events = &eventBuffer{out: opts.Events}
	r.interp = lang.NewInterpreter(opts.Recipe.Dir, opts.Builtins)
	env := opts.Env
	env.Out = r
	if env.Secrets == nil {
		env.Secrets = &builtins.Masker{}
	}
	env.Attach(r.interp.Thread)
	r.interp.Thread.Print = func(_ *starlark.Thread, msg string) {
		for _, line := range strings.Split(msg, "\n") {
			r.Line("", string(state.StreamPrint), line)
		}
	}
	r.journal = &journal{store: r.store, run: opts.Run, file: opts.Recipe.Path, masker: env.Secrets, touched: &r.touched}
	builtins.SetInterceptor(r.interp.Thread, r.journal)
	if err := r.store.StartRun(opts.Run, r.recipePath(), opts.Remember); err != nil {
		return nil, err
	}
	p := &pass{r: r, driver: runDriver{}, mode: mode{from: -1, only: -1}, checked: opts.World == nil, replayed: map[int]bool{}}
	return &Interactive{r: r, p: p}, nil
}

// Session is the interpreter the cells run in.
func (it *Interactive) Interpreter() *lang.Interpreter { return it.r.interp }

// Exec runs cell idx of rec, the recipe as it stands now.
func (it *Interactive) Exec(ctx context.Context, rec *lang.Recipe, idx int) CellResult {
	r, p := it.r, it.p
	r.opts.Recipe = rec
	r.journal.file = rec.Path
	if it.recs == nil {
		recs, err := r.store.Cells(r.opts.Run)
		if err != nil {
			return CellResult{Status: Failed, Err: err}
		}
		it.recs = recs
	}
	r.records, _ = align(rec.Cells, it.recs)
	p.digest = newDigester(rec, r.interp)
	p.effectsCache = nil
	c := rec.Cells[idx]
	var res CellResult
	if rec.IsParams(c) {
		res = p.params(ctx, c)
	} else {
		inputs := p.inputs(c)
		// The cell the notebook executes runs: no skipping, only replay
		// or live.
		reason := liveReason(p.mode, turn{cell: c, record: r.records[c.Index], again: p.again(c.Index), inputs: fixed(inputs)}, p)
		if reason != "" && !p.checked {
			p.checked = true
			// What an earlier cell of this session replayed and made is
			// gone: say so, it runs live when executed again.
			p.checkWorld(ctx, c)
			p.restart = nil
			if why := p.again(c.Index); why != "" {
				reason = why
			}
		}
		res = p.exec(ctx, c, inputs, reason)
		if res.Status == Replayed {
			p.replayed[c.Index] = true
		}
	}
	it.last = res.Status
	if res.Status != Replayed {
		it.recs = nil
	}
	r.events.finished(c, res)
	return res
}

// SetOverrides sets the values the parameters cell's defaults give way
// to (the -p values the run remembers).
func (it *Interactive) SetOverrides(values map[string]starlark.Value) { it.r.opts.Overrides = values }

// Close records how the run ended: as its last cell did, or interrupted.
func (it *Interactive) Close(interrupted bool) error {
	status := state.RunOK
	switch {
	case interrupted:
		status = state.RunInterrupted
	case it.last == Failed:
		status = state.RunFailed
	}
	return it.r.store.FinishRun(it.r.opts.Run, status)
}
