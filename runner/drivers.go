package runner

import (
	"context"
	"fmt"

	"github.com/kumo-dev/kumo/lang"
)

// A driver does what a kind of pass does with a cell that decide() did
// not skip, once the world check has had its say: run it (kumo run, the
// TUI), plan it (kumo plan), or replay up to the first that would run
// live (a replay-only pass: the REPL and the kernel catching up).
type driver interface {
	// cell handles the turn of t's cell, reason "" when it replays;
	// done ends the pass with err.
	cell(ctx context.Context, p *pass, sum *Summary, t turn, reason string, inputs map[string]string) (done bool, err error)
	// endsAtFailure: a failed cell ends the pass at once, rather than the
	// cells after it being reported skipped.
	endsAtFailure() bool
}

// driverFor is the driver of the runner's options.
func driverFor(o Options) driver {
	switch {
	case o.ReplayOnly:
		return replayDriver{}
	case o.Plan:
		return planDriver{}
	}
	return runDriver{}
}

// runDriver runs live cells (Step may stop before one) and replays the rest.
type runDriver struct{}

func (runDriver) endsAtFailure() bool { return false }

func (runDriver) cell(ctx context.Context, p *pass, sum *Summary, t turn, reason string, inputs map[string]string) (bool, error) {
	r, c := p.r, t.cell
	if reason != "" {
		r.events.flush()
		if step := r.opts.Step; step != nil {
			if err := step(ctx, c, reason); err != nil {
				p.stopped = true
				r.finish(sum, c, CellResult{Status: Skipped})
				return false, nil
			}
		}
	}
	p.execute(ctx, sum, c, inputs, reason)
	return false, nil
}

// planDriver plans live cells, and replays the rest unless a live cell
// before changes what they read of the world.
type planDriver struct{}

func (planDriver) endsAtFailure() bool { return false }

func (planDriver) cell(ctx context.Context, p *pass, sum *Summary, t turn, reason string, inputs map[string]string) (bool, error) {
	r, c := p.r, t.cell
	if reason != "" {
		// Inputs holding values only a live call gives make it a "may
		// run", unless it runs anyway (edited, new, ...).
		_, decided := fixedReason(p.mode, t)
		r.finish(sum, c, p.planCell(ctx, c, reason, !decided && len(p.digest.unknowns) > 0))
		return false, nil
	}
	// What a live cell before it will change in the world it reads
	// decides, when the run gets there, whether it replays.
	if why := p.changedByPlan(); why != "" {
		r.finish(sum, c, p.planCell(ctx, c, why, true))
		return false, nil
	}
	p.execute(ctx, sum, c, inputs, "")
	return false, nil
}

// replayDriver replays up to the first cell that would run live.
type replayDriver struct{}

func (replayDriver) endsAtFailure() bool { return true }

func (replayDriver) cell(ctx context.Context, p *pass, sum *Summary, t turn, reason string, inputs map[string]string) (bool, error) {
	if reason != "" {
		if p.r.check != nil {
			p.r.check.Stopped = fmt.Sprintf("%s would run live (%s): it has no record to check against", t.cell.Name(), reason)
		}
		return true, sum.err()
	}
	if res := p.execute(ctx, sum, t.cell, inputs, ""); res.Err != nil {
		return true, res.Err
	}
	return false, nil
}

// execute runs or replays c and records how it went.
func (p *pass) execute(ctx context.Context, sum *Summary, c *lang.Cell, inputs map[string]string, reason string) CellResult {
	res := p.exec(ctx, c, inputs, reason)
	p.r.finish(sum, c, res)
	if res.Status == Replayed {
		p.replayed[c.Index] = true
	}
	if res.Err != nil {
		sum.Failed = c
	}
	return res
}

// err is the error of the pass so far: its failed cell's.
func (s *Summary) err() error {
	if s.Failed != nil {
		return s.Cells[s.Failed.Index].Err
	}
	return nil
}
