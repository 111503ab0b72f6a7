package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/lang"
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
	Totals planTotals        `json:"totals"`
	Params map[string]string `json:"parameters,omitempty"`
}

// planTotals adds up the nodes a plan makes and deletes.
type planTotals struct {
	Create    map[string]int `json:"create"` // "provider/flavor" -> nodes
	Delete    int            `json:"delete"`
	PriceHour float64        `json:"price_hour"` // of the nodes made, where known
	Unpriced  []string       `json:"unpriced,omitempty"`
	Commands  int            `json:"commands"`
	// Open: some cells' effects are known only when they run.
	Open bool `json:"incomplete"`
}

func totalsOf(p *runner.Plan) planTotals {
	t := planTotals{Create: map[string]int{}}
	unpriced := map[string]bool{}
	for _, c := range p.Cells {
		if c.Open != "" || c.Action == runner.PlanMaybe {
			t.Open = true
		}
		for _, e := range c.Effects {
			switch e.Kind {
			case builtins.EffectCreate:
				if e.Nodes == 0 {
					continue
				}
				key := e.Provider + "/" + e.Flavor
				t.Create[key] += e.Nodes
				if e.PriceHour > 0 {
					t.PriceHour += e.PriceHour * float64(e.Nodes)
				} else if !unpriced[key] {
					unpriced[key] = true
					t.Unpriced = append(t.Unpriced, key)
				}
			case builtins.EffectDelete:
				t.Delete += e.Nodes
			case builtins.EffectCommand:
				t.Commands++
			}
		}
	}
	sort.Strings(t.Unpriced)
	return t
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
		b, _ := json.MarshalIndent(planJSON{Run: run.Name, Recipe: opts.File, Cells: plan.Cells, Totals: totalsOf(plan), Params: run.Params.Raw}, "", "  ")
		fmt.Fprintln(opts.Out, string(b))
		return nil
	}
	fmt.Fprintf(opts.Out, "plan for run %q of %s (nothing was touched)\n", run.Name, opts.File)
	writePlan(opts.Out, run.Recipe.Cells, plan, styleFor(opts.Out))
	return nil
}

// writePlan prints a plan for a reader; the TUI shows the same text.
func writePlan(w io.Writer, cells []*lang.Cell, plan *runner.Plan, st termStyle) {
	for _, c := range plan.Cells {
		label := cellLabel(cells[c.Index])
		switch c.Action {
		case runner.PlanReplay:
			fmt.Fprintln(w, st.dim("  ↺ "+label+"  replays"))
		case runner.PlanSkip:
			why := ""
			if c.Reason != "" {
				why = ": " + c.Reason
			}
			fmt.Fprintln(w, st.dim("  · "+label+"  skipped"+why))
		case runner.PlanFail:
			fmt.Fprintln(w, st.red("  ✘ "+label+"  would fail"))
			fmt.Fprintln(w, st.red(indentLines(c.Error, "      ")))
		default:
			mark := "▶"
			if c.Action == runner.PlanMaybe {
				mark = "?"
			}
			fmt.Fprintf(w, "  %s %s  %s: %s\n", st.paint("1", mark), label, c.Action, c.Reason)
			for _, e := range c.Effects {
				line := fmt.Sprintf("      line %-4d %s", e.Line, e.What)
				if e.Kind == builtins.EffectCreate && e.PriceHour > 0 && e.Nodes > 0 {
					line += fmt.Sprintf("  ($%.4f/h)", e.PriceHour*float64(e.Nodes))
				}
				if e.Kind == builtins.EffectCreate || e.Kind == builtins.EffectDelete {
					line = st.paint("1", line)
				}
				fmt.Fprintln(w, line)
			}
			if c.Guess {
				fmt.Fprintln(w, st.dim("      (it branches on a value known only when it runs: the calls above may differ)"))
			}
			if c.Open != "" {
				fmt.Fprintln(w, st.dim("      … the rest is known when it runs: "+c.Open))
			}
		}
	}
	t := totalsOf(plan)
	var parts []string
	var keys []string
	for k := range t.Create {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d × %s", t.Create[k], k))
	}
	made := "no nodes made"
	if len(parts) > 0 {
		made = "nodes made: " + strings.Join(parts, ", ")
	}
	fmt.Fprintf(w, "%s; %d deleted; %s", made, t.Delete, countOf(t.Commands, "command"))
	if t.PriceHour > 0 {
		fmt.Fprintf(w, "; $%.4f/h on demand", t.PriceHour)
	}
	if len(t.Unpriced) > 0 {
		fmt.Fprintf(w, " (no price for %s)", strings.Join(t.Unpriced, ", "))
	}
	fmt.Fprintln(w)
	if t.Open {
		fmt.Fprintln(w, st.dim("some effects are known only when the cells run (above): the totals count what is known"))
	}
	if planHasUnknowns(plan) {
		fmt.Fprintln(w, st.dim("‹nodes (line 12)› and the like: a value a call gives when its cell runs (the nodes it reads, their addresses)"))
	}
}

// planHasUnknowns reports whether an effect names a value not known yet.
func planHasUnknowns(plan *runner.Plan) bool {
	for _, c := range plan.Cells {
		for _, e := range c.Effects {
			if strings.Contains(e.What, "‹") {
				return true
			}
		}
	}
	return false
}
