// Package runner runs a recipe's cells against a run in the state store:
// it replays the cells that already succeeded, unchanged, and runs the
// rest live, journaling every effectful builtin call.
package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/lang/state"
)

// Cell statuses as reported to users (kumo run --json).
const (
	Ran      = "ran"
	Replayed = "replayed"
	Failed   = "failed"
	Skipped  = "skipped"
)

// Events receives what happens during a run, for the CLI or the TUI.
type Events interface {
	CellStarted(c *lang.Cell, replay bool)
	// Output is a line printed while a live cell runs: by print() (source
	// ""), by a node (source is its name) or by kumo itself (stream "note").
	Output(c *lang.Cell, source, stream, text string)
	CellFinished(c *lang.Cell, r CellResult)
}

// CellResult is how one cell went.
type CellResult struct {
	Status   string
	Duration time.Duration
	Err      error
}

// Options configure a run.
type Options struct {
	Recipe    *lang.Recipe
	Run       string            // the run's name
	Overrides map[string]string // -p name=value
	From      string            // run live from this cell on
	Only      string            // run only this cell live
	// ReplayOnly replays the succeeded prefix and stops before the first
	// cell that would run live (kumo repl FILE).
	ReplayOnly bool
	Builtins   starlark.StringDict
	Env        *builtins.Env // Run, Store and Providers set; Out is set by the runner
	Events     Events
	// Step, if set, is called before each cell that will run live and may
	// block: the step-through TUI waits there for the user. An error (the
	// user quit) ends the run before that cell.
	Step func(ctx context.Context, c *lang.Cell) error
}

// Runner runs one recipe.
type Runner struct {
	opts    Options
	store   *state.Store
	session *lang.Session
	journal *journal

	mu   sync.Mutex
	cell *lang.Cell
	out  strings.Builder
}

// New prepares a run. Nothing is locked or executed yet.
func New(opts Options) *Runner {
	return &Runner{opts: opts, store: opts.Env.Store}
}

// Session is the recipe's interpreter, with its globals after Run.
func (r *Runner) Session() *lang.Session { return r.session }

// Summary is the outcome of a run.
type Summary struct {
	Cells  map[int]CellResult
	Failed *lang.Cell // the cell that failed, if any
}

// Run executes the recipe. The returned error is the first failure: an
// InputError for mistakes in the recipe, parameters or arguments.
// The caller holds the run's lock.
func (r *Runner) Run(ctx context.Context) (*Summary, error) {
	o := r.opts
	rec := o.Recipe
	if err := rec.CheckOverrides(o.Overrides); err != nil {
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
		c, ok := lang.FindCell(rec.Cells, ref.val)
		if !ok {
			return nil, lang.Inputf("%s %s: no such cell (give a number 0-%d or a unique title)", ref.flag, ref.val, len(rec.Cells)-1)
		}
		*ref.dst = c.Index
	}
	prev, err := r.store.Cells(o.Run)
	if err != nil {
		return nil, err
	}
	if err := r.store.DropCellsFrom(o.Run, len(rec.Cells)); err != nil {
		return nil, err
	}
	if !o.ReplayOnly {
		if err := r.store.StartRun(o.Run, r.recipePath(), "{}"); err != nil {
			return nil, err
		}
	}

	env := o.Env
	env.Out = r
	if env.Secrets == nil {
		env.Secrets = &builtins.Masker{}
	}
	r.session = lang.NewSession(rec.Dir, o.Builtins)
	env.Attach(r.session.Thread)
	r.session.Thread.Print = func(_ *starlark.Thread, msg string) { r.Line("", "print", msg) }
	r.journal = &journal{store: r.store, run: o.Run, masker: env.Secrets}
	builtins.SetInterceptor(r.session.Thread, r.journal)

	sum := &Summary{Cells: map[int]CellResult{}}
	live, stopped := false, false
	for _, c := range rec.Cells {
		if !c.Runnable() {
			continue
		}
		if sum.Failed != nil || (only >= 0 && c.Index > only) {
			r.finish(sum, c, CellResult{Status: Skipped})
			continue
		}
		isParams := rec.IsParams(c)
		paramsHash := ""
		if !isParams {
			paramsHash = r.paramsHash(c)
		}
		p, had := prev[c.Index]
		replayable := had && p.Status == "ok" && p.SourceHash == c.Hash() && p.ParamsHash == paramsHash
		var replay bool
		switch {
		case isParams:
			// The parameters cell holds values only; it always runs (it is
			// pure), and changes it makes reach later cells through their
			// params hashes, so it does not end the replayed prefix.
			replay = false
		case only >= 0 && c.Index < only:
			if !replayable {
				return sum, lang.Inputf("--only %d: %s has not succeeded as it is now; run the recipe up to it first", only, c.Name())
			}
			replay = true
		case only == c.Index, from >= 0 && c.Index >= from, live, !replayable:
			replay = false
		default:
			replay = true
		}
		if o.ReplayOnly && !replay && !isParams {
			break
		}
		if !replay && !isParams {
			live = true
			if o.Step != nil {
				if err := o.Step(ctx, c); err != nil {
					stopped = true
					break
				}
			}
		}
		unchanged := had && p.Status == "ok" && p.SourceHash == c.Hash()
		res := r.execCell(ctx, c, isParams, replay, unchanged, paramsHash, p.ParamsHash)
		r.finish(sum, c, res)
		if res.Err != nil {
			sum.Failed = c
			if o.ReplayOnly {
				return sum, res.Err
			}
		}
		if isParams && res.Err == nil && !o.ReplayOnly {
			if err := r.store.StartRun(o.Run, r.recipePath(), r.paramsJSON()); err != nil {
				return sum, err
			}
		}
	}
	status := "ok"
	if stopped {
		status = "stopped" // the user stopped stepping; the next run resumes here
	}
	var runErr error
	if sum.Failed != nil {
		status = "failed"
		runErr = sum.Cells[sum.Failed.Index].Err
	}
	if !o.ReplayOnly {
		if errors.Is(ctx.Err(), context.Canceled) {
			status = "interrupted"
		}
		if err := r.store.FinishRun(o.Run, status); err != nil && runErr == nil {
			runErr = err
		}
	}
	return sum, runErr
}

