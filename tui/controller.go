package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/runner"
	"github.com/kumo-dev/kumo/session"
	"github.com/kumo-dev/kumo/state"
)

// actionKind is what the user asked to run.
type actionKind string

const (
	actionAll  actionKind = "run all"         // every cell, replaying what is done
	actionTo   actionKind = "run to here"     // cells up to and including one (a section's last)
	actionFrom actionKind = "run live from"   // kumo run --from
	actionOnly actionKind = "run only (live)" // kumo run --only
)

// runAction is one run the user asked for.
type runAction struct {
	kind actionKind
	cell int // the selected cell (actionTo: the last cell to run)
}

// tuiController does the TUI's work off the event loop: plans, runs,
// stops, the editor and reloads, each as a tea.Cmd. The model never
// calls it except to get those commands.
type tuiController struct {
	opts    *Config
	run     *session.Run
	ctx     context.Context
	program *tea.Program

	busy   sync.Mutex // one plan, run or reload at a time: they share the run's interpreter and state
	mu     sync.Mutex
	read   time.Time          // the recipe file's modification time when last read
	cancel context.CancelFunc // of the run under way
	closed bool               // the TUI has closed: run nothing more
}

// options are the runner's options for action a.
func (c *tuiController) options(a runAction) runner.Options {
	ro := c.run.RunnerOptions()
	cell := strconv.Itoa(a.cell)
	switch a.kind {
	case actionFrom:
		ro.From = cell
	case actionOnly:
		ro.Only = cell
	case actionTo:
		ro.Step = func(_ context.Context, c *lang.Cell, _ string) error {
			if c.Index > a.cell {
				return errStopped
			}
			return nil
		}
	}
	return ro
}

// Messages from the controller's commands.
type (
	planMsg struct {
		action runAction
		plan   *runner.Plan
		err    error
	}
	runDoneMsg struct {
		action runAction
		sum    *runner.Summary
		err    error
		// stopped: the user stopped it (s, q) rather than a cell failing.
		stopped bool
	}
	editedMsg struct{ err error }
	// fileChangedMsg: the recipe file changed on disk since it was read
	// (edited in another window): read it again.
	fileChangedMsg struct{}
	recipeMsg      struct {
		recipe  *lang.Recipe
		records []state.CellRecord
		err     error
	}
)

// planCmd works out what action a would do.
func (c *tuiController) planCmd(a runAction) tea.Cmd {
	return func() tea.Msg {
		c.busy.Lock()
		defer c.busy.Unlock()
		plan, err := runner.New(c.options(a)).Plan(c.ctx)
		return planMsg{action: a, plan: plan, err: err}
	}
}

// runCmd runs action a; the runner's events reach the model as messages.
func (c *tuiController) runCmd(a runAction) tea.Cmd {
	return func() tea.Msg {
		c.busy.Lock()
		defer c.busy.Unlock()
		ctx, cancel := context.WithCancel(c.ctx)
		c.mu.Lock()
		closed := c.closed
		c.cancel = cancel
		c.mu.Unlock()
		if closed {
			cancel()
			return nil
		}
		defer func() {
			c.mu.Lock()
			c.cancel = nil
			c.mu.Unlock()
			cancel()
		}()
		ro := c.options(a)
		ro.Events = tuiBridge{c.program}
		sum, err := runner.New(ro).Run(ctx)
		if errors.Is(err, errStopped) {
			err = nil
		}
		return runDoneMsg{action: a, sum: sum, err: err, stopped: ctx.Err() != nil}
	}
}

// stopCmd interrupts the run under way, as Ctrl-C does in kumo run: the
// running cell's builtins stop cleanly and the state says where.
func (c *tuiController) stopCmd() tea.Cmd {
	return func() tea.Msg {
		c.mu.Lock()
		if c.cancel != nil {
			c.cancel()
		}
		c.mu.Unlock()
		return nil
	}
}

// stopAndWait ends a run still under way when the TUI closes.
func (c *tuiController) stopAndWait() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.stopCmd()()
	c.busy.Lock() // the run, if any, has ended and recorded where it stopped
	c.busy.Unlock()
}

