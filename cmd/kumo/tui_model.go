package main

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/lang/runner"
	"github.com/kumo-dev/kumo/lang/state"
)

// The TUI shows a recipe as a notebook, in the shape of charmbracelet's
// own apps: the model holds what is shown, the runner works elsewhere
// (tuiController) and reaches the model only through messages, and
// everything that waits or touches the world leaves Update as a command.
//
// Sub-models: the notebook (cells, rendered into a viewport), the status
// bar (what runs, what happened, the keys that apply) and the help.

// Messages from the runner (through tuiBridge).
type (
	cellStartedMsg struct {
		idx    int
		replay bool
		reason string // why it runs live
	}
	cellStatusMsg struct {
		idx  int
		text string
	}
	noticeMsg     struct{ text string }
	cellOutputMsg struct {
		idx  int
		line state.OutputLine
	}
	cellFinishedMsg struct {
		idx    int
		result runner.CellResult
	}
)

// cellStatus is where a cell stands on screen.
type cellStatus string

const (
	statusProse       cellStatus = "prose"
	statusNotRun      cellStatus = "not run"
	statusRecorded    cellStatus = "ok"          // succeeded when it last ran; not run in this session yet
	statusInterrupted cellStatus = "interrupted" // its run was killed while it ran
	statusReplayed    cellStatus = "replayed"
	statusRunning     cellStatus = "running"
	statusRan         cellStatus = "ran"
	statusFailed      cellStatus = "failed"
	statusSkipped     cellStatus = "skipped"
)

// cellView is one cell as the notebook shows it.
type cellView struct {
	cell    *lang.Cell
	status  cellStatus
	changed bool   // edited since its record was made
	reason  string // why it runs (or ran) live
	output  state.Output
	err     string
	dur     time.Duration
	started time.Time
	live    string // the running cell's status line
}

// tuiConfig is what the TUI starts from.
type tuiConfig struct {
	title   string
	recipe  *lang.Recipe
	records []state.CellRecord
	ctl     *tuiController // nil in tests of the view alone
	now     func() time.Time
}

// lastRun is how the last run made in the TUI ended.
type lastRun struct {
	action  runAction
	sum     *runner.Summary
	err     error
	stopped bool
}

type tuiModel struct {
	title  string
	recipe *lang.Recipe
	cells  []*cellView
	ctl    *tuiController
	now    func() time.Time

	selected int
	folded   map[int]bool // section headings folded
	focus    bool         // one cell, all of its output
	node     string       // show only this node's output lines ("" all)
	showHelp bool

	running  *runAction // the run under way
	planning *runAction // a plan being made for this action
	confirm  *planMsg   // a plan waiting for y
	lastRun  *lastRun
	quitting bool
	message  string // the latest notice or problem, for the status bar
	notices  []string

	width, height int
	view          viewport.Model
	spin          spinner.Model
	help          help.Model
	keys          tuiKeys
	// starts are each shown cell's first line in the viewport's content.
	starts map[int]int
}

func newTUIModel(cfg tuiConfig) tuiModel {
	m := tuiModel{title: cfg.title, ctl: cfg.ctl, now: cfg.now, folded: map[int]bool{},
		spin: spinner.New(spinner.WithSpinner(spinner.Dot)), help: help.New(), keys: defaultKeys(),
		width: 80, height: 24}
	if m.now == nil {
		m.now = time.Now
	}
	m.view = viewport.New()
	m.setRecipe(cfg.recipe, cfg.records)
	m.layout()
	return m
}

// setRecipe shows recipe with what the state recorded of its cells.
func (m *tuiModel) setRecipe(recipe *lang.Recipe, records []state.CellRecord) {
	m.recipe = recipe
	byCell := runner.Align(recipe.Cells, records)
	m.cells = nil
	for _, c := range recipe.Cells {
		v := &cellView{cell: c, status: statusNotRun}
		if !c.Runnable() {
			v.status = statusProse
		}
		if rec := byCell[c.Index]; rec != nil {
			v.changed = rec.SourceHash != c.Hash()
			v.output, v.err, v.dur = rec.Output, rec.Error, rec.Duration
			switch rec.Status {
			case state.CellOK:
				v.status = statusRecorded
			case state.CellFailed:
				v.status = statusFailed
			default:
				v.status = statusInterrupted
			}
		}
		m.cells = append(m.cells, v)
	}
	if m.selected >= len(m.cells) {
		m.selected = max(0, len(m.cells)-1)
	}
}

