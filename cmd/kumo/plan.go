package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/internal/render"
	"github.com/kumo-dev/kumo/runner"
	"github.com/kumo-dev/kumo/state"
)

// PlanOptions are the inputs of `kumo plan`.
type PlanOptions struct {
	IO
	recipeFlags
	Store func() (*state.Store, error)
	File  string
	JSON  bool
}

func newCmdPlan(f *factory, runF func(*PlanOptions) error) *cobra.Command {
	opts := &PlanOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show what a run would do, doing nothing",
		Long: `Show, before anything is touched, which cells a run would replay and
which would run live, and why (edited, a value it reads changed, a
parameter changed, never ran, a node it made vanished), and for each live
cell what it would do: nodes made or deleted per provider and flavor with
their hourly price where the catalog knows it, commands it would run,
files it would write.

Nothing is created, run or recorded: cells that would replay are
replayed from the journal, and live cells run with every call planned
instead of made. Where a cell needs a value only a live call gives (the
output of a command, the address of a node not yet made), the plan says
so and stops listing that cell there; a cell that reads such values
"may run": that is decided when the cell before it has run.`,
		Example: `  kumo plan lab.star
  kumo plan lab.star -p students=40
  kumo plan lab.star --json | jq '.cells[] | select(.action=="run")'`,
		Args:              argsUsage(cobra.ExactArgs(1)),
		ValidArgsFunction: completeRecipeFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			opts.Store = f.locator().StoreFor(opts.File)
			if runF != nil {
				return runF(opts)
			}
			return planRun(cmd.Context(), opts)
		},
	}
	opts.recipeFlags.register(cmd, false)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the plan as one JSON object")
	return cmd
}

// planJSON is kumo plan --json.
type planJSON struct {
	Run    string            `json:"run"`
	Recipe string            `json:"recipe"`
	Cells  []runner.CellPlan `json:"cells"`
	Totals render.Totals     `json:"totals"`
	Params map[string]string `json:"parameters,omitempty"`
}

func planRun(ctx context.Context, opts *PlanOptions) error {
	run, err := opts.recipeFlags.open(opts.File, opts.Store)
	if err != nil {
		return err
	}
	defer run.Close()
	ctx, stop := interruptible(ctx)
	defer stop()
	plan, err := runner.New(run.RunnerOptions()).Plan(ctx)
	if err != nil {
		return err
	}
	if opts.JSON {
		b, _ := json.MarshalIndent(planJSON{Run: run.Name, Recipe: opts.File, Cells: plan.Cells, Totals: render.TotalsOf(plan), Params: run.Params.Raw}, "", "  ")
		fmt.Fprintln(opts.Out, string(b))
		return nil
	}
	fmt.Fprintf(opts.Out, "plan for run %q of %s (nothing was touched)\n", run.Name, opts.File)
	render.WritePlan(opts.Out, run.Recipe.Cells, plan, render.StyleFor(opts.Out))
	return nil
}
