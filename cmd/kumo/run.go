package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins/all"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/builtins/units"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/runner"
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
  kumo run tljh.star --only 3 --json`,
		Args:              argsUsage(cobra.ExactArgs(1)),
		ValidArgsFunction: completeRecipeFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			opts.Store = f.storeFor(opts.File)
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
func (f recipeFlags) open(file string, store func() (*state.Store, error)) (*openedRun, error) {
	prep, err := prepareRun(file, f.Name, f.Params)
	if err != nil {
		return nil, err
	}
	return openRun(prep, store, f.Defaults)
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
	run.held.Env.Verbose = opts.Verbose
	ctx, stop := interruptible(ctx)
	defer stop()
	printer := newCellPrinter(opts.IO, opts.JSON, opts.Quiet, run.held.Env.Secrets)
	defer printer.close()
	printer.header(run.name, opts.File, run.store.Path)
	if run.hadRun && run.prev.Recipe != "" {
		if abs, _ := filepath.Abs(opts.File); abs != run.prev.Recipe {
			printer.say("note: run %q was last run from %s; it continues with %s (give --name to keep them apart)", run.name, run.prev.Recipe, abs)
		}
	}
	if !opts.Again {
		run.params.report(printer)
	}
	ro := run.runnerOptions()
	ro.From, ro.Only, ro.Events = opts.From, opts.Only, printer
	var export *liveExport
	if opts.Export != "" {
		export = &liveExport{runnerEvents: printer, store: run.store, recipe: run.recipe, run: run.name,
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

// preparedRun is what run and tui check before touching the state.
type preparedRun struct {
	name     string
	recipe   *lang.Recipe
	given    map[string]string // -p values given now
	globals  starlark.StringDict
	defaults starlark.StringDict // the parameters cell's values; nil if it cannot run alone
}

// prepareRun names the run and reads and checks the recipe and its -p
// values, so that mistakes exit 2 before anything is locked or run.
func prepareRun(file, name string, params []string) (*preparedRun, error) {
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	if err := validRunName(name); err != nil {
		return nil, err
	}
	given, err := lang.ParseOverrides(params)
	if err != nil {
		return nil, err
	}
	globals := all.Globals()
	recipe, err := lang.ReadRecipe(file, globals.Has)
	if err != nil {
		return nil, err
	}
	if err := recipe.CheckOverrides(given); err != nil {
		return nil, err
	}
	p := &preparedRun{name: name, recipe: recipe, given: given, globals: globals}
	if d, ok := recipe.Defaults(globals); ok {
		p.defaults = d
	}
	for n, raw := range given {
		if _, err := lang.Override(n, raw, p.defaults[n]); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// openedRun is a prepared run with its state open, its lock held and its
// parameters worked out: what run and tui start from.
type openedRun struct {
	*preparedRun
	store  *state.Store
	held   *heldRun
	prev   state.Run // the run as last recorded
	hadRun bool
	params *runParams
}

// openRun opens the state, takes the run's lock and lays the -p values
// over the remembered ones (none with defaults), refusing a change of
// provider: all before anything runs.
func openRun(prep *preparedRun, open func() (*state.Store, error), defaults bool) (_ *openedRun, err error) {
	o := &openedRun{preparedRun: prep}
	if o.store, err = open(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			o.Close()
		}
	}()
	if o.held, err = holdRun(o.store, prep.name); err != nil {
		return nil, err
	}
	if o.prev, o.hadRun, err = o.store.GetRun(prep.name); err != nil {
		return nil, err
	}
	if o.params, err = prep.resolveParams(o.prev, o.hadRun, defaults); err != nil {
		return nil, err
	}
	if err := checkProviders(o.store, prep.name, o.prev, o.params.values, o.held.Env.ProviderNames()); err != nil {
		return nil, err
	}
	return o, nil
}

// Close releases the run and the state.
func (o *openedRun) Close() {
	if o.held != nil {
		o.held.Release()
	}
	o.store.Close()
}

// runnerOptions are the runner's options for the opened run; the caller
// adds its events and --from/--only.
func (o *openedRun) runnerOptions() runner.Options {
	return runner.Options{Recipe: o.recipe, Run: o.name, Overrides: o.params.values, Remember: o.params.raw,
		Builtins: o.globals, Env: o.held.Env, World: units.Engine(o.held.Env).Missing}
}

// runParams are the parameters a run uses: the -p values it remembers
// from its last execution with those given now laid over them.
type runParams struct {
	values     map[string]starlark.Value
	raw        map[string]string // what the run remembers
	remembered []string          // name=value taken from the last run
	forgotten  []string          // remembered names the recipe no longer has
	dropped    bool              // --defaults dropped remembered values
}

// resolveParams lays the -p values given now over those prev remembers
// (none with --defaults) and reads each against its default.
func (p *preparedRun) resolveParams(prev state.Run, had, defaults bool) (*runParams, error) {
	rp := &runParams{values: map[string]starlark.Value{}, raw: map[string]string{}}
	if had && !defaults {
		for n, raw := range prev.Overrides {
			if _, given := p.given[n]; given {
				continue
			}
			if !p.recipe.HasParam(n) {
				rp.forgotten = append(rp.forgotten, n)
				continue
			}
			rp.raw[n] = raw
			rp.remembered = append(rp.remembered, n+"="+raw)
		}
	}
	rp.dropped = had && defaults && len(prev.Overrides) > 0
	for n, raw := range p.given {
		rp.raw[n] = raw
	}
	for n, raw := range rp.raw {
		v, err := lang.Override(n, raw, p.defaults[n])
		if err != nil {
			return nil, err
		}
		rp.values[n] = v
	}
	sort.Strings(rp.remembered)
	sort.Strings(rp.forgotten)
	return rp, nil
}

// report says where the parameters came from.
func (rp *runParams) report(p *cellPrinter) {
	if len(rp.remembered) > 0 {
		p.say("parameters from the last run: %s (-p to change one, --defaults to drop them)", strings.Join(rp.remembered, " "))
	}
	if len(rp.forgotten) > 0 {
		p.say("the recipe no longer has the parameters %s; their remembered values are dropped", strings.Join(rp.forgotten, ", "))
	}
	if rp.dropped {
		p.say("back to the recipe's defaults (--defaults)")
	}
}

// checkProviders refuses, before anything runs, a parameter change that
// would move a run's units to another provider: a recipe whose provider
// comes from a parameter would build a second set of nodes beside the
// first. Its sign: a parameter whose last value named a provider the
// run's units live on now names another provider.
func checkProviders(store *state.Store, run string, prev state.Run, values map[string]starlark.Value, known []string) error {
	unitRows, err := store.Resources(state.Query{Run: run, Kind: state.KindUnit})
	if err != nil || len(unitRows) == 0 {
		return err
	}
	on := map[string][]string{}
	for _, u := range unitRows {
		on[u.Provider] = append(on[u.Provider], u.Group+"/"+u.Name)
	}
	var last map[string]any
	json.Unmarshal([]byte(prev.Params), &last)
	isProvider := func(s string) bool {
		for _, k := range known {
			if k == s {
				return true
			}
		}
		return false
	}
	for name, v := range values {
		now, ok := starlark.AsString(v)
		was, _ := last[name].(string)
		if !ok || now == was || !isProvider(now) || on[now] != nil || on[was] == nil {
			continue
		}
		return starkit.Inputf("run %q has its units on %s (%s); -p %s=%s would build new ones on %s beside them.\n"+
			"Give --name for a separate run on %s, or remove this run's units first (kumo destroy --name %s)",
			run, was, strings.Join(on[was], ", "), name, now, now, now, run)
	}
	return nil
}
