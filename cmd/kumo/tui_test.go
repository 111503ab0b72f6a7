package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"

	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/lang/runner"
	"github.com/kumo-dev/kumo/lang/state"
)

// syncBuffer is the TUI's screen, read while the program writes it: a
// virtual terminal replays what the program writes (Bubble Tea draws by
// changing cells, so the bytes alone seldom hold a whole line), and every
// screen it showed is kept.
type syncBuffer struct {
	mu      sync.Mutex
	emu     *vt.Emulator
	history strings.Builder
}

func newScreen() *syncBuffer {
	s := &syncBuffer{emu: vt.NewEmulator(100, 30)}
	go io.Copy(io.Discard, s.emu) // the terminal's answers to queries
	return s
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.emu.Write(p)
	s.history.WriteString(s.emu.String() + "\n")
	return n, err
}

// String is every screen shown so far.
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.history.String()
}

// waitShows waits up to 10 s for what s shows to contain want.
func waitShows(t *testing.T, s fmt.Stringer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(s.String(), want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never showed %q; it shows:\n%q", want, s.String())
}

// TestTUIStepsThroughCells drives `kumo tui` with keystrokes: it waits
// before each live cell, runs one on n, and stops on q; the state then
// holds exactly the cells that ran, and a second session resumes there.
func TestTUIStepsThroughCells(t *testing.T) {
	dir := t.TempDir()
	recipe := filepath.Join(dir, "steps.star")
	os.WriteFile(recipe, []byte("# %% First\nprint(\"first ran\")\n# %% Second\nprint(\"second ran\")\n# %% Third\nprint(\"third ran\")\n"), 0o644)
	statePath := filepath.Join(dir, "state.db")
	session := func(keys func(in io.Writer, screen *syncBuffer)) (string, error) {
		in, keysIn := io.Pipe()
		screen := newScreen()
		var out bytes.Buffer
		opts := &TUIOptions{IO: IO{In: in, Out: screen, Err: &out}, File: recipe,
			Store: func() (*state.Store, error) { return state.Open(statePath) },
			// A pipe has no size: give the renderer one, as a terminal would.
			ProgramOptions: []tea.ProgramOption{tea.WithoutSignalHandler(), tea.WithWindowSize(100, 30)}}
		errc := make(chan error, 1)
		go func() { errc <- tuiRun(context.Background(), opts) }()
		keys(keysIn, screen)
		select {
		case err := <-errc:
			keysIn.Close()
			return screen.String(), err
		case <-time.After(20 * time.Second):
			t.Fatalf("the TUI did not end; screen:\n%s", screen.String())
		}
		return "", nil
	}

	_, err := session(func(in io.Writer, screen *syncBuffer) {
		waitShows(t, screen, "next: [0] First")
		io.WriteString(in, "n")
		waitShows(t, screen, "first ran")
		waitShows(t, screen, "next: [1] Second")
		io.WriteString(in, "q") // stop before Second
		waitShows(t, screen, "stopped")
		io.WriteString(in, "q")
	})
	if err != nil {
		t.Fatalf("first session: %v", err)
	}
	s, _ := state.Open(statePath)
	cells, _ := s.Cells("steps")
	run, _, _ := s.GetRun("steps")
	s.Close()
	if cells[0].Status != "ok" || cells[0].Output.String() != "first ran\n" {
		t.Errorf("cell 0 = %+v", cells[0])
	}
	if len(cells) != 1 {
		t.Errorf("cell 1 ran after q: %+v", cells)
	}
	if run.Status != "stopped" {
		t.Errorf("run status = %q, want stopped", run.Status)
	}

	// A second session replays First without asking and runs the rest on c.
	screen, err := session(func(in io.Writer, screen *syncBuffer) {
		waitShows(t, screen, "next: [1] Second")
		io.WriteString(in, "c")
		waitShows(t, screen, "done: 2 ran, 1 replayed")
		io.WriteString(in, "q")
	})
	if err != nil {
		t.Fatalf("second session: %v", err)
	}
	if strings.Contains(screen, "next: [0]") {
		t.Error("the TUI asked before a cell it could replay")
	}
	s, _ = state.Open(statePath)
	defer s.Close()
	cells, _ = s.Cells("steps")
	for i := 0; i < 3; i++ {
		if cells[i].Status != "ok" {
			t.Errorf("cell %d = %+v", i, cells[i])
		}
	}
}

func TestTUIModelShowsStatusesAndErrors(t *testing.T) {
	cells := lang.SplitCells("# %% Good\nx = 1\n# %% Bad\nfail(\"boom\")\n# %% Later\ny = 2\n")
	answers := make(chan stepAnswer, 1)
	var m tea.Model = newTUIModel("kumo · t", cells, answers, func() {})
	m, _ = m.Update(tea.WindowSizeMsg{Width: 100, Height: 20})
	m, _ = m.Update(cellFinishedMsg{0, runner.CellResult{Status: runner.Ran, Duration: 1500 * time.Millisecond}})
	// A replayed cell shows what it printed when it ran.
	m, _ = m.Update(cellFinishedMsg{2, runner.CellResult{Status: runner.Replayed, Output: state.Output{{Source: "node-1", Stream: state.StreamStdout, Text: "done before"}}}})
	m, _ = m.Update(tea.KeyPressMsg{Code: tea.KeyDown})
	m, _ = m.Update(tea.KeyPressMsg{Code: tea.KeyDown})
	if v := ansi.Strip(m.View().Content); !strings.Contains(v, "node-1 | done before") || !strings.Contains(v, "↺ [2] Later") {
		t.Errorf("a replayed cell's recorded output is not shown:\n%s", v)
	}
	m, _ = m.Update(waitingMsg{1, "new"})
	view := ansi.Strip(m.View().Content)
	if !strings.Contains(view, "✔ [0] Good 1.5s") || !strings.Contains(view, "▶ [1] Bad") || !strings.Contains(view, "next: [1] Bad (new)") {
		t.Fatalf("view:\n%s", view)
	}
	m, _ = m.Update(tea.KeyPressMsg{Code: 'n', Text: "n"})
	if a := <-answers; !bool(a) {
		t.Error("n did not answer run")
	}
	m, _ = m.Update(cellStartedMsg{idx: 1})
	m, _ = m.Update(cellOutputMsg{1, "node-1 | working"})
	m, _ = m.Update(cellFinishedMsg{1, runner.CellResult{Status: runner.Failed, Err: lang.Inputf("bad.star:4:5: boom")}})
	m, _ = m.Update(runDoneMsg{lang.Inputf("bad.star:4:5: boom")})
	view = ansi.Strip(m.View().Content)
	for _, want := range []string{"✘ [1] Bad", "node-1 | working", "bad.star:4:5: boom", "stopped: bad.star:4:5: boom"} {
		if !strings.Contains(view, want) {
			t.Errorf("view lacks %q:\n%s", want, view)
		}
	}
	// Looking at another cell shows its code.
	m, _ = m.Update(tea.KeyPressMsg{Code: tea.KeyDown})
	if !strings.Contains(ansi.Strip(m.View().Content), "y = 2") {
		t.Errorf("selecting Later does not show its code:\n%s", m.View().Content)
	}
	if _, cmd := m.Update(tea.KeyPressMsg{Code: 'q', Text: "q"}); cmd == nil {
		t.Error("q after the run did not quit")
	}
}
