package runner

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/lang"
)

// Drift checking (kumo check, kumo run --verify). A check pass replays
// the recipe as recorded, touching nothing, except that each replayed
// call that can look (a builtins.Def with Check: ssh_run of a checkable
// command, as the stdlib's steps are) asks its nodes, in check mode,
// what is no longer as it made it. Nothing is written: not the nodes,
// not the journal, not the run's record.

// StreamDrift is the Events.Output stream of a drift found as a check
// pass goes: source is the node, text what differs there.
const StreamDrift = "drift"

// StreamChecked is the Events.Output stream of each call a check pass
// looked with: text is the call.
const StreamChecked = "checked"

// CellDrift is a drift found by a call of a cell.
type CellDrift struct {
	Cell *lang.Cell
	Call string // the call as the journal shows it (secrets masked)
	builtins.Drift
}

// CheckReport is what a check pass found.
type CheckReport struct {
	Drift []CellDrift
	// Calls is how many calls looked, Cells in how many cells.
	Calls, Cells int
	// Stopped says where the check ended before the recipe's end: the
	// first cell that would run live (edited, new, failed...), whose
	// calls have no record to check against; "" when it got to the end.
	Stopped string
}

// Drifted reports whether something differs (unchecked nodes aside).
func (c *CheckReport) Drifted() bool {
	for _, d := range c.Drift {
		if !d.Unchecked {
			return true
		}
	}
	return false
}

// Reasons are, per cell, why it runs again: where its work drifted
// ("drifted on web-1, web-2: 3 differences"), for kumo run --verify.
func (c *CheckReport) Reasons() map[int]string {
	nodes, counts := map[int]map[string]bool{}, map[int]int{}
	for _, d := range c.Drift {
		if d.Unchecked {
			continue
		}
		idx := d.Cell.Index
		if nodes[idx] == nil {
			nodes[idx] = map[string]bool{}
		}
		nodes[idx][d.Node] = true
		counts[idx]++
	}
	out := map[int]string{}
	for idx, set := range nodes {
		names := slices.Sorted(maps.Keys(set))
		if len(names) > 3 {
			names = append(names[:3], fmt.Sprintf("%d more", len(set)-3))
		}
		what := "1 difference"
		if counts[idx] > 1 {
			what = fmt.Sprintf("%d differences", counts[idx])
		}
		out[idx] = "drifted on " + strings.Join(names, ", ") + ": " + what
	}
	return out
}

// Check replays the recipe and checks what its replayed calls set up.
// It stops before the first cell that would run live. The caller holds
// the run's lock, so no run changes the nodes meanwhile.
func (r *Runner) Check(ctx context.Context) (*CheckReport, error) {
	r.opts.ReplayOnly = true
	r.check = &CheckReport{}
	_, err := r.Run(ctx)
	return r.check, err
}

// checkCall runs a replayed call in check mode, if its builtin can.
func (r *Runner) checkCall(thread *starlark.Thread, def *builtins.Def, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple, desc string) {
	if def.Check == nil {
		return
	}
	c := r.journal.cell
	drift, checked, err := def.Check(thread, b, args, kwargs)
	if err != nil {
		drift = append(drift, builtins.Drift{What: "not checked: " + err.Error(), Unchecked: true})
		checked = true
	}
	if !checked {
		return
	}
	r.check.Calls++
	r.events.output(c, "", StreamChecked, desc)
	if r.checkedCell != c {
		r.checkedCell = c
		r.check.Cells++
	}
	for _, d := range drift {
		d.What = r.opts.Env.Secrets.Mask(d.What)
		r.check.Drift = append(r.check.Drift, CellDrift{Cell: c, Call: desc, Drift: d})
		r.events.output(c, d.Node, StreamDrift, d.What)
	}
}