// recipePath is the recipe's absolute path, as the run records it.
func (r *Runner) recipePath() string {
	if abs, err := filepath.Abs(r.opts.Recipe.Path); err == nil {
		return abs
	}
	return r.opts.Recipe.Path
}

func (r *Runner) finish(sum *Summary, c *lang.Cell, res CellResult) {
	sum.Cells[c.Index] = res
	if r.opts.Events != nil {
		r.opts.Events.CellFinished(c, res)
	}
}

// execCell runs one cell, live or replayed, and records a live one.
func (r *Runner) execCell(ctx context.Context, c *lang.Cell, isParams, replay, unchanged bool, paramsHash, previousHash string) CellResult {
	o := r.opts
	var calls []state.Call
	if replay {
		var err error
		if calls, err = r.store.Calls(o.Run, c.Index); err != nil {
			return CellResult{Status: Failed, Err: err}
		}
	} else if err := r.store.StartCell(o.Run, c.Index, c.Title); err != nil {
		return CellResult{Status: Failed, Err: err}
	}
	if o.Events != nil {
		o.Events.CellStarted(c, replay)
	}
	r.mu.Lock()
	r.cell = c
	r.out.Reset()
	r.mu.Unlock()
	r.journal.begin(c, isParams, replay, calls)
	start := time.Now()
	err := r.session.ExecCell(ctx, o.Recipe.Path, c)
	if err == nil && isParams {
		// Overrides are applied after the defaults, like papermill's
		// injected cell: a default computed from another parameter is
		// computed from that parameter's default.
		for name, raw := range o.Overrides {
			r.session.Globals[name] = lang.ParamValue(raw)
		}
		// The parameters cell counts as replayed when it produced the
		// same values as last time.
		paramsHash = r.hashParams(o.Recipe.Params)
		unchanged = unchanged && paramsHash == previousHash
	}
	if err == nil {
		err = r.journal.end()
	}
	dur := time.Since(start)
	status := Ran
	switch {
	case err != nil:
		status = Failed
	case replay, isParams && unchanged:
		status = Replayed
	}
	if replay {
		return CellResult{Status: status, Duration: dur, Err: err}
	}
	r.mu.Lock()
	output := r.out.String()
	r.cell = nil
	r.mu.Unlock()
	rec := state.CellRecord{Index: c.Index, Title: c.Title, SourceHash: c.Hash(), ParamsHash: paramsHash,
		Status: "ok", Output: r.opts.Env.Secrets.Mask(output), Duration: dur}
	if err != nil {
		rec.Status = "failed"
		rec.Error = r.opts.Env.Secrets.Mask(lang.FormatError(err))
	}
	if serr := r.store.FinishCell(o.Run, rec); serr != nil && err == nil {
		err = serr
		status = Failed
	}
	return CellResult{Status: status, Duration: dur, Err: err}
}

// paramsHash digests the current values of the parameters cell c uses,
// so that changing one re-runs exactly the cells that mention it (and,
// since the replayed prefix ends there, every cell after).
func (r *Runner) paramsHash(c *lang.Cell) string {
	return r.hashParams(r.opts.Recipe.ParamsUsed(c))
}

func (r *Runner) hashParams(used []string) string {
	if len(used) == 0 {
		return ""
	}
	h := sha256.New()
	for _, name := range used {
		v := r.session.Globals[name]
		repr := "<unset>"
		if v != nil {
			repr = v.String()
		}
		fmt.Fprintf(h, "%s=%s\x00", name, repr)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// paramsJSON renders the effective parameters for the state (kumo status).
func (r *Runner) paramsJSON() string {
	m := map[string]string{}
	for _, name := range r.opts.Recipe.Params {
		if v := r.session.Globals[name]; v != nil {
			m[name] = r.opts.Env.Secrets.Mask(v.String())
		}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// Line implements builtins.Output: it keeps the line for the cell's
// record and passes it on.
func (r *Runner) Line(source, stream, text string) {
	text = r.opts.Env.Secrets.Mask(text)
	r.mu.Lock()
	c := r.cell
	if c != nil {
		if source != "" {
			r.out.WriteString(source + " | ")
		}
		r.out.WriteString(text + "\n")
	}
	r.mu.Unlock()
	if r.opts.Events != nil && c != nil && !r.journal.replay {
		r.opts.Events.Output(c, source, stream, text)
	}
}

// Note implements builtins.Output.
func (r *Runner) Note(text string) { r.Line("", "note", text) }
