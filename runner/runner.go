// Package runner runs a recipe's cells against a run in the state store.
//
// Replay is reactive, after marimo's notebooks but with journaled side
// effects: a cell replays (its code runs, its builtins answered from the
// journal) when its source is unchanged and every value it reads is the
// same as when it last succeeded; otherwise it runs live. Values are
// compared, not cell positions, so an edit whose outputs are unchanged
// does not disturb the cells after it, and a changed parameter re-runs
// exactly the cells that depend on it, directly or through values derived
// from it. Dependencies that pass through the world rather than through
// values are declared with a cell tag, [after: CELL].
package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/state"
)

// Outcome is what became of a cell in one execution of the run.
type Outcome string

const (
	Ran      Outcome = "ran"
	Replayed Outcome = "replayed"
	Failed   Outcome = "failed"
	Skipped  Outcome = "skipped"
)

// Events receives what happens during a run, for the CLI or the TUI.
type Events interface {
	// CellStarted says a cell begins: replayed, or live and why.
	CellStarted(c *lang.Cell, start CellStart)
	// Output is a line printed while a live cell runs: by print() (source
	// ""), by a node (source is its name) or by kumo itself (stream "note").
	Output(c *lang.Cell, source, stream, text string)
	// Status is the live cell's status line for long work ("" clears it).
	Status(c *lang.Cell, text string)
	CellFinished(c *lang.Cell, r CellResult)
	// Notice is a message about the run as a whole.
	Notice(text string)
}

// CellStart is how a cell is about to run.
type CellStart struct {
	Replay bool
	Reason string // why a live cell runs live: "edited", "students changed", ...
}

// CellResult is how one cell went.
type CellResult struct {
	Status   Outcome
	Reason   string // for live cells, why
	Duration time.Duration
	Err      error
	// Output is what a replayed cell printed when it ran live.
	Output state.Output
}

// Options configure a run.
type Options struct {
	Recipe *lang.Recipe
	Run    string // the run's name
	// Overrides are the -p values, read against their defaults (see
	// lang.Override); Remember is how they were given, which the run keeps
	// for its next execution.
	Overrides map[string]starlark.Value
	Remember  map[string]string
	From      string // run live from this cell on
	Only      string // run only this cell live
	// ReplayOnly replays what can be replayed and stops before the first
	// cell that would run live (kumo repl FILE).
	ReplayOnly bool
	Builtins   starlark.StringDict
	Env        *builtins.Env // Run, Store and Providers set; Out is set by the runner
	Events     Events
	// Step, if set, is called before each cell that will run live and may
	// block: the step-through TUI waits there for the user. An error (the
	// user quit) ends the run before that cell.
	// reason is why the cell runs live.
	Step func(ctx context.Context, c *lang.Cell, reason string) error
	// Plan works out what the run would do and does none of it (see
	// Runner.Plan, which sets it).
	Plan bool
	// Drifted are the cells to run live although nothing they read
	// changed, because what they set up on nodes drifted (kumo run
	// --verify): why, by cell index (CheckReport.Reasons).
	Drifted map[int]string
	// World, if set, says which of the given resource tokens are gone
	// (deleted, or no longer at their provider), and why. It is asked
	// once, before the first live cell, about what the replayed cells
	// made: a cell whose work vanished runs live again.
	World func(ctx context.Context, tokens []string) (map[string]string, error)
}

// Runner runs one recipe.
type Runner struct {
	opts    Options
	store   Records
	interp  *lang.Interpreter
	journal *journal
	records map[int]*state.CellRecord // by cell index
	events  *eventBuffer
	plan    *Plan // when planning
	// check, when checking, collects what the replayed calls found;
	// checkedCell is the cell of the last call that looked.
	check       *CheckReport
	checkedCell *lang.Cell

	mu   sync.Mutex
	cell *lang.Cell
	out  state.Output

	touched bool   // see journal.touched
	status  string // the running cell's status line, for its live record
}

// New prepares a run. Nothing is locked or executed yet.
func New(opts Options) *Runner {
	return &Runner{opts: opts, store: opts.Env.Store}
}

// Session is the recipe's interpreter, with its globals after Run.
func (r *Runner) Interpreter() *lang.Interpreter { return r.interp }

