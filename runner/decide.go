package runner

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/state"
)

// An Action is what a pass does with a cell.
type Action string

const (
	ActSkip   Action = "skip"       // not run this pass
	ActParams Action = "parameters" // the parameters cell: always evaluated (it is pure)
	ActReplay Action = "replay"     // its code runs, its builtins answered from the journal
	ActLive   Action = "live"       // its code runs and touches the world
)

// A Decision is what a pass does with one cell, and why.
type Decision struct {
	Action Action
	Reason string // why it is skipped or runs live
	// Notice is said before the cell: --only replays, as recorded, a
	// cell before it that would otherwise run live.
	Notice string
}

// A mode is what the user asked of a pass (-1: not given).
type mode struct {
	from, only int
	ancestors  map[int]bool // with --only: the cells it depends on
}

// A turn is what is known of a cell when a pass reaches it.
type turn struct {
	cell     *lang.Cell
	record   *state.CellRecord // nil: never ran
	isParams bool
	ended    bool   // an earlier cell failed, or the user stopped stepping
	again    string // why it runs live though nothing it reads changed: what it made vanished, what it set up drifted
	// inputs digests what it reads now (see pass.inputs), worked out
	// when first asked and kept (sync.OnceValue): decide asks only when
	// nothing else decides, a driver for the cells that run.
	inputs func() map[string]string
}

// fixed is inputs already worked out.
func fixed(in map[string]string) func() map[string]string {
	return func() map[string]string { return in }
}

// An explainer words the inputs that changed ("students changed",
// "cell 3 ran, which changed web").
type explainer interface {
	describe(keys []string) string
	worldReason(recorded, now string) string
}

// decide is the runner's one decision: skip, replay or live, and why. It
// reads only its arguments; run, plan and replay-only passes all drive
// their cells through it.
func decide(m mode, t turn, ex explainer) (Decision, error) {
	c := t.cell
	switch {
	case t.ended, m.only >= 0 && c.Index > m.only:
		return Decision{Action: ActSkip}, nil
	case m.only >= 0 && c.Index < m.only && !m.ancestors[c.Index] && !t.isParams:
		return Decision{Action: ActSkip, Reason: "--only does not need it"}, nil
	case c.Manual && m.only != c.Index && m.from != c.Index:
		return Decision{Action: ActSkip, Reason: "[manual]: runs when named with --only or --from"}, nil
	case t.isParams:
		return Decision{Action: ActParams}, nil
	}
	reason := liveReason(m, t, ex)
	if reason == "" {
		return Decision{Action: ActReplay}, nil
	}
	if m.only >= 0 && c.Index < m.only {
		// --only asks for one cell: the ones before it replay as they
		// were recorded, provided they succeeded as they are written.
		if !replayable(t) {
			return Decision{}, starkit.Inputf("--only %d: %s must run live first (%s); run the recipe without --only", m.only, c.Name(), reason)
		}
		return Decision{Action: ActReplay, Notice: fmt.Sprintf("%s would run live (%s); --only replays it as recorded", c.Name(), reason)}, nil
	}
	return Decision{Action: ActLive, Reason: reason}, nil
}

// liveReason says why a cell not skipped runs live, "" when it replays.
func liveReason(m mode, t turn, ex explainer) string {
	if reason, decided := fixedReason(m, t); decided {
		return reason
	}
	return changedInputs(t.record, t.inputs(), ex)
}

// replayable reports whether the cell succeeded last time as it is
// written now.
func replayable(t turn) bool {
	rec := t.record
	return rec != nil && rec.Status == state.CellOK && rec.SourceHash == t.cell.Hash() && t.again == ""
}

// fixedReason is why a cell runs live for what does not depend on its
// inputs: decided is false when only the inputs can tell.
func fixedReason(m mode, t turn) (reason string, decided bool) {
	c, rec := t.cell, t.record
	switch {
	case m.from >= 0 && c.Index >= m.from:
		return "--from", true
	case m.only == c.Index:
		return "--only", true
	case t.again != "":
		return t.again, true
	case c.Always:
		return "[always]", true
	case rec == nil:
		return "new", true
	case rec.Status == state.CellRunning:
		return "interrupted last time", true
	case rec.Status != state.CellOK:
		return "failed last time", true
	case rec.SourceHash != c.Hash():
		return "edited", true
	case rec.Inputs == nil:
		return "", true // recorded by an older kumo: trust the source
	}
	return "", false
}

// changedInputs says which of a cell's inputs changed since it last
// succeeded ("" if none).
func changedInputs(rec *state.CellRecord, inputs map[string]string, ex explainer) string {
	var changed []string
	for k, v := range inputs {
		if rec.Inputs[k] != v && k != worldKey {
			changed = append(changed, k)
		}
	}
	for k := range rec.Inputs {
		if _, ok := inputs[k]; !ok && k != worldKey {
			changed = append(changed, k)
		}
	}
	var reasons []string
	if len(changed) > 0 {
		reasons = append(reasons, ex.describe(changed))
	}
	if inputs[worldKey] != rec.Inputs[worldKey] {
		reasons = append(reasons, ex.worldReason(rec.Inputs[worldKey], inputs[worldKey]))
	}
	return strings.Join(reasons, "; ")
}

// describe renders changed inputs: "students changed", "module lib.star
// changed", "cell 3 "Write config" ran".
func (p *pass) describe(keys []string) string {
	sort.Strings(keys)
	var names, ran []string
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, "load:"):
			names = append(names, "module "+strings.TrimPrefix(k, "load:"))
		case strings.HasPrefix(k, "file:"):
			names = append(names, "file "+strings.TrimPrefix(k, "file:"))
		case strings.HasPrefix(k, "after:"):
			idx, _ := strconv.Atoi(strings.TrimPrefix(k, "after:"))
			if idx < len(p.r.opts.Recipe.Cells) {
				ran = append(ran, p.r.opts.Recipe.Cells[idx].Name())
			}
		default:
			names = append(names, k)
		}
	}
	var parts []string
	if len(names) > 0 {
		parts = append(parts, strings.Join(names, ", ")+" changed")
	}
	if len(ran) > 0 {
		parts = append(parts, strings.Join(ran, ", ")+" ran")
	}
	return strings.Join(parts, "; ")
}
