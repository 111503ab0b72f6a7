package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/internal/render"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/runner"
	"github.com/kumo-dev/kumo/session"
	"github.com/kumo-dev/kumo/state"
)

// exitDrift is kumo check's status when something drifted: monitoring
// tells it from a failure to check (1) and from bad input (2).
const exitDrift = 3

// CheckOptions are the inputs of `kumo check`.
type CheckOptions struct {
	IO
	recipeFlags
	Store func() (*state.Store, error)
	File  string
	JSON  bool
}

func newCmdCheck(f *factory, runF func(*CheckOptions) error) *cobra.Command {
	opts := &CheckOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "check FILE",
		Short: "Check that the nodes are still as the recipe left them, changing nothing",
		Long: `Replay the recipe as its last run recorded it and, for every step that
can look without changing anything, ask its nodes whether what it set up
is still so: a configuration file edited by hand, a package removed, a
service stopped, an account changed. The stdlib's files, pkg, systemd
and users steps can look, and so can ssh_run(..., checkable=True).
Nothing is changed, on the nodes or in the state; the run is locked
meanwhile, so no run changes the nodes under the check.

kumo run FILE --verify checks the same way, then runs the cells that
drifted again, which repairs what they set up.

The check stops before the first cell that would run live (edited, new,
failed last time): that cell has no record to check against, so run the
recipe first.

Exit status: 0 when nothing drifted, 3 when something did, 1 when a node
could not be checked (or the check failed), 2 for a mistake in the
recipe, a parameter or the command line.`,
		Example: `  kumo check lab.star
  kumo check lab.star --json | jq '.drift[] | .node + ": " + .what'
  kumo run lab.star --verify          # check, and run again what drifted`,
		Args:              argsUsage(cobra.ExactArgs(1)),
		ValidArgsFunction: completeRecipeFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			opts.Store = f.locator().StoreFor(opts.File)
			if runF != nil {
				return runF(opts)
			}
			return checkRun(cmd.Context(), opts)
		},
	}
	opts.recipeFlags.register(cmd, false)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the report as one JSON object")
	return cmd
}

// checkJSON is kumo check --json.
type checkJSON struct {
	Run     string          `json:"run"`
	Recipe  string          `json:"recipe"`
	Checks  int             `json:"checks"` // calls that looked
	Cells   int             `json:"cells"`  // cells they are in
	Drift   []checkDriftRow `json:"drift"`
	Stopped string          `json:"stopped,omitempty"`
}

type checkDriftRow struct {
	Cell      int    `json:"cell"`
	Title     string `json:"title"`
	Node      string `json:"node"`
	What      string `json:"what"`
	Unchecked bool   `json:"unchecked,omitempty"`
}