func (m tuiModel) Init() tea.Cmd { return m.spin.Tick }

func (m tuiModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmd tea.Cmd
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case spinner.TickMsg:
		m.spin, cmd = m.spin.Update(msg)
		if m.running == nil {
			return m, cmd // nothing moves: no need to draw again
		}
	case cellStartedMsg:
		c := m.cells[msg.idx]
		c.started, c.live = m.now(), ""
		if msg.replay {
			c.status = statusReplayed
			break
		}
		c.status, c.reason, c.output, c.err, c.changed = statusRunning, msg.reason, nil, "", false
		m.selected = msg.idx
		m.node = ""
	case cellOutputMsg:
		m.cells[msg.idx].output = append(m.cells[msg.idx].output, msg.line)
	case cellStatusMsg:
		m.cells[msg.idx].live = msg.text
	case noticeMsg:
		m.notices = append(m.notices, msg.text)
		m.message = msg.text
	case cellFinishedMsg:
		m.finished(msg.idx, msg.result)
	case planMsg:
		cmd = m.planned(msg)
	case runDoneMsg:
		m.running = nil
		m.lastRun = &lastRun{msg.action, msg.sum, msg.err, msg.stopped}
		m.message = m.outcome()
		if msg.sum != nil && msg.sum.Failed != nil {
			m.selected = msg.sum.Failed.Index // the whole error is there
		}
		if m.quitting {
			return m, tea.Quit
		}
	case editedMsg:
		if msg.err != nil {
			m.message = msg.err.Error()
			break
		}
		cmd = m.ctl.reloadCmd()
	case recipeMsg:
		if msg.err != nil {
			m.message = "the recipe does not read: " + firstLine(lang.FormatError(msg.err)) + " — e edits it"
			break
		}
		m.setRecipe(msg.recipe, msg.records)
		m.message = "recipe read again: " + m.changedCount()
	case tea.KeyPressMsg:
		cmd = m.key(msg)
	}
	m.layout()
	return m, cmd
}

// finished records how a cell went.
func (m *tuiModel) finished(idx int, r runner.CellResult) {
	c := m.cells[idx]
	c.live = ""
	switch r.Status {
	case runner.Replayed:
		c.status, c.output, c.changed = statusReplayed, r.Output, false
	case runner.Ran:
		c.status, c.dur, c.err = statusRan, r.Duration, ""
	case runner.Failed:
		c.status, c.dur = statusFailed, r.Duration
		c.err = lang.FormatError(r.Err)
	case runner.Skipped:
		if c.status == statusRunning {
			c.status = statusNotRun
		}
		if r.Reason != "" {
			c.reason = r.Reason
		}
	}
}

// planned shows the plan of an action before it runs anything live,
// or starts it at once when it would only replay.
func (m *tuiModel) planned(msg planMsg) tea.Cmd {
	m.planning = nil
	if msg.err != nil {
		m.message = "cannot plan: " + firstLine(lang.FormatError(msg.err))
		return nil
	}
	if liveCells(msg.plan, msg.action) == 0 {
		return m.start(msg.action)
	}
	m.confirm = &msg
	return nil
}

// liveCells counts the cells a plan runs live, within the action.
func liveCells(p *runner.Plan, a runAction) int {
	n := 0
	for _, c := range p.Cells {
		if (c.Action == runner.PlanRun || c.Action == runner.PlanMaybe) && (a.kind != actionTo || c.Index <= a.cell) {
			n++
		}
	}
	return n
}

// ask plans action a (the plan decides whether to ask before running).
func (m *tuiModel) ask(a runAction) tea.Cmd {
	if m.ctl == nil || m.running != nil || m.planning != nil {
		return nil
	}
	m.planning, m.message = &a, ""
	return m.ctl.planCmd(a)
}

func (m *tuiModel) start(a runAction) tea.Cmd {
	m.confirm = nil
	m.running = &a
	m.message = ""
	return tea.Batch(m.ctl.runCmd(a), m.spin.Tick)
}