// Summary is the outcome of a run.
type Summary struct {
	Cells  map[int]CellResult
	Failed *lang.Cell // the cell that failed, if any
	// Forgotten: the run failed on bad input before any live call
	// changed anything, so it keeps the -p values of its last execution,
	// not these (name=value, sorted).
	Forgotten []string
}

// Run executes the recipe. The returned error is the first failure: an
// InputError for mistakes in the recipe, parameters or arguments.
// The caller holds the run's lock.
func (r *Runner) Run(ctx context.Context) (*Summary, error) {
	o := r.opts
	rec := o.Recipe
	if err := rec.CheckOverrides(o.Remember); err != nil {
		return nil, err
	}
	from, only := -1, -1
	for _, ref := range []struct {
		flag string
		val  string
		dst  *int
	}{{"--from", o.From, &from}, {"--only", o.Only, &only}} {
		if ref.val == "" {
			continue
		}
		c, err := lang.FindCell(rec.Cells, ref.val)
		if err != nil {
			return nil, starkit.Inputf("%s %s: %v", ref.flag, ref.val, err)
		}
		*ref.dst = c.Index
	}
	recs, err := r.store.Cells(o.Run)
	if err != nil {
		return nil, err
	}
	var dropped []state.CellRecord
	r.records, dropped = align(rec.Cells, recs)
	r.events = &eventBuffer{out: o.Events}
	var prev state.Run
	if !o.ReplayOnly && !o.Plan {
		if prev, _, err = r.store.GetRun(o.Run); err != nil {
			return nil, err
		}
		if err := r.realign(dropped); err != nil {
			return nil, err
		}
		if err := r.store.StartRun(o.Run, r.recipePath(), o.Remember); err != nil {
			return nil, err
		}
	}
	env := o.Env
	env.Out = r
	if env.Secrets == nil {
		env.Secrets = &builtins.Masker{}
	}

	p := &pass{r: r, driver: driverFor(o), mode: mode{from: from, only: only}, checked: o.World == nil || o.ReplayOnly}
	sum, runErr := p.run(ctx)
	for p.restart != nil {
		// A replayed cell made something that is gone: run again from
		// the start, that cell live. Replay touched nothing, so starting
		// over costs only the replay.
		p = &pass{r: r, driver: driverFor(o), mode: mode{from: from, only: only}, checked: true, vanished: p.restart}
		sum, runErr = p.run(ctx)
	}
	if o.ReplayOnly || o.Plan {
		return sum, runErr
	}
	status := state.RunOK
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		status = state.RunInterrupted
	case sum != nil && sum.Failed != nil:
		status = state.RunFailed
	case p.stopped:
		status = state.RunStopped // the user stopped stepping; the next run resumes here
	case runErr != nil:
		status = state.RunFailed
	}
	if err := r.store.FinishRun(o.Run, status); err != nil && runErr == nil {
		runErr = err
	}
	if starkit.IsInputError(runErr) && !r.touched && sum != nil {
		if !maps.Equal(prev.Overrides, o.Remember) { // nil and empty are equal
			sum.Forgotten = changedOverrides(prev.Overrides, o.Remember)
			if err := r.store.SetOverrides(o.Run, prev.Overrides); err != nil {
				return sum, err
			}
		}
	}
	return sum, runErr
}

// changedOverrides lists the -p values of now that were not so before.
func changedOverrides(before, now map[string]string) []string {
	var out []string
	for n, v := range now {
		if old, ok := before[n]; !ok || old != v {
			out = append(out, n+"="+v)
		}
	}
	sort.Strings(out)
	return out
}

// realign records where the cells are now and forgets the records of
// cells no longer in the recipe, saying what those made that remains.
func (r *Runner) realign(dropped []state.CellRecord) error {
	positions := map[int64]int{}
	for idx, rec := range r.records {
		if rec.Index != idx {
			positions[rec.ID] = idx
			rec.Index = idx
		}
	}
	var drop []int64
	for _, d := range dropped {
		drop = append(drop, d.ID)
		if kept := r.stillMade(d.ID); kept != "" {
			r.events.notice(fmt.Sprintf("the cell %q is no longer in the recipe; what it made stays: %s (delete it in a cell, or kumo destroy)", d.Title, kept))
		}
	}
	if len(positions) == 0 && len(drop) == 0 {
		return nil
	}
	return r.store.Realign(r.opts.Run, positions, drop)
}

