package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/all"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/lang/runner"
	"github.com/kumo-dev/kumo/lang/state"
)

// RunOptions are the inputs of `kumo run`.
type RunOptions struct {
	IO
	Store  func() (*state.Store, error)
	File   string
	Params []string
	Name   string
	From   string
	Only   string
	JSON   bool
}

func newCmdRun(f *factory, runF func(*RunOptions) error) *cobra.Command {
	opts := &RunOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a recipe, replaying the cells that already succeeded",
		Long: `Run a recipe's cells in order. Cells that succeeded before and have not
changed (nor have the parameters they use) are replayed from the state
without side effects; the first new, edited, failed or parameter-affected
cell and every cell after it run live.

Exit status: 0 when every cell succeeded, 1 when a cell failed, 2 for a
mistake in the recipe, a parameter or the command line.`,
		Example: `  kumo run recipes/hello.star
  kumo run tljh.star -p students=40 -p flavor=medium
  kumo run tljh.star --from "Install TLJH"     # force live from that cell
  kumo run tljh.star --only 3 --json`,
		Args: argsUsage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			opts.Store = f.openStore
			if runF != nil {
				return runF(opts)
			}
			return runRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringArrayVarP(&opts.Params, "param", "p", nil, "override a parameter: name=value (repeatable)")
	cmd.Flags().StringVar(&opts.Name, "name", "", "run name (default: the recipe's file name without .star)")
	cmd.Flags().StringVar(&opts.From, "from", "", "run live from this cell (number or title) on")
	cmd.Flags().StringVar(&opts.Only, "only", "", "run only this cell live (earlier cells are replayed)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON object per cell on stdout")
	return cmd
}

func runRun(ctx context.Context, opts *RunOptions) error {
	if opts.From != "" && opts.Only != "" {
		return usageError{fmt.Errorf("--from and --only exclude each other")}
	}
	prep, err := prepareRun(opts.File, opts.Name, opts.Params)
	if err != nil {
		return err
	}
	name, recipe, overrides, globals := prep.name, prep.recipe, prep.overrides, prep.globals
	store, err := opts.Store()
	if err != nil {
		return err
	}
	defer store.Close()
	held, err := holdRun(store, name)
	if err != nil {
		return err
	}
	defer held.Release()
	if prev, ok, _ := store.GetRun(name); ok && prev.Recipe != "" {
		if abs, _ := filepath.Abs(opts.File); abs != prev.Recipe {
			fmt.Fprintf(opts.Err, "kumo: note: run %q was last run from %s; it continues with %s (give --name to keep them apart)\n", name, prev.Recipe, abs)
		}
	}
	env := held.Env
	ctx, stop := interruptible(ctx)
	defer stop()
	printer := newCellPrinter(opts.IO, opts.JSON, env.Secrets)
	printer.header(name, opts.File, store.Path)
	r := runner.New(runner.Options{
		Recipe: recipe, Run: name, Overrides: overrides, From: opts.From, Only: opts.Only,
		Builtins: globals, Env: env, Events: printer,
	})
	sum, err := r.Run(ctx)
	if sum == nil || sum.Failed == nil {
		if err != nil {
			return err // before any cell: a usage or input error, reported by main
		}
		printer.footer(sum, ctx.Err())
		return nil
	}
	printer.footer(sum, ctx.Err())
	if ctx.Err() != nil {
		fmt.Fprintf(opts.Err, "kumo: interrupted in %s. Run the same command again to resume.\n", sum.Failed.Name())
	}
	code := exitFailed
	if lang.IsInputError(err) {
		code = exitBadInput
	}
	return &silentError{code: code, err: err}
}

// preparedRun is what run and tui check before touching the state.
type preparedRun struct {
	name      string
	recipe    *lang.Recipe
	overrides map[string]string
	globals   starlark.StringDict
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
	overrides, err := lang.ParseOverrides(params)
	if err != nil {
		return nil, err
	}
	globals := all.Globals()
	recipe, err := lang.ReadRecipe(file, globals.Has)
	if err != nil {
		return nil, err
	}
	if err := recipe.CheckOverrides(overrides); err != nil {
		return nil, err
	}
	return &preparedRun{name: name, recipe: recipe, overrides: overrides, globals: globals}, nil
}