func (m *tuiModel) key(k tea.KeyPressMsg) tea.Cmd {
	keys := m.keys
	if m.confirm != nil {
		switch {
		case key.Matches(k, keys.Yes):
			return m.start(m.confirm.action)
		case key.Matches(k, keys.Back, keys.No, keys.Quit):
			m.confirm, m.message = nil, "not run"
		case key.Matches(k, keys.PageDown, keys.Down):
			m.view.HalfPageDown()
		case key.Matches(k, keys.PageUp, keys.Up):
			m.view.HalfPageUp()
		}
		return nil
	}
	if m.showHelp {
		if key.Matches(k, keys.Help, keys.Back, keys.Quit) {
			m.showHelp = false
		}
		return nil
	}
	switch {
	case key.Matches(k, keys.Quit):
		if m.running != nil {
			m.quitting = true
			m.message = "stopping the running cell, then quitting…"
			return m.ctl.stopCmd()
		}
		return tea.Quit
	case key.Matches(k, keys.Stop):
		if m.running != nil {
			m.message = "stopping…"
			return m.ctl.stopCmd()
		}
		if k.String() == "ctrl+c" {
			return tea.Quit // nothing runs: Ctrl-C quits, as everywhere
		}
	case key.Matches(k, keys.Help):
		m.showHelp = true
	case key.Matches(k, keys.Back):
		m.focus = false
	case key.Matches(k, keys.Up):
		m.move(-1)
	case key.Matches(k, keys.Down):
		m.move(1)
	case key.Matches(k, keys.Top):
		m.selected = 0
		m.move(0)
	case key.Matches(k, keys.Bottom):
		m.selected = len(m.cells) - 1
		m.move(0)
	case key.Matches(k, keys.PageDown):
		m.view.HalfPageDown()
	case key.Matches(k, keys.PageUp):
		m.view.HalfPageUp()
	case key.Matches(k, keys.Focus):
		m.focus = !m.focus
		m.view.GotoTop()
	case key.Matches(k, keys.Node):
		m.nextNode()
	case key.Matches(k, keys.NextFailed):
		m.nextFailed()
	case key.Matches(k, keys.Fold):
		if h := m.section(m.selected); h >= 0 {
			m.folded[h] = !m.folded[h]
			m.selected = h
		}
	case key.Matches(k, keys.Edit):
		if m.ctl != nil && m.running == nil {
			c := m.cells[m.selected].cell
			return m.ctl.editCmd(c.StartLine + bodyOffset(c.Source))
		}
	case key.Matches(k, keys.RunAll):
		return m.ask(runAction{kind: actionAll})
	case key.Matches(k, keys.RunTo):
		c := m.cells[m.selected].cell
		if c.Heading() != "" {
			return m.ask(runAction{kind: actionTo, cell: m.sectionEnd(c.Index)})
		}
		return m.ask(runAction{kind: actionTo, cell: c.Index})
	case key.Matches(k, keys.RunFrom):
		if c := m.cells[m.selected].cell; c.Runnable() {
			return m.ask(runAction{kind: actionFrom, cell: c.Index})
		}
	case key.Matches(k, keys.RunOnly):
		if c := m.cells[m.selected].cell; c.Runnable() {
			return m.ask(runAction{kind: actionOnly, cell: c.Index})
		}
	}
	return nil
}

// move selects the next shown cell in direction d (0: the selected one,
// or the next shown one if it is folded away) and scrolls to it.
func (m *tuiModel) move(d int) {
	i := m.selected + d
	for i >= 0 && i < len(m.cells) && m.hidden(i) {
		if d == 0 {
			i--
		} else {
			i += d
		}
	}
	if i >= 0 && i < len(m.cells) {
		m.selected = i
	}
	m.node = ""
}

// section is the heading cell whose section holds cell i, or -1.
func (m *tuiModel) section(i int) int {
	for j := i; j >= 0; j-- {
		if m.cells[j].cell.Heading() != "" {
			return j
		}
	}
	return -1
}

// sectionEnd is the last cell of the section headed by h.
func (m *tuiModel) sectionEnd(h int) int {
	end := h
	for j := h + 1; j < len(m.cells) && m.cells[j].cell.Heading() == ""; j++ {
		end = j
	}
	return end
}

// hidden: the cell is in a folded section (the heading stays shown).
func (m *tuiModel) hidden(i int) bool {
	h := m.section(i)
	return h >= 0 && h != i && m.folded[h]
}