// stillMade names the resources that the cell record id made and that
// still exist.
func (r *Runner) stillMade(id int64) string {
	effects, err := r.store.Effects(r.opts.Run)
	if err != nil {
		return ""
	}
	var names []string
	for _, e := range effects[id].Made {
		if res, err := r.opts.Env.Reader().NodeByToken(r.opts.Run, e.Token); err == nil {
			names = append(names, res.Name)
		}
	}
	return strings.Join(names, ", ")
}

// recipePath is the recipe's absolute path, as the run records it.
func (r *Runner) recipePath() string {
	if abs, err := filepath.Abs(r.opts.Recipe.Path); err == nil {
		return abs
	}
	return r.opts.Recipe.Path
}

// A pass goes through the cells once. It ends early, asking for a
// restart, when the world check finds that a cell it already replayed
// made something that is gone.
type pass struct {
	r        *Runner
	driver   driver // what the pass does with cells it does not skip: run, plan or replay
	mode     mode
	checked  bool           // the world was checked
	vanished map[int]string // cells to run live because what they made is gone
	replayed map[int]bool
	restart  map[int]string
	stopped  bool
	digest   *digester

	effectsCache map[int64]state.CellEffects // see effects
	worldCells   map[int64][]string          // see worldInput
	handles      map[scope]bool              // what the cell whose inputs were last taken reads of the world
	planned      map[scope]string            // when planning: the handles live cells change, and which cell
}

func (p *pass) run(ctx context.Context) (*Summary, error) {
	r, o := p.r, p.r.opts
	rec := o.Recipe
	r.interp = lang.NewInterpreter(rec.Dir, o.Builtins)
	if o.Plan {
		r.interp.WrapStep = planStep
	}
	o.Env.Attach(r.interp.Thread)
	r.interp.Thread.Print = func(_ *starlark.Thread, msg string) {
		for _, line := range strings.Split(msg, "\n") {
			r.Line("", string(state.StreamPrint), line)
		}
	}
	r.journal = &journal{store: r.store, run: o.Run, file: rec.Path, masker: o.Env.Secrets, touched: &r.touched}
	if r.check != nil {
		r.journal.check = r.checkCall
	}
	builtins.SetInterceptor(r.interp.Thread, r.journal)
	p.digest = newDigester(rec, r.interp)
	p.replayed = map[int]bool{}
	if p.mode.only >= 0 {
		p.mode.ancestors = rec.Ancestors(p.mode.only)
	}
	if r.check == nil { // a check pass has no world check to start over: it shows as it goes
		r.events.hold()
		defer r.events.flush()
	}
	if r.plan != nil {
		r.plan.Cells, r.plan.state.Units = nil, nil // a pass that starts over plans again
	}

	sum := &Summary{Cells: map[int]CellResult{}}
	for _, c := range rec.Cells {
		if !c.Runnable() {
			continue
		}
		t := turn{cell: c, record: r.records[c.Index], isParams: rec.IsParams(c),
			ended: sum.Failed != nil || p.stopped, again: p.again(c.Index),
			inputs: sync.OnceValue(func() map[string]string { return p.inputs(c) })}
		d, err := decide(p.mode, t, p)
		if err != nil {
			r.events.discard()
			return sum, err
		}
		if d.Notice != "" {
			r.events.notice(d.Notice)
		}
		switch d.Action {
		case ActSkip:
			r.finish(sum, c, CellResult{Status: Skipped, Reason: d.Reason})
			continue
		case ActParams:
			res := p.params(ctx, c)
			r.finish(sum, c, res)
			if res.Err != nil {
				sum.Failed = c
				if p.driver.endsAtFailure() {
					return sum, res.Err
				}
			}
			continue
		}
		inputs := t.inputs() // recorded with the cell, whether it runs or replays
		reason := d.Reason
		if reason != "" && !p.checked {
			p.checked = true
			if p.checkWorld(ctx, c) {
				r.events.discard()
				return sum, nil // restart
			}
			if why := p.again(c.Index); why != "" {
				reason = why
			}
		}
		if done, err := p.driver.cell(ctx, p, sum, t, reason, inputs); done {
			return sum, err
		}
	}
	if sum.Failed != nil {
		return sum, sum.Cells[sum.Failed.Index].Err
	}
	return sum, nil
}