// cellPrinter shows a run cell by cell: text for people, or one JSON
// object per cell (--json) with node output on stderr.
type cellPrinter struct {
	IO
	json bool
	mask *builtins.Masker // errors can quote output; output can hold secrets
	mu   sync.Mutex
	// pending is a live cell whose "▶" line waits for its first output:
	// a cell that prints nothing shows as one line.
	pending *lang.Cell
}

func newCellPrinter(stdio IO, asJSON bool, mask *builtins.Masker) *cellPrinter {
	return &cellPrinter{IO: stdio, json: asJSON, mask: mask}
}

// text is where human-readable lines go.
func (p *cellPrinter) text() io.Writer {
	if p.json {
		return p.Err
	}
	return p.Out
}

func (p *cellPrinter) header(run, file, statePath string) {
	fmt.Fprintf(p.text(), "kumo: run %q of %s (state %s)\n", run, file, statePath)
}

func cellLabel(c *lang.Cell) string {
	if c.Title == "" && c.Kind != "" {
		return fmt.Sprintf("[%d] [%s]", c.Index, c.Kind)
	}
	if c.Title == "" {
		return fmt.Sprintf("[%d]", c.Index)
	}
	return fmt.Sprintf("[%d] %s", c.Index, c.Title)
}

func (p *cellPrinter) CellStarted(c *lang.Cell, replay bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !replay {
		p.pending = c
	}
}

func (p *cellPrinter) Output(c *lang.Cell, source, stream, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending != nil {
		fmt.Fprintf(p.text(), "▶ %s\n", cellLabel(p.pending))
		p.pending = nil
	}
	switch {
	case stream == "note":
		fmt.Fprintf(p.text(), "  · %s\n", text)
	case source == "":
		fmt.Fprintf(p.text(), "  %s\n", text)
	default:
		fmt.Fprintf(p.text(), "  %s | %s\n", source, text)
	}
}

func (p *cellPrinter) CellFinished(c *lang.Cell, r runner.CellResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = nil
	if p.json {
		line := struct {
			Index      int     `json:"index"`
			Title      string  `json:"title"`
			Status     string  `json:"status"`
			DurationMS int64   `json:"duration_ms"`
			Error      *string `json:"error"` // null unless the cell failed
		}{c.Index, c.Title, r.Status, r.Duration.Milliseconds(), nil}
		if r.Err != nil {
			msg := p.mask.Mask(lang.FormatError(r.Err))
			line.Error = &msg
		}
		b, _ := json.Marshal(line)
		fmt.Fprintln(p.Out, string(b))
	}
	w := p.text()
	switch r.Status {
	case runner.Replayed:
		fmt.Fprintf(w, "↺ %s (replayed)\n", cellLabel(c))
	case runner.Ran:
		fmt.Fprintf(w, "✔ %s (%s)\n", cellLabel(c), round(r.Duration))
	case runner.Skipped:
		fmt.Fprintf(w, "· %s (skipped)\n", cellLabel(c))
	case runner.Failed:
		fmt.Fprintf(w, "✘ %s failed after %s\n", cellLabel(c), round(r.Duration))
		fmt.Fprintf(p.Err, "%s\n", indentLines(p.mask.Mask(lang.FormatError(r.Err)), "    "))
	}
}

func (p *cellPrinter) footer(sum *runner.Summary, ctxErr error) {
	if sum == nil {
		return
	}
	counts := map[string]int{}
	for _, r := range sum.Cells {
		counts[r.Status]++
	}
	var parts []string
	for _, s := range []string{runner.Ran, runner.Replayed, runner.Failed, runner.Skipped} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	fmt.Fprintf(p.text(), "kumo: %s\n", strings.Join(parts, ", "))
	if sum.Failed != nil && ctxErr == nil {
		fmt.Fprintf(p.Err, "kumo: %s failed. Fix the cause and run the same command again: finished cells are replayed and the run resumes at this cell.\n", sum.Failed.Name())
	}
}

func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Millisecond)
}

func indentLines(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