// editCmd opens the recipe in the user's editor at line; the TUI gives
// the terminal to it until it exits.
func (c *tuiController) editCmd(line int) tea.Cmd {
	editor := os.Getenv("VISUAL")
	if editor == "" {
		editor = os.Getenv("EDITOR")
	}
	if editor == "" {
		editor = "vi"
	}
	file, done := c.opts.File, func() error { return nil }
	if lang.IsNotebook(file) {
		// A notebook is edited as the recipe text it reads as, and
		// written back keeping the outputs of the cells left alone.
		var err error
		if file, done, err = editableNotebook(c.opts.File); err != nil {
			return func() tea.Msg { return editedMsg{err} }
		}
	}
	args := strings.Fields(editor)
	args = append(args, "+"+strconv.Itoa(line), file)
	cmd := exec.Command(args[0], args[1:]...)
	return tea.ExecProcess(cmd, func(err error) tea.Msg {
		if err != nil {
			err = fmt.Errorf("the editor failed: %v (it is $EDITOR: %s)", errors.Unwrap(err), editor)
		}
		if derr := done(); err == nil {
			err = derr
		}
		return editedMsg{err}
	})
}

// editableNotebook writes a notebook's recipe text to a file beside it
// for the editor; done writes the notebook back from it, if it changed,
// and removes it.
func editableNotebook(path string) (string, func() error, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	text, err := lang.PercentFromNotebook(data)
	if err != nil {
		return "", nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+strings.TrimSuffix(filepath.Base(path), ".ipynb")+".*.star")
	if err != nil {
		return "", nil, err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", nil, err
	}
	f.Close()
	done := func() error {
		defer os.Remove(f.Name())
		edited, err := os.ReadFile(f.Name())
		if err != nil || string(edited) == text {
			return err
		}
		out, err := lang.UpdateNotebook(data, string(edited))
		if err != nil {
			return fmt.Errorf("the edited notebook could not be written back (%v); your text is kept in %s", err, keepEdit(f.Name()))
		}
		tmp := path + ".kumo-tmp"
		if err := os.WriteFile(tmp, out, 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	}
	return f.Name(), done, nil
}

// keepEdit keeps an edit that could not be written back, under a name
// of its own.
func keepEdit(tmp string) string {
	kept := strings.TrimPrefix(filepath.Base(tmp), ".")
	kept = filepath.Join(filepath.Dir(tmp), "edited-"+kept)
	if err := os.Link(tmp, kept); err != nil {
		return tmp
	}
	return kept
}

// watchCmd looks at the recipe file once a second, off the event loop,
// and says when it changed since the TUI read it.
func (c *tuiController) watchCmd() tea.Cmd {
	return tea.Tick(time.Second, func(time.Time) tea.Msg {
		st, err := os.Stat(c.opts.File)
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil || c.read.IsZero() || st.ModTime().Equal(c.read) {
			if err == nil && c.read.IsZero() {
				c.read = st.ModTime()
			}
			return watchedMsg{}
		}
		c.read = st.ModTime()
		return fileChangedMsg{}
	})
}

// forgetRead makes the next look report the file changed again.
func (c *tuiController) forgetRead() {
	c.mu.Lock()
	c.read = time.Unix(0, 1)
	c.mu.Unlock()
}

// watchedMsg re-arms the watch.
type watchedMsg struct{}

// reloadCmd reads the recipe again after an edit. A recipe that no
// longer parses leaves the old one in place, with the error shown.
func (c *tuiController) reloadCmd() tea.Cmd {
	return func() tea.Msg {
		c.busy.Lock()
		defer c.busy.Unlock()
		if st, err := os.Stat(c.opts.File); err == nil {
			c.mu.Lock()
			c.read = st.ModTime() // an edit in $EDITOR is not a change to report again
			c.mu.Unlock()
		}
		prep, err := session.Prepare(c.opts.File, c.run.Name, c.opts.Params)
		if err != nil {
			return recipeMsg{err: err}
		}
		params, err := prep.ResolveParams(c.run.Prev, c.run.HadRun, c.opts.Defaults)
		if err != nil {
			return recipeMsg{err: err}
		}
		c.run.Prepared, c.run.Params = prep, params
		records, err := c.run.Store.Cells(prep.Name)
		return recipeMsg{recipe: prep.Recipe, records: records, err: err}
	}
}

// tuiBridge turns runner events into the TUI's messages.
type tuiBridge struct{ p *tea.Program }

func (b tuiBridge) CellStarted(c *lang.Cell, s runner.CellStart) {
	b.p.Send(cellStartedMsg{c.Index, s.Replay, s.Reason})
}
func (b tuiBridge) Status(c *lang.Cell, text string) { b.p.Send(cellStatusMsg{c.Index, text}) }
func (b tuiBridge) Notice(text string)               { b.p.Send(noticeMsg{text}) }
func (b tuiBridge) Output(c *lang.Cell, source, stream, text string) {
	b.p.Send(cellOutputMsg{c.Index, state.OutputLine{Source: source, Stream: state.Stream(stream), Text: text}})
}
func (b tuiBridge) CellFinished(c *lang.Cell, r runner.CellResult) {
	b.p.Send(cellFinishedMsg{c.Index, r})
}