// again is why cell idx runs live though nothing it reads changed: what
// it made vanished (the world check), what it set up drifted (--verify).
func (p *pass) again(idx int) string {
	var whys []string
	for _, why := range []string{p.vanished[idx], p.r.opts.Drifted[idx]} {
		if why != "" {
			whys = append(whys, why)
		}
	}
	return strings.Join(whys, "; ")
}

// inputs digests what cell c reads now: the globals it uses, the modules
// it loads and the live generations of the cells it runs after.
func (p *pass) inputs(c *lang.Cell) map[string]string {
	deps := p.r.opts.Recipe.Deps[c.Index]
	p.digest.reset()
	p.digest.handles = map[scope]bool{}
	in := map[string]string{}
	for _, name := range deps.Reads {
		in[name] = p.digest.digest(p.r.interp.Globals[name])
	}
	if w := p.worldInput(c.Index, p.digest.handles); w != "" {
		in[worldKey] = w
	}
	p.handles = p.digest.handles
	p.digest.handles = nil
	for _, f := range deps.Files {
		in["file:"+f] = fileDigest(p.r.opts.Recipe.Dir, f)
	}
	for _, m := range deps.Loads {
		d, err := p.r.interp.ModuleDigest(m)
		if err != nil {
			d = "error: " + err.Error()
		}
		in["load:"+m] = d
	}
	for _, idx := range deps.After {
		gen := "never"
		if dep := p.r.records[idx]; dep != nil {
			gen = strconv.FormatInt(dep.ID, 10) + "@" + strconv.FormatInt(dep.LiveGen, 10)
		}
		in["after:"+strconv.Itoa(idx)] = gen
	}
	return in
}

// checkWorld asks, once per run, whether what the cells made is still
// there. Cells whose work vanished run live again: those still ahead
// in this pass are marked, and if one is behind (it was replayed), the
// pass asks for a restart. It reports whether a restart is needed.
func (p *pass) checkWorld(ctx context.Context, current *lang.Cell) bool {
	r, o := p.r, p.r.opts
	effects := p.effects()
	// What some cell of the recipe deleted is meant to be gone.
	meant := map[string]bool{}
	for _, rec := range r.records {
		for _, e := range effects[rec.ID].Deleted {
			meant[e.Token] = true
		}
	}
	maker := map[string]int{}
	var tokens []string
	for idx, rec := range r.records {
		for _, e := range effects[rec.ID].Made {
			if t := e.Token; !meant[t] {
				if _, dup := maker[t]; !dup {
					tokens = append(tokens, t)
				}
				maker[t] = idx
			}
		}
	}
	if len(tokens) == 0 {
		return false
	}
	gone, err := o.World(ctx, tokens)
	if r.plan != nil {
		r.plan.state.Gone = gone // for the planners: what a call will make again
	}
	if err != nil {
		r.events.notice("could not check that what the replayed cells made still exists: " + err.Error())
		return false
	}
	if len(gone) == 0 {
		return false
	}
	vanished := map[int]string{}
	var cells []int
	for t, why := range gone {
		idx := maker[t]
		if vanished[idx] == "" {
			cells = append(cells, idx)
			vanished[idx] = why
		} else if !strings.Contains(vanished[idx], why) {
			vanished[idx] += "; " + why
		}
	}
	sort.Ints(cells)
	restart := false
	for _, idx := range cells {
		c := o.Recipe.Cells[idx]
		r.events.notice(fmt.Sprintf("%s: %s runs live again", vanished[idx], c.Name()))
		if idx < current.Index && p.replayed[idx] {
			restart = true
		}
	}
	if p.vanished == nil {
		p.vanished = map[int]string{}
	}
	for idx, why := range vanished {
		p.vanished[idx] = why
	}
	if restart {
		p.restart = p.vanished
	}
	return restart
}

