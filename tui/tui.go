// Package tui is kumo's notebook in a terminal (kumo tui): a bubbletea
// program whose root model (model.go) holds a notebook of cells
// (notebook.go) and a status bar (status.go), and whose controller
// (controller.go) plans, runs, stops, edits and reloads off the event
// loop, each as a tea.Cmd.
package tui

import (
	"context"
	"errors"
	"fmt"
	"io"

	tea "charm.land/bubbletea/v2"

	"github.com/kumo-dev/kumo/runner"
	"github.com/kumo-dev/kumo/session"
)

// Config is what the TUI shows and works on.
type Config struct {
	In   io.Reader
	Out  io.Writer
	File string // the recipe
	// Params and Defaults are the command line's, for reading the recipe
	// again after an edit.
	Params   []string
	Defaults bool
	Run      *session.Run // open and locked by the caller
	// ProgramOptions are added to the bubbletea program (tests size it).
	ProgramOptions []tea.ProgramOption
}

// A Result is the last run the user made in the TUI.
type Result struct {
	Summary *runner.Summary
	Err     error
	Stopped bool // ended at the cell the user ran up to, as asked
}

// errStopped ends a run at the cell the user ran up to.
var errStopped = errors.New("stopped: the cells after the one asked for were not run")

// Run shows the TUI until the user quits: the last run made, nil if none.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	records, err := cfg.Run.Store.Cells(cfg.Run.Name)
	if err != nil {
		return nil, err
	}
	ctl := &tuiController{opts: &cfg, run: cfg.Run, ctx: ctx}
	model := newTUIModel(tuiConfig{
		title:  fmt.Sprintf("kumo · %s · run %q", cfg.File, cfg.Run.Name),
		recipe: cfg.Run.Recipe, records: records, ctl: ctl,
	})
	p := tea.NewProgram(model, append([]tea.ProgramOption{tea.WithInput(cfg.In), tea.WithOutput(cfg.Out), tea.WithContext(ctx)}, cfg.ProgramOptions...)...)
	ctl.program = p
	final, err := p.Run()
	ctl.stopAndWait()
	if err != nil && !errors.Is(err, tea.ErrProgramKilled) {
		return nil, err
	}
	m, _ := final.(tuiModel)
	if m.lastRun == nil {
		return nil, nil
	}
	return &Result{Summary: m.lastRun.sum, Err: m.lastRun.err, Stopped: m.lastRun.stopped}, nil
}
