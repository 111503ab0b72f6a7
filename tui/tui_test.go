package tui

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/charmbracelet/x/vt"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/all"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/runner"
	"github.com/kumo-dev/kumo/state"
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

// notebookRecipe is a recipe with prose, sections and cells whose
// records say: ran with output from two nodes, failed, never ran.
const notebookRecipe = `# %% [markdown]
# # Class lab
# Nodes for a class, and a greeting.

# %% Parameters [parameters]
nodes = 2

# %% Make nodes
ug = unit_group("lab")
web = ug.create_unit("web", spec("local", "small"), nodes = nodes)

# %% Greet
ssh_run(web.nodes(), "echo hello from $KUMO_NODE")

# %% [markdown]
# ## Checks

# %% Count
print("two nodes")
`

// openNotebook is the TUI's model for notebookRecipe with recorded
// results, at a fixed time, with no runner behind it.
func openNotebook(t *testing.T) tuiModel {
	t.Helper()
	recipe, err := lang.ParseRecipe("lab.star", notebookRecipe, all.Globals().Has)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(idx int, st state.CellStatus, out state.Output, errText string) state.CellRecord {
		c := recipe.Cells[idx]
		return state.CellRecord{ID: int64(idx), Index: idx, Title: c.Title, SourceHash: c.Hash(), Status: st,
			Output: out, Error: errText, Duration: 1500 * time.Millisecond}
	}
	var lines state.Output
	for i := 1; i <= 30; i++ {
		node := fmt.Sprintf("web-%d", 1+i%2)
		lines = append(lines, state.OutputLine{Source: node, Stream: state.StreamStdout, Text: fmt.Sprintf("line %d from %s", i, node)})
	}
	records := []state.CellRecord{
		rec(1, state.CellOK, nil, ""),
		rec(2, state.CellOK, state.Output{{Stream: state.StreamNote, Text: "lab/web: 2 nodes running: web-1, web-2"}}, ""),
		rec(3, state.CellFailed, lines, "lab.star:13:8: ssh_run: failed on 2 of 2 targets:\n  web-1: exit code 3\n  web-2: exit code 3\n  Traceback (most recent call last):\n    lab.star:13:8: in <toplevel>"),
	}
	fixed := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	return newTUIModel(tuiConfig{title: `kumo · lab.star · run "lab"`, recipe: recipe, records: records, now: func() time.Time { return fixed }})
}

// shown is what the model shows, without colours: golden files stay
// readable, and the same on every terminal.
func shown(t *testing.T, m tea.Model) []byte {
	t.Helper()
	var b bytes.Buffer
	w := colorprofile.Writer{Forward: &b, Profile: colorprofile.NoTTY}
	if _, err := io.WriteString(&w, m.(tuiModel).render()); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// driveTUI runs the model in a test program at 80x24, types keys, waits
// until the screen shows want, and returns the final model.
func driveTUI(t *testing.T, m tuiModel, keys []tea.Msg, want string) tea.Model {
	t.Helper()
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	for _, k := range keys {
		tm.Send(k)
	}
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(want)) },
		teatest.WithDuration(5*time.Second))
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	return tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second))
}

func press(s string) tea.KeyPressMsg {
	switch s {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "space":
		return tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
	}
	r := []rune(s)[0]
	return tea.KeyPressMsg{Code: r, Text: s}
}

// The main screens, as golden files (go test -run TestTUIScreens -update
// writes them again after a deliberate change).
func TestTUIScreens(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []tea.Msg
		want string
	}{
		// The notebook as opened: prose rendered, recorded outputs, the
		// failed cell's whole error, and what never ran.
		{"notebook", nil, "Greet"},
		// n jumps to the failed cell and o shows all of its output.
		{"focus", []tea.Msg{press("n"), press("o")}, "one cell"},
		{"help", []tea.Msg{press("?")}, "esc or ? closes"},
		// A folded section shows its heading only.
		{"folded", []tea.Msg{press("G"), press("space")}, "folded"},
		// The plan shown before anything runs live.
		{"plan", []tea.Msg{planMsg{action: runAction{kind: actionAll}, plan: &runner.Plan{Cells: []runner.CellPlan{
			{Index: 1, Title: "Parameters", Action: runner.PlanReplay},
			{Index: 2, Title: "Make nodes", Action: runner.PlanRun, Reason: "nodes changed", Effects: []runner.PlannedCall{
				{Line: 10, Effect: builtins.Effect{Kind: builtins.EffectCreate, Provider: "aws", Flavor: "small", Nodes: 2, PriceHour: 0.0208, What: "unit lab/web has 2 nodes: add 2 × aws/small"}}}},
			{Index: 3, Title: "Greet", Action: runner.PlanRun, Reason: "failed last time"},
		}}}}, "would run live"},
		// The count is the runner's: cells that may run are told apart,
		// and none after the first that would fail, where the run stops.
		{"plan-maybe-fail", []tea.Msg{planMsg{action: runAction{kind: actionAll}, plan: &runner.Plan{Cells: []runner.CellPlan{
			{Index: 1, Title: "Parameters", Action: runner.PlanReplay},
			{Index: 2, Title: "Make nodes", Action: runner.PlanRun, Reason: "edited"},
			{Index: 3, Title: "Greet", Action: runner.PlanMaybe, Reason: "reads what Make nodes gives when it runs"},
			{Index: 4, Title: "Report", Action: runner.PlanFail, Error: "r.star:9:5: fail: no"},
			{Index: 5, Title: "After", Action: runner.PlanRun, Reason: "new"},
		}}}}, "cell 4 would fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			final := driveTUI(t, openNotebook(t), tc.keys, tc.want)
			golden.RequireEqual(t, shown(t, final))
		})
	}
}