// adviseDeleted says, when a cell failed on a node deleted through kumo
// (outside the recipe's own cells), which cell made it, to run again.
func (p *pass) adviseDeleted(err error) {
	var gone *builtins.DeletedError
	if !errors.As(err, &gone) || gone.Token == "" {
		return
	}
	effects := p.effects()
	for idx, rec := range p.r.records {
		for _, e := range effects[rec.ID].Made {
			if e.Token == gone.Token {
				c := p.r.opts.Recipe.Cells[idx]
				p.r.events.notice(fmt.Sprintf("%s was made by %s; to make it again: kumo run %s --from %d", gone.Node, c.Name(), p.r.opts.Recipe.Path, idx))
				return
			}
		}
	}
}

// params runs the parameters cell: it always runs (it is pure), then the
// -p values are applied. It counts as replayed when it produced the same
// values as last time.
func (p *pass) params(ctx context.Context, c *lang.Cell) CellResult {
	r, o := p.r, p.r.opts
	r.journal.begin(c, 0, true, false, nil)
	start := time.Now()
	err := r.interp.ExecCell(ctx, o.Recipe.Path, c)
	if err != nil {
		return CellResult{Status: Failed, Duration: time.Since(start), Err: err}
	}
	// Overrides are applied after the defaults, like papermill's
	// injected cell: a default computed from another parameter is
	// computed from that parameter's default.
	for name, v := range o.Overrides {
		r.interp.Globals[name] = v
	}
	p.digest.reset()
	outputs := map[string]string{}
	for _, name := range o.Recipe.Params {
		outputs[name] = p.digest.digest(r.interp.Globals[name])
	}
	dur := time.Since(start)
	rec := r.records[c.Index]
	if rec != nil && rec.Status == state.CellOK && rec.SourceHash == c.Hash() && maps.Equal(rec.Outputs, outputs) {
		return CellResult{Status: Replayed, Duration: dur}
	}
	reason := "parameters changed"
	if rec == nil {
		reason = "new"
	}
	if o.ReplayOnly || o.Plan {
		return CellResult{Status: Ran, Duration: dur, Reason: reason}
	}
	rec, err = r.startCell(c)
	if err != nil {
		return CellResult{Status: Failed, Err: err}
	}
	rec.SourceHash, rec.Status, rec.Duration, rec.Inputs, rec.Outputs = c.Hash(), state.CellOK, dur, map[string]string{}, outputs
	if err := r.store.FinishCell(o.Run, rec); err != nil {
		return CellResult{Status: Failed, Err: err}
	}
	if err := r.store.SetParams(o.Run, paramsJSON(o.Recipe.Params, r.interp.Globals, o.Env.Secrets)); err != nil {
		return CellResult{Status: Failed, Err: err}
	}
	return CellResult{Status: Ran, Duration: dur, Reason: reason}
}

// startCell records that c runs live, making its record if it has none.
func (r *Runner) startCell(c *lang.Cell) (*state.CellRecord, error) {
	rec := r.records[c.Index]
	if rec == nil {
		rec = &state.CellRecord{}
		r.records[c.Index] = rec
	}
	rec.Index, rec.Title = c.Index, c.Title
	return rec, r.store.StartCell(r.opts.Run, rec)
}