func checkRun(ctx context.Context, opts *CheckOptions) error {
	run, err := opts.recipeFlags.open(opts.File, opts.Store)
	if err != nil {
		return err
	}
	defer run.Close()
	ctx, stop := interruptible(ctx)
	defer stop()
	printer := newCellPrinter(opts.IO, false, true, run.Held.Env.Secrets)
	defer printer.close()
	var events runner.Events
	if !opts.JSON {
		printer.say("checking run %q of %s against its nodes (nothing is changed)", run.Name, opts.File)
		events = &checkEvents{p: printer}
	}
	report, err := checkNodes(ctx, run, events)
	if err != nil {
		return err
	}
	if opts.JSON {
		out := checkJSON{Run: run.Name, Recipe: opts.File, Checks: report.Calls, Cells: report.Cells, Drift: []checkDriftRow{}, Stopped: report.Stopped}
		for _, d := range report.Drift {
			out.Drift = append(out.Drift, checkDriftRow{Cell: d.Cell.Index, Title: d.Cell.Title, Node: d.Node, What: d.What, Unchecked: d.Unchecked})
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(opts.Out, string(b))
	} else {
		sayCheck(printer, report, "kumo run "+opts.File+" --verify runs the drifted cells again, which repairs what they set up")
	}
	switch {
	case report.Drifted():
		return &silentError{code: exitDrift, err: fmt.Errorf("drift")}
	case len(report.Drift) > 0:
		return &silentError{code: exitFailed, err: fmt.Errorf("some nodes could not be checked")}
	}
	return nil
}

// checkNodes runs a check pass of run (kumo check, run --verify), shown
// through events if not nil.
func checkNodes(ctx context.Context, run *session.Run, events runner.Events) (*runner.CheckReport, error) {
	ro := run.RunnerOptions()
	ro.Events = events
	report, err := runner.New(ro).Check(ctx)
	if errors.Is(ctx.Err(), context.Canceled) {
		return nil, interruptedError{fmt.Errorf("checking run %q: interrupted; nothing was changed", run.Name)}
	}
	return report, err
}

// sayCheck sums a check up: what drifted where, what could not be
// checked, where the check stopped; repair says how to repair drift.
func sayCheck(p *cellPrinter, report *runner.CheckReport, repair string) {
	if report.Stopped != "" {
		p.say("not checked from there on: %s; kumo run brings it up to date", report.Stopped)
	}
	drifted, unchecked := map[string]bool{}, map[string]bool{}
	var cells []string
	seen := map[int]bool{}
	for _, d := range report.Drift {
		if d.Unchecked && d.Node == "" { // the call itself could not look
			p.say("in %s, %s could not look: %s", d.Cell.Name(), d.Call, d.What)
			continue
		}
		if d.Unchecked {
			unchecked[d.Node] = true
			continue
		}
		drifted[d.Node] = true
		if !seen[d.Cell.Index] {
			seen[d.Cell.Index] = true
			cells = append(cells, d.Cell.Name())
		}
	}
	if len(unchecked) > 0 {
		p.say("%s could not be checked: %s", render.CountOf(len(unchecked), "node"), strings.Join(slices.Sorted(maps.Keys(unchecked)), ", "))
	}
	if report.Calls == 0 && report.Stopped == "" {
		p.say("nothing to check: no step of this recipe can look without changing anything (the stdlib's files, pkg, systemd and users steps can, and ssh_run(..., checkable=True))")
		return
	}
	if len(drifted) == 0 {
		p.say("no drift: %s in %s, every node as the recipe left it", render.CountOf(report.Calls, "check"), render.CountOf(report.Cells, "cell"))
		return
	}
	p.say("drift on %s (%s) in %s; %s", render.CountOf(len(drifted), "node"), strings.Join(slices.Sorted(maps.Keys(drifted)), ", "), strings.Join(cells, ", "), repair)
}

// checkEvents shows a check pass as it goes: per cell, what it checked
// and each drift on its node.
type checkEvents struct {
	p              *cellPrinter
	checks, drifts int // of the current cell
}

func (e *checkEvents) CellStarted(c *lang.Cell, s runner.CellStart) {
	e.checks, e.drifts = 0, 0
	e.p.setStatus("checking " + render.CellLabel(c))
}

func (e *checkEvents) Output(c *lang.Cell, source, stream, text string) {
	switch stream {
	case runner.StreamChecked:
		e.checks++
	case runner.StreamDrift:
		e.drifts++
		e.p.mu.Lock()
		e.p.println(e.p.text(), "  "+source+" | "+e.p.style.Red(text))
		e.p.mu.Unlock()
	}
}

func (e *checkEvents) Status(c *lang.Cell, text string) { e.p.setStatus(text) }
func (e *checkEvents) Notice(text string)               { e.p.say("%s", text) }

func (e *checkEvents) CellFinished(c *lang.Cell, r runner.CellResult) {
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = ""
	p.wipe()
	w := p.text()
	switch {
	case r.Status != runner.Replayed:
		return // where the check stopped: said at the end
	case e.drifts > 0:
		p.println(w, p.style.Red("✘")+fmt.Sprintf(" %s: %s found", render.CellLabel(c), render.CountOf(e.drifts, "difference")))
	case e.checks == 0:
		p.println(w, p.style.Dim(fmt.Sprintf("· %s (nothing to check)", render.CellLabel(c))))
	default:
		p.println(w, p.style.Green("✔")+fmt.Sprintf(" %s (%s: as recorded)", render.CellLabel(c), render.CountOf(e.checks, "check")))
	}
}
