package runner

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/lang"
)

// A plan is a run that touches nothing: cells that would replay replay
// (they touch nothing anyway), and cells that would run live run with
// every journaled call planned instead of made. A planned call says what
// it would do (builtins.Planner) and returns what it can know without
// the world, else an Unknown: a cell that needs an Unknown's content
// stops there, and the plan says the rest is known only when it runs.

// PlanAction is what a cell would do in the run.
type PlanAction string

const (
	PlanReplay PlanAction = "replay"
	PlanRun    PlanAction = "run"     // runs live
	PlanMaybe  PlanAction = "may run" // reads what a live cell before it makes: decided when that one has run
	PlanSkip   PlanAction = "skip"
	PlanFail   PlanAction = "fail" // fails as it stands (a divergence, a mistake in the recipe)
)

// CellPlan is one cell's part of the plan.
type CellPlan struct {
	Index   int           `json:"index"`
	Title   string        `json:"title,omitempty"`
	Action  PlanAction    `json:"action"`
	Reason  string        `json:"reason,omitempty"`
	Effects []PlannedCall `json:"effects,omitempty"`
	// Open says from where on the cell's effects are known only when it
	// runs: a value it needs comes from a live call.
	Open string `json:"known_when_run,omitempty"`
	// Guess: the cell branches on such a value, so the effects listed
	// after that point may not be the ones it will have.
	Guess bool   `json:"guess,omitempty"`
	Error string `json:"error,omitempty"`
}

// PlannedCall is one call a live cell would make.
type PlannedCall struct {
	Line int    `json:"line"`
	Call string `json:"call"`
	builtins.Effect
}

// Plan is what a run would do.
type Plan struct {
	Cells []CellPlan `json:"cells"`
	state builtins.PlanState
}

// Plan works out what Run would do, doing nothing: no builtin touches
// the world and the state is only read. The caller holds the run's lock.
func (r *Runner) Plan(ctx context.Context) (*Plan, error) {
	r.opts.Plan = true
	if r.opts.Env != nil {
		r.opts.Env.Planning = true
		defer func() { r.opts.Env.Planning = false }()
	}
	r.plan = &Plan{}
	r.opts.Events = nil
	_, err := r.Run(ctx)
	var div *DivergenceError
	if err != nil && !errors.As(err, &div) && len(r.plan.Cells) == 0 {
		return nil, err
	}
	return r.plan, nil
}

// recordPlan notes how a cell that was not planned live went.
func (r *Runner) recordPlan(c *lang.Cell, res CellResult) {
	cp := CellPlan{Index: c.Index, Title: c.Title, Reason: res.Reason}
	switch res.Status {
	case Replayed:
		cp.Action = PlanReplay
	case Skipped:
		cp.Action = PlanSkip
	case Ran:
		cp.Action = PlanRun // the parameters cell, whose values changed
	case Failed:
		cp.Action, cp.Error = PlanFail, r.opts.Env.Secrets.Mask(lang.FormatError(res.Err))
	}
	r.plan.Cells = append(r.plan.Cells, cp)
}