// Runner events stream into the notebook: a live cell's lines under
// it, its status, then a failure in full and the status bar saying
// how to go on. Colours: the failure is red.
func TestTUIShowsARunAsItGoes(t *testing.T) {
	m := openNotebook(t)
	step := func(msg tea.Msg) {
		next, _ := m.Update(msg)
		m = next.(tuiModel)
	}
	step(tea.WindowSizeMsg{Width: 80, Height: 24})
	m.running = &runAction{kind: actionAll}
	step(cellStartedMsg{idx: 2, replay: true})
	step(cellFinishedMsg{idx: 2, result: runner.CellResult{Status: runner.Replayed, Output: state.Output{{Stream: state.StreamNote, Text: "replayed note"}}}})
	step(cellStartedMsg{idx: 3, reason: "edited"})
	step(cellOutputMsg{idx: 3, line: state.OutputLine{Source: "web-2", Stream: state.StreamStdout, Text: "streaming now"}})
	out := string(shown(t, m))
	for _, want := range []string{"↺ replayed", "running 0s (edited)", "web-2 | streaming now", "s stops"} {
		if !strings.Contains(out, want) {
			t.Errorf("while running, the screen lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "line 30 from") {
		t.Errorf("a cell that runs again still shows its old output:\n%s", out)
	}
	step(cellFinishedMsg{idx: 3, result: runner.CellResult{Status: runner.Failed, Duration: time.Second, Err: starkit.Inputf("lab.star:13:8: a long error message that goes on past the width of the screen so that it must wrap rather than be cut at eighty columns, ending HERE")}})
	step(runDoneMsg{action: runAction{kind: actionAll}, sum: &runner.Summary{Failed: m.notebook.recipe.Cells[3], Cells: map[int]runner.CellResult{3: {Status: runner.Failed}}}, err: errors.New("x")})
	out = string(shown(t, m))
	for _, want := range []string{"✘ failed after 1s", "ending", "┃    HERE", "[3] Greet failed — e edits it"} {
		if !strings.Contains(out, want) {
			t.Errorf("after the failure, the screen lacks %q:\n%s", want, out)
		}
	}
	if m.running != nil || m.notebook.selected != 3 {
		t.Errorf("after the run: running=%v selected=%d, want nil and the failed cell 3", m.running, m.notebook.selected)
	}
	var colored bytes.Buffer
	w := colorprofile.Writer{Forward: &colored, Profile: colorprofile.ANSI}
	io.WriteString(&w, m.render())
	if !strings.Contains(colored.String(), "\x1b[31m✘ failed") {
		t.Errorf("the failed status is not red")
	}
}

// t shows one node's lines at a time, then all of them again.
func TestTUIOutputPerNode(t *testing.T) {
	m := openNotebook(t)
	m.notebook.selected = 3
	m.layout()
	m.notebook.nextNode()
	if m.notebook.node != "web-2" {
		t.Fatalf("first node shown = %q, want web-2 (the first that printed)", m.notebook.node)
	}
	m.layout()
	got := m.notebook.view.GetContent()
	if strings.Contains(got, "from web-1") || !strings.Contains(got, "from web-2") {
		t.Errorf("web-2 only shows:\n%s", got)
	}
	m.notebook.nextNode()
	m.notebook.nextNode()
	if m.notebook.node != "" {
		t.Errorf("after the last node, node = %q, want all again", m.notebook.node)
	}
}

// enter on a section's heading runs the section as a unit: every cell up
// to the next heading. A run asked for while one is planned or under
// way is not started twice.
func TestTUISectionRunsAsAUnit(t *testing.T) {
	m := openNotebook(t)
	m.ctl = &tuiController{} // its commands are made, not run
	m.notebook.selected = 4  // "## Checks"
	if cmd := m.key(press("enter")); cmd == nil {
		t.Fatal("enter on a heading made no command")
	}
	if m.planning == nil || *m.planning != (runAction{kind: actionTo, cell: 5}) {
		t.Fatalf("planning %+v, want run to cell 5 (the section's end)", m.planning)
	}
	if cmd := m.key(press("a")); cmd != nil {
		t.Error("a second run was asked for while the first is being planned")
	}
	m.notebook.selected = 0 // "# Class lab" heads the cells up to "## Checks"
	m.planning = nil
	m.key(press("enter"))
	if m.planning == nil || m.planning.cell != 3 {
		t.Fatalf("enter on the title: planning %+v, want run to cell 3", m.planning)
	}
}
