package main

import (
	"context"
	"errors"
	"fmt"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/lang/runner"
	"github.com/kumo-dev/kumo/lang/state"
)

// TUIOptions are the inputs of `kumo tui`.
type TUIOptions struct {
	IO
	Store       func() (*state.Store, error)
	File        string
	Params      []string
	Defaults    bool
	Name        string
	Interactive bool
	// ProgramOptions are added to the bubbletea program (tests size it).
	ProgramOptions []tea.ProgramOption
}

func newCmdTUI(f *factory, runF func(*TUIOptions) error) *cobra.Command {
	opts := &TUIOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "tui FILE",
		Short: "Step through a recipe cell by cell, like a notebook",
		Long: `Show a recipe as a notebook: its cells with their status on the left,
the selected cell's code and output on the right. Cells that succeeded
before are replayed at once; before each cell that would run live, kumo
waits: n (or enter) runs it, c runs the rest, q stops there. The state is
the same as kumo run's, so a run stopped in the TUI resumes anywhere.`,
		Example: `  kumo tui lab.star
  kumo tui lab.star -p students=40`,
		Args:              argsUsage(cobra.ExactArgs(1)),
		ValidArgsFunction: completeRecipeFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			opts.Store = f.storeFor(opts.File)
			opts.Interactive = isTerminal(f.In) && isTerminal(f.Out)
			if runF != nil {
				return runF(opts)
			}
			return tuiRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringArrayVarP(&opts.Params, "param", "p", nil, "set a parameter: name=value (repeatable; remembered by the run)")
	cmd.Flags().BoolVar(&opts.Defaults, "defaults", false, "forget the run's remembered -p values and use the recipe's defaults")
	cmd.Flags().StringVar(&opts.Name, "name", "", "run name (default: the recipe's file name without .star)")
	return cmd
}

// errStopped ends a run the user stopped in the TUI.
var errStopped = errors.New("stopped in the TUI before this cell; run again to go on")

func tuiRun(ctx context.Context, opts *TUIOptions) error {
	if !opts.Interactive && opts.ProgramOptions == nil {
		return usageError{error: errors.New("kumo tui needs a terminal; kumo run does the same without one")}
	}
	prep, err := prepareRun(opts.File, opts.Name, opts.Params)
	if err != nil {
		return err
	}
	run, err := openRun(prep, opts.Store, opts.Defaults)
	if err != nil {
		return err
	}
	defer run.Close()
	ctx, stop := interruptible(ctx)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Buffered: Update answers without ever waiting for the runner.
	answers := make(chan stepAnswer, 1)
	model := newTUIModel(fmt.Sprintf("kumo · %s · run %q", opts.File, prep.name), prep.recipe.Cells, answers, cancel)
	p := tea.NewProgram(model, append([]tea.ProgramOption{tea.WithInput(opts.In), tea.WithOutput(opts.Out)}, opts.ProgramOptions...)...)
	ro := run.runnerOptions()
	ro.Events = tuiBridge{p}
	ro.Step = func(ctx context.Context, c *lang.Cell, reason string) error {
		p.Send(waitingMsg{c.Index, reason})
		select {
		case a := <-answers:
			if !a {
				return errStopped
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r := runner.New(ro)
	var sum *runner.Summary
	var runErr error
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		sum, runErr = r.Run(ctx)
		p.Send(runDoneMsg{runErr})
	}()
	if _, err := p.Run(); err != nil {
		cancel()
		<-finished
		return err
	}
	cancel() // the TUI is gone: stop whatever still runs
	<-finished
	// Leave the same summary kumo run prints.
	printer := newCellPrinter(opts.IO, false, true, run.held.Env.Secrets)
	defer printer.close()
	printer.footer(sum, ctx.Err())
	if sum != nil && sum.Failed != nil {
		code := exitFailed
		if lang.IsInputError(runErr) {
			code = exitBadInput
		}
		return &silentError{code: code, err: runErr}
	}
	if runErr != nil {
		return runErr
	}
	return nil
}

// tuiBridge turns runner events into the TUI's messages.
type tuiBridge struct{ p *tea.Program }

func (b tuiBridge) CellStarted(c *lang.Cell, s runner.CellStart) {
	b.p.Send(cellStartedMsg{c.Index, s.Reason})
}
func (b tuiBridge) Status(c *lang.Cell, text string) { b.p.Send(cellStatusMsg{c.Index, text}) }
func (b tuiBridge) Notice(text string)               { b.p.Send(noticeMsg{text}) }
func (b tuiBridge) Output(c *lang.Cell, source, stream, text string) {
	line := text
	if source != "" {
		line = source + " | " + text
	}
	b.p.Send(cellOutputMsg{c.Index, line})
}
func (b tuiBridge) CellFinished(c *lang.Cell, r runner.CellResult) {
	b.p.Send(cellFinishedMsg{c.Index, r})
}