// planCell plans a cell that would run live for reason, or may (maybe):
// what it reads is known only when cells before it have run.
func (p *pass) planCell(ctx context.Context, c *lang.Cell, reason string, maybe bool) CellResult {
	r, o := p.r, p.r.opts
	cp := CellPlan{Index: c.Index, Title: c.Title, Action: PlanRun, Reason: reason}
	if maybe {
		cp.Action = PlanMaybe
		if unknowns := p.digest.unknowns; len(unknowns) > 0 {
			cp.Reason = "reads what " + strings.Join(slices.Compact(slices.Sorted(slices.Values(unknowns))), ", ") + " gives when it runs"
		}
	}
	pl := &planner{cell: &cp, file: o.Recipe.Path, masker: o.Env.Secrets}
	builtins.SetInterceptor(r.interp.Thread, pl)
	builtins.SetPlan(r.interp.Thread, &r.plan.state)
	defines := o.Recipe.Deps[c.Index].Defines
	before := map[string]starlark.Value{}
	for _, name := range defines {
		before[name] = r.interp.Globals[name]
	}
	err := r.interp.ExecCell(ctx, o.Recipe.Path, c)
	builtins.SetPlan(r.interp.Thread, nil)
	builtins.SetInterceptor(r.interp.Thread, r.journal)
	if err != nil {
		var need *builtins.UnknownNeeded
		usesUnknown := pl.unknowns > 0 || len(p.digest.unknowns) > 0 // made here, or read from cells before
		if errors.As(err, &need) || (usesUnknown && builtins.NeedsUnknown(err)) {
			cp.Open = recipeMessage(err, o.Recipe.Path)
			if need == nil {
				// Starlark's words for it ("unknown value is not
				// iterable") say less than what it means.
				pos, msg, _ := strings.Cut(cp.Open, ": ")
				cp.Open = pos + ": " + builtins.UnknownWords(msg)
			}
		} else if cp.Guess {
			// It failed after branching on a value not known yet: the
			// branch taken was a guess, and so is the failure.
			cp.Open = recipeMessage(err, o.Recipe.Path) + " (after a branch on a value known only when the cell runs: it may not fail)"
		} else {
			// A mistake the run would meet too (an unknown flavor, a
			// wrong argument): the plan says it fails, and why.
			cp.Action, cp.Error = PlanFail, o.Env.Secrets.Mask(lang.FormatError(err))
		}
		// What the cell had not set when its plan stopped is known
		// only when it runs; what it set before (its loads, say) stays.
		for _, name := range defines {
			if v := r.interp.Globals[name]; v == nil || sameValue(v, before[name]) {
				r.interp.Globals[name] = &builtins.Unknown{From: c.Name()}
			}
		}
	}
	if p.planned == nil {
		p.planned = map[scope]string{}
	}
	for _, sc := range pl.changes {
		p.planned[sc] = c.Name()
	}
	r.plan.Cells = append(r.plan.Cells, cp)
	return CellResult{Status: Ran, Reason: reason}
}

// changedByPlan says which planned live cell changes what the cell whose
// inputs were just taken reads of the world ("" if none).
func (p *pass) changedByPlan() string {
	for h := range p.handles {
		for changed, cell := range p.planned {
			if h.group == changed.group && (h.unit == "" || changed.unit == "" || h.unit == changed.unit) {
				return "reads " + h.String() + ", which " + cell + " changes when it runs"
			}
		}
	}
	return ""
}

// sameValue: v is the value the name had before the cell (not one it
// assigned). Values that cannot be compared count as assigned.
func sameValue(v, was starlark.Value) (same bool) {
	if was == nil {
		return false
	}
	defer func() {
		if recover() != nil {
			same = false // an uncomparable dynamic type
		}
	}()
	return v == was
}

// recipeMessage is an error's message at its innermost place in the
// recipe: "lab.star:12:5: .nodes needs ...".
func recipeMessage(err error, file string) string {
	var ev *starlark.EvalError
	if !errors.As(err, &ev) {
		line, _, _ := strings.Cut(err.Error(), "\n")
		return line
	}
	for i := len(ev.CallStack) - 1; i >= 0; i-- {
		if pos := ev.CallStack[i].Pos; pos.Filename() == file {
			return pos.String() + ": " + ev.Msg
		}
	}
	return ev.Msg
}

// planner is the interceptor of a planned cell.
type planner struct {
	cell     *CellPlan
	file     string
	masker   *builtins.Masker
	unknowns int     // Unknowns handed out
	changes  []scope // the units and groups its calls make or delete nodes in
}

func (pl *planner) Call(thread *starlark.Thread, def *builtins.Def, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	desc := pl.masker.Mask(builtins.DescribeCall(def.ShortName(), b.Receiver(), args, kwargs))
	line, via := pl.caller(thread)
	// A call without a planner reads the world (nodes(), vars()): its
	// value is known only when the cell runs.
	effect := builtins.Effect{Kind: builtins.EffectRead, What: "read " + pl.masker.Mask(builtins.ShowCall(def.ShortName(), b.Receiver(), args, kwargs))}
	var result starlark.Value
	if def.Plan != nil {
		e, v, err := def.Plan(thread, b, args, kwargs)
		switch {
		case err == nil:
			effect, result = e, v
			effect.What = pl.masker.Mask(effect.What)
		case pl.unknowns > 0 && builtins.NeedsUnknown(err):
			effect.What = desc + " (its arguments are known only when the cell runs)"
		default:
			return nil, err
		}
	}
	if via != "" {
		effect.What = via + ": " + effect.What
	}
	pl.cell.Effects = append(pl.cell.Effects, PlannedCall{Line: line, Call: desc, Effect: effect})
	if effect.Kind == builtins.EffectCreate || effect.Kind == builtins.EffectDelete {
		for _, v := range []starlark.Value{b.Receiver(), result} {
			if h, ok := v.(builtins.Handle); ok {
				g, u := h.Scope()
				pl.changes = append(pl.changes, scope{g, u})
			}
		}
	}
	if result == nil {
		pl.unknowns++
		result = &builtins.Unknown{From: fmt.Sprintf("%s (line %d)", def.ShortName(), line), Tested: pl.tested}
	}
	return result, nil
}

