package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/runner"
	"github.com/kumo-dev/kumo/session"
	"github.com/kumo-dev/kumo/state"
)

// RunOptions are the inputs of `kumo run`.
type RunOptions struct {
	IO
	recipeFlags
	Store   func() (*state.Store, error)
	File    string
	From    string
	Only    string
	JSON    bool
	Quiet   bool
	Verbose bool
	Export  string
	// Verify checks the nodes first (kumo check) and runs the cells
	// whose work drifted again.
	Verify bool
	// Again marks a run that repeats the one before it in this process
	// (a tick of kumo watch): where the parameters came from is not said
	// again.
	Again bool
}

func newCmdRun(f *factory, runF func(*RunOptions) error) *cobra.Command {
	opts := &RunOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a recipe: only what changed runs, the rest is replayed",
		Long: `Run a recipe's cells in order. A cell that succeeded before is replayed
(its recorded results stand in for its side effects) when its source is
unchanged and every value it reads (globals of earlier cells, parameters,
loaded modules, the flavor catalog) is the same as when it ran. Any other
cell runs live, and the output says why. Calls that make nodes find what
they made before, so running a cell again never makes a node twice.

A run remembers its -p values: a plain re-run uses them again (and says
so), -p changes one, --defaults goes back to the recipe's defaults.

The state lives beside the recipe, in .kumo/state.db (--state to choose).

Exit status: 0 when every cell succeeded, 1 when a cell failed, 2 for a
mistake in the recipe, a parameter or the command line.`,
		Example: `  kumo run recipes/hello.star
  kumo run tljh.star -p students=40 -p flavor=medium
  kumo run tljh.star                           # again: the same parameters
  kumo run tljh.star --defaults                # back to the recipe's values
  kumo run tljh.star --from "Install TLJH"     # force live from that cell
  kumo run tljh.star --only 3 --json
  kumo run tljh.star --verify                  # repair what was changed by hand`,
		Args:              argsUsage(cobra.ExactArgs(1)),
		ValidArgsFunction: completeRecipeFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			opts.Store = f.locator().StoreFor(opts.File)
			if runF != nil {
				return runF(opts)
			}
			return runRun(cmd.Context(), opts)
		},
	}
	opts.recipeFlags.register(cmd, true)
	cmd.Flags().StringVar(&opts.From, "from", "", "run live from this cell (number or title) on")
	cmd.Flags().StringVar(&opts.Only, "only", "", "run only this cell live (earlier cells are replayed)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON object per cell on stdout")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "do not print what replayed cells printed when they ran")
	cmd.Flags().BoolVarP(&opts.Verbose, "verbose", "v", false, "say how builtins work as they go (which file transfer each node got)")
	cmd.Flags().BoolVar(&opts.Verify, "verify", false, "first check that the nodes are as the recipe left them (as kumo check does), and run the cells whose work drifted again")
	cmd.Flags().StringVar(&opts.Export, "export", "", "write the run's record to this file as it goes (.ipynb, .md or .html; see kumo export)")
	registerCellCompletion(cmd, "from", "only")
	registerRunCompletion(cmd, f)
	return cmd
}

// recipeFlags are the flags of the commands that run or plan a recipe.
type recipeFlags struct {
	Params   []string
	Defaults bool
	Name     string
}

// open prepares the run of the recipe file with these flags and opens
// it: the recipe and -p values checked, the state open, the run locked.
func (f recipeFlags) open(file string, store func() (*state.Store, error)) (*session.Run, error) {
	prep, err := session.Prepare(file, f.Name, f.Params)
	if err != nil {
		return nil, err
	}
	return session.Open(prep, store, f.Defaults)
}

// register adds them to cmd; remembered: the command's -p values are
// remembered by the run (run, tui), not only used (plan).
func (f *recipeFlags) register(cmd *cobra.Command, remembered bool) {
	param := "set a parameter: name=value (repeatable; remembered by the run)"
	if !remembered {
		param = "set a parameter: name=value (repeatable; as kumo run would use it)"
	}
	cmd.Flags().StringArrayVarP(&f.Params, "param", "p", nil, param)
	cmd.Flags().BoolVar(&f.Defaults, "defaults", false, "forget the run's remembered -p values and use the recipe's defaults")
	cmd.Flags().StringVar(&f.Name, "name", "", "run name (default: the recipe's file name without .star)")
	registerParamCompletion(cmd)
}

func runRun(ctx context.Context, opts *RunOptions) error {
	err := runRecipe(ctx, opts)
	if err != nil && opts.JSON {
		if _, silent := err.(*silentError); !silent {
			// A mistake found before any cell ran is one JSON object too.
			b, _ := json.Marshal(map[string]any{"error": lang.FormatError(err), "exit_code": exitCode(err)})
			fmt.Fprintln(opts.Out, string(b))
		}
	}
	return err
}

func runRecipe(ctx context.Context, opts *RunOptions) error {
	if opts.From != "" && opts.Only != "" {
		return usageError{error: fmt.Errorf("--from and --only exclude each other")}
	}
	if opts.Export != "" {
		if err := checkExportFile(opts.Export); err != nil {
			return err
		}
	}
	run, err := opts.recipeFlags.open(opts.File, opts.Store)
	if err != nil {
		return err
	}
	defer run.Close()
	run.Held.Env.Verbose = opts.Verbose
	ctx, stop := interruptible(ctx)
	defer stop()
	printer := newCellPrinter(opts.IO, opts.JSON, opts.Quiet, run.Held.Env.Secrets)
	defer printer.close()
	printer.header(run.Name, opts.File, run.Store.Path)
	if run.HadRun && run.Prev.Recipe != "" {
		if abs, _ := filepath.Abs(opts.File); abs != run.Prev.Recipe {
			printer.say("note: run %q was last run from %s; it continues with %s (give --name to keep them apart)", run.Name, run.Prev.Recipe, abs)
		}
	}
	if !opts.Again {
		for _, note := range run.Params.Notes() {
			printer.say("%s", note)
		}
	}
	ro := run.RunnerOptions()
	if opts.Verify {
		printer.say("checking that the nodes are as the recipe left them")
		report, err := checkNodes(ctx, run, &checkEvents{p: printer})
		if err != nil {
			return err
		}
		sayCheck(printer, report, "those cells run again")
		ro.Drifted = report.Reasons()
	}
	ro.From, ro.Only, ro.Events = opts.From, opts.Only, printer
	var export *liveExport
	if opts.Export != "" {
		export = &liveExport{runnerEvents: printer, store: run.Store, recipe: run.Recipe, run: run.Name,
			file: opts.Export, format: formatOf(opts.Export)}
		ro.Events = export
	}
	r := runner.New(ro)
	sum, err := r.Run(ctx)
	if export != nil {
		export.write() // the run's end: its status and finish time
	}
	if sum == nil || sum.Failed == nil {
		if err != nil {
			return err // before any cell: a usage or input error, reported by main
		}
		printer.footer(sum, ctx.Err())
		return nil
	}
	printer.footer(sum, ctx.Err())
	if ctx.Err() != nil {
		printer.say("interrupted in %s. Run the same command again to resume.", sum.Failed.Name())
	}
	code := exitFailed
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		code = exitInterrupted
	case starkit.IsInputError(err):
		code = exitBadInput
	}
	return &silentError{code: code, err: err}
}