// exec runs one cell, replayed (reason "") or live, and records a live one.
func (p *pass) exec(ctx context.Context, c *lang.Cell, inputs map[string]string, reason string) CellResult {
	r, o := p.r, p.r.opts
	replay := reason == ""
	rec := r.records[c.Index]
	var calls []state.Call
	if replay {
		var err error
		if calls, err = r.store.Calls(o.Run, rec.ID); err != nil {
			return CellResult{Status: Failed, Err: err}
		}
	} else {
		var err error
		if rec, err = r.startCell(c); err != nil {
			return CellResult{Status: Failed, Err: err}
		}
	}
	r.events.started(c, CellStart{Replay: replay, Reason: reason})
	r.mu.Lock()
	r.cell, r.out, r.status = c, nil, ""
	r.mu.Unlock()
	r.journal.begin(c, rec.ID, false, replay, calls)
	start := time.Now()
	var stopLive func()
	if !replay && !o.Plan {
		stopLive = r.keepLiveOutput(rec.ID)
	}
	err := r.interp.ExecCell(ctx, o.Recipe.Path, c)
	if err == nil {
		err = r.journal.end()
	}
	if stopLive != nil {
		stopLive()
	}
	dur := time.Since(start)
	r.mu.Lock()
	output := r.out
	for i := range output {
		// Again at the end: a secret made during the cell masks lines
		// printed before it was known.
		output[i].Text = o.Env.Secrets.Mask(output[i].Text)
	}
	r.cell = nil
	r.mu.Unlock()
	if replay {
		if err != nil {
			return CellResult{Status: Failed, Duration: dur, Err: err}
		}
		if rec.Inputs == nil && !o.Plan {
			// Recorded by an older kumo: learn its inputs now.
			rec.Inputs = inputs
			r.store.FinishCell(o.Run, rec)
		}
		return CellResult{Status: Replayed, Duration: dur, Output: rec.Output}
	}
	p.effectsCache = nil // a live cell may have made or deleted resources
	rec.SourceHash, rec.Status, rec.Output, rec.Duration = c.Hash(), state.CellOK, output, dur
	rec.Error, rec.Inputs, rec.Outputs = "", inputs, nil
	if err != nil {
		rec.Status = state.CellFailed
		rec.Error = o.Env.Secrets.Mask(lang.FormatError(err))
	} else {
		p.digest.reset()
		rec.Outputs = map[string]string{}
		for _, name := range o.Recipe.Deps[c.Index].Defines {
			rec.Outputs[name] = p.digest.digest(r.interp.Globals[name])
		}
	}
	if serr := r.store.FinishCell(o.Run, rec); serr != nil && err == nil {
		err = serr
	}
	err = state.Explain(err, r.store.Location())
	status := Ran
	if err != nil {
		status = Failed
		p.adviseDeleted(err)
	}
	return CellResult{Status: status, Reason: reason, Duration: dur, Err: err}
}

// LiveOutputEvery is how often a running cell's output so far is
// written to the state, for kumo logs --follow.
var LiveOutputEvery = time.Second

// keepLiveOutput writes the running cell's output to its record as it
// grows, until the returned stop is called.
func (r *Runner) keepLiveOutput(id int64) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(LiveOutputEvery)
		defer t.Stop()
		written, shown := 0, ""
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			r.mu.Lock()
			out, status := slices.Clone(r.out), r.status
			r.mu.Unlock()
			if len(out) == written && status == shown {
				continue
			}
			written, shown = len(out), status
			for i := range out { // a secret revealed since masks earlier lines
				out[i].Text = r.opts.Env.Secrets.Mask(out[i].Text)
			}
			if status != "" {
				out = append(out, state.OutputLine{Stream: state.StreamStatus, Text: status})
			}
			r.store.SetLiveOutput(r.opts.Run, id, out) // best effort: the cell's end writes it all
		}
	}()
	return func() { close(done); <-finished }
}

func (r *Runner) finish(sum *Summary, c *lang.Cell, res CellResult) {
	sum.Cells[c.Index] = res
	if r.plan != nil && (res.Status != Ran || r.opts.Recipe.IsParams(c)) {
		r.recordPlan(c, res) // live cells record their own plan
	}
	r.events.finished(c, res)
}

// Line implements builtins.Output: it keeps the line for the cell's
// record and passes it on.
func (r *Runner) Line(source, stream, text string) {
	text = r.opts.Env.Secrets.Mask(text)
	r.mu.Lock()
	c := r.cell
	if c != nil {
		r.out = append(r.out, state.OutputLine{Source: source, Stream: state.Stream(stream), Text: text})
	}
	r.mu.Unlock()
	if c != nil && !r.journal.replay {
		r.events.output(c, source, stream, text)
	}
}

// Note implements builtins.Output.
func (r *Runner) Note(text string) { r.Line("", string(state.StreamNote), text) }

// Status implements builtins.Output.
func (r *Runner) Status(text string) {
	text = r.opts.Env.Secrets.Mask(text)
	r.mu.Lock()
	c := r.cell
	if c != nil {
		r.status = text
	}
	r.mu.Unlock()
	if c != nil && (!r.journal.replay || r.check != nil) {
		r.events.status(c, text)
	}
}

// fileDigest is the digest of a file a cell reads with read_file,
// relative to the recipe's folder ("missing" if it cannot be read).
func fileDigest(dir, name string) string {
	if !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	sum, err := providers.FileSHA256(name)
	if err != nil {
		return "missing"
	}
	return sum
}