// planStep wraps a stdlib step while planning: a step whose body needs
// a value only a live call gives returns an Unknown instead of stopping
// the cell's plan, so the plan goes on through the recipe (every
// users.add of a loop over known names), with what the step planned
// before it stopped.
func planStep(name string, fn *starlark.Function) starlark.Value {
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		pl, _ := builtins.InterceptorOf(thread).(*planner)
		outermost := thread.Local(stepKey) == nil
		start := 0
		if pl != nil && outermost {
			thread.SetLocal(stepKey, true)
			defer thread.SetLocal(stepKey, nil)
			start = len(pl.cell.Effects)
			defer func() { pl.collapse(start, name, args, kwargs) }()
		}
		v, err := starlark.Call(thread, fn, args, kwargs)
		if err == nil || !builtins.NeedsUnknown(err) {
			return v, err
		}
		from := name + "(…)"
		if len(args) > 0 {
			from = name + " on " + builtins.TargetText(args[0])
		}
		u := &builtins.Unknown{From: from}
		if pl != nil {
			pl.unknowns++
			u.Tested = pl.tested
		}
		return u, nil
	})
}

const stepKey = "kumo.planstep" // set while a planned step runs

// collapse folds the commands and copies a step planned (from start on)
// into one line that says what the recipe asked, with its arguments:
// `users.add(n, "s01", groups = ["students"]) on hub-1: 2 commands`
// rather than each script's first line. Other effects stay as they are.
func (pl *planner) collapse(start int, name string, args starlark.Tuple, kwargs []starlark.Tuple) {
	effects := pl.cell.Effects[start:]
	var kept []PlannedCall
	var folded *PlannedCall
	n := 0
	for _, e := range effects {
		if e.Kind != builtins.EffectCommand && e.Kind != builtins.EffectCopy {
			kept = append(kept, e)
			continue
		}
		n++
		if folded == nil {
			desc := pl.masker.Mask(builtins.ShowCall(name, nil, args, kwargs))
			folded = &PlannedCall{Line: e.Line, Call: desc, Effect: builtins.Effect{Kind: builtins.EffectCommand, Target: e.Target}}
			kept = append(kept, *folded)
			folded = &kept[len(kept)-1]
		}
	}
	if folded != nil {
		folded.What = folded.Call
		if folded.Target != "" && (len(args) == 0 || builtins.TargetText(args[0]) != folded.Target) {
			folded.What += " on " + folded.Target
		}
		if n > 1 {
			folded.What += fmt.Sprintf(": %d commands", n)
		}
	}
	pl.cell.Effects = append(pl.cell.Effects[:start], kept...)
}

// tested notes that the cell branches on a value only a live call gives.
func (pl *planner) tested(*builtins.Unknown) { pl.cell.Guess = true }

// caller is the recipe line the call comes from (a call made inside a
// module is planned at the recipe's line that called into it) and, for
// such a call, the module function the recipe called: "pkg.install".
func (pl *planner) caller(thread *starlark.Thread) (line int, via string) {
	for i := 1; i < thread.CallStackDepth(); i++ {
		pos := thread.CallFrame(i).Pos
		if pos.Filename() != pl.file {
			continue
		}
		if step := starkit.StepName(thread); step != "" {
			via, _, _ = strings.Cut(step, " › ") // the step the recipe called
		} else if i > 1 {
			callee := thread.CallFrame(i - 1)
			module := strings.TrimSuffix(path.Base(callee.Pos.Filename()), ".star")
			// Modules export their functions in a struct: pkg.install is _install.
			via = module + "." + strings.TrimPrefix(callee.Name, "_")
		}
		return int(pos.Line), via
	}
	return 0, ""
}
