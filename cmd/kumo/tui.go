package main

import (
	"context"
	"errors"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/internal/render"
	"github.com/kumo-dev/kumo/state"
	"github.com/kumo-dev/kumo/tui"
)

// TUIOptions are the inputs of `kumo tui`.
type TUIOptions struct {
	IO
	recipeFlags
	Store       func() (*state.Store, error)
	File        string
	Interactive bool
	// ProgramOptions are added to the bubbletea program (tests size it).
	ProgramOptions []tea.ProgramOption
}

func newCmdTUI(f *factory, runF func(*TUIOptions) error) *cobra.Command {
	opts := &TUIOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "tui FILE",
		Short: "Open a recipe as a notebook: run, re-run and edit its cells",
		Long: `Show a recipe as a notebook: prose cells as Markdown, code cells with
their recorded output (each node's lines, the error of a failed cell), the
status of every cell and what changed since it ran.

Run all (a), run up to the selected cell (enter; on a heading, its
section), run live from it (f) or only it (l), stop (s); edit the recipe
at the selected cell in $EDITOR (e), and the notebook picks the edit up
when the editor closes. Before anything runs live, the TUI shows the
plan (kumo plan) and waits for y. ? lists every key.

The state is the same as kumo run's: what the TUI ran replays in
kumo run, and the other way round.`,
		Example: `  kumo tui lab.star
  kumo tui lab.star -p students=40
  EDITOR="code -w" kumo tui lab.star`,
		Args:              argsUsage(cobra.ExactArgs(1)),
		ValidArgsFunction: completeRecipeFiles,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			opts.Store = f.locator().StoreFor(opts.File)
			opts.Interactive = render.IsTerminal(f.In) && render.IsTerminal(f.Out)
			if runF != nil {
				return runF(opts)
			}
			return tuiRun(cmd.Context(), opts)
		},
	}
	opts.recipeFlags.register(cmd, true)
	return cmd
}

func tuiRun(ctx context.Context, opts *TUIOptions) error {
	if !opts.Interactive && opts.ProgramOptions == nil {
		return usageError{error: errors.New("kumo tui needs a terminal; kumo run does the same without one")}
	}
	run, err := opts.recipeFlags.open(opts.File, opts.Store)
	if err != nil {
		return err
	}
	defer run.Close()
	// Ctrl-C reaches the TUI as a key; SIGTERM ends whatever runs.
	ctx, stop := interruptible(ctx)
	defer stop()
	last, err := tui.Run(ctx, tui.Config{In: opts.In, Out: opts.Out, File: opts.File, Params: opts.Params, Defaults: opts.Defaults,
		Run: run, ProgramOptions: opts.ProgramOptions})
	if err != nil || last == nil {
		return err
	}
	// Leave the same summary kumo run prints, for the last run made.
	printer := newCellPrinter(opts.IO, false, true, run.Held.Env.Secrets)
	defer printer.close()
	printer.footer(last.Summary, nil)
	if sum := last.Summary; sum != nil && sum.Failed != nil && !last.Stopped {
		code := exitFailed
		if starkit.IsInputError(last.Err) {
			code = exitBadInput
		}
		return &silentError{code: code, err: last.Err}
	}
	return nil
}