func (m *tuiModel) nextFailed() {
	for k := 1; k <= len(m.cells); k++ {
		i := (m.selected + k) % len(m.cells)
		if m.cells[i].status == statusFailed {
			if h := m.section(i); h >= 0 {
				m.folded[h] = false
			}
			m.selected = i
			return
		}
	}
	m.message = "no failed cell"
}

// nextNode shows the next node's lines alone, then all again.
func (m *tuiModel) nextNode() {
	sources := m.cells[m.selected].output.Sources()
	if len(sources) == 0 {
		m.message = "this cell's output comes from no node"
		return
	}
	next := sources[0]
	for i, s := range sources {
		if s == m.node {
			next = ""
			if i+1 < len(sources) {
				next = sources[i+1]
			}
		}
	}
	m.node = next
}

// outcome is the status bar's word on the last run.
func (m *tuiModel) outcome() string {
	r := m.lastRun
	switch {
	case r.stopped:
		return "stopped: run again to go on from where it stopped"
	case r.sum != nil && r.sum.Failed != nil:
		return fmt.Sprintf("%s failed — e edits it, enter runs it again, n finds failed cells", cellLabel(r.sum.Failed))
	case r.err != nil:
		return "cannot run: " + firstLine(lang.FormatError(r.err))
	}
	return "done: " + tally(r.sum)
}

// tally counts the cells of a run by how they went: "2 ran, 1 replayed".
func tally(sum *runner.Summary) string {
	if sum == nil {
		return "nothing to run"
	}
	var parts []string
	for _, st := range []runner.CellStatus{runner.Ran, runner.Replayed, runner.Failed, runner.Skipped} {
		n := 0
		for _, r := range sum.Cells {
			if r.Status == st {
				n++
			}
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	return strings.Join(parts, ", ")
}

func (m *tuiModel) changedCount() string {
	n := 0
	for _, c := range m.cells {
		if c.changed || (c.status == statusNotRun && c.cell.Runnable()) {
			n++
		}
	}
	if n == 0 {
		return "nothing changed"
	}
	return countOf(n, "cell") + " edited or new — a runs what changed"
}

// countOf is "1 cell", "2 cells".
func countOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// tuiKeys are the TUI's keys, for the help and for Update alike.
type tuiKeys struct {
	Up, Down, Top, Bottom, PageUp, PageDown     key.Binding
	RunTo, RunAll, RunFrom, RunOnly, Stop, Edit key.Binding
	NextFailed, Node, Focus, Fold, Help, Back   key.Binding
	Quit, Yes, No                               key.Binding
}

func defaultKeys() tuiKeys {
	b := func(help, desc string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return tuiKeys{
		Up:         b("↑/k", "previous cell", "up", "k"),
		Down:       b("↓/j", "next cell", "down", "j"),
		Top:        b("g", "first cell", "g", "home"),
		Bottom:     b("G", "last cell", "G", "end"),
		PageUp:     b("pgup", "scroll up", "pgup", "ctrl+u"),
		PageDown:   b("pgdn", "scroll down", "pgdown", "ctrl+d"),
		RunTo:      b("enter", "run to here", "enter"),
		RunAll:     b("a", "run all", "a"),
		RunFrom:    b("f", "live from here (--from)", "f"),
		RunOnly:    b("l", "re-run live (--only)", "l"),
		Stop:       b("s", "stop", "s", "ctrl+c"),
		Edit:       b("e", "edit ($EDITOR)", "e"),
		NextFailed: b("n", "next failed", "n"),
		Node:       b("t", "one node's output", "t"),
		Focus:      b("o/tab", "focus", "o", "tab"),
		Fold:       b("space", "fold section", "space"),
		Help:       b("?", "help", "?"),
		Back:       b("esc", "back", "esc"),
		Quit:       b("q", "quit", "q"),
		Yes:        b("y/enter", "go", "y", "enter"),
		No:         b("n", "cancel", "n"),
	}
}

func (k tuiKeys) ShortHelp() []key.Binding {
	return []key.Binding{k.RunTo, k.RunAll, k.Edit, k.Focus, k.Help, k.Quit}
}

func (k tuiKeys) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Up, k.Down, k.Top, k.Bottom, k.PageUp, k.PageDown, k.Fold},
		{k.RunTo, k.RunAll, k.RunFrom, k.RunOnly, k.Stop, k.Edit},
		{k.NextFailed, k.Node, k.Focus, k.Help, k.Back, k.Quit},
	}
}
