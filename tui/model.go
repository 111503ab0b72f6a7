package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/kumo-dev/kumo/internal/render"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/runner"
	"github.com/kumo-dev/kumo/state"
)

// The TUI shows a recipe as a notebook, in the shape of charmbracelet's
// own apps: sub-models for the notebook (tui_notebook.go) and the status
// bar (tui_status.go) under a root model that routes messages and keys,
// shows the help and the plan over the notebook, and turns the user's
// actions into commands for the tuiController, which does the work off
// the event loop. Nothing in Update waits or touches the world.

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
	title    string
	notebook notebookModel
	status   statusBar
	pager    viewport.Model // the help or the plan, over the notebook
	spin     spinner.Model
	keys     tuiKeys
	ctl      *tuiController

	showHelp bool
	running  *runAction // the run under way
	planning *runAction // a plan being made for this action
	confirm  *planMsg   // a plan waiting for y
	lastRun  *lastRun
	quitting bool
	notices  []string

	width, height int
}

func newTUIModel(cfg tuiConfig) tuiModel {
	if cfg.now == nil {
		cfg.now = time.Now
	}
	keys := defaultKeys()
	m := tuiModel{title: cfg.title, ctl: cfg.ctl, keys: keys,
		notebook: newNotebookModel(cfg.recipe, cfg.records, cfg.now), status: newStatusBar(keys),
		pager: viewport.New(), spin: spinner.New(spinner.WithSpinner(spinner.Dot)),
		width: 80, height: 24}
	m.layout()
	return m
}

func (m tuiModel) Init() tea.Cmd {
	if m.ctl == nil {
		return m.spin.Tick
	}
	return tea.Batch(m.spin.Tick, m.ctl.watchCmd())
}

func (m tuiModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmd tea.Cmd
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case spinner.TickMsg:
		m.spin, cmd = m.spin.Update(msg)
		if m.running == nil && m.planning == nil {
			return m, cmd // nothing moves: no need to draw again
		}
	case cellStartedMsg, cellOutputMsg, cellStatusMsg, cellFinishedMsg:
		m.notebook = m.notebook.Update(msg)
	case noticeMsg:
		m.notices = append(m.notices, msg.text)
		m.say(msg.text, false)
	case planMsg:
		cmd = m.planned(msg)
	case runDoneMsg:
		m.running = nil
		m.lastRun = &lastRun{msg.action, msg.sum, msg.err, msg.stopped}
		failed := msg.sum != nil && msg.sum.Failed != nil && !msg.stopped
		m.say(m.outcome(), failed)
		if msg.sum != nil && msg.sum.Failed != nil {
			m.notebook.selectCell(msg.sum.Failed.Index) // the whole error is there
		}
		if m.quitting {
			return m, tea.Quit
		}
	case watchedMsg:
		cmd = m.ctl.watchCmd()
	case fileChangedMsg:
		// Edited in another window: read again, unless a run or plan is
		// using the recipe (the next look after it ends sees it).
		if m.running == nil && m.planning == nil && m.confirm == nil {
			cmd = tea.Batch(m.ctl.reloadCmd(), m.ctl.watchCmd())
		} else {
			m.ctl.forgetRead()
			cmd = m.ctl.watchCmd()
		}
	case editedMsg:
		if msg.err != nil {
			m.say(msg.err.Error(), true)
			break
		}
		cmd = m.ctl.reloadCmd()
	case recipeMsg:
		if msg.err != nil {
			m.say("the recipe does not read: "+firstLine(lang.FormatError(msg.err))+" — e edits it", true)
			break
		}
		m.notebook.setRecipe(msg.recipe, msg.records)
		m.say("recipe read again: "+m.notebook.changedCount(), false)
	case tea.KeyPressMsg:
		cmd = m.key(msg)
	}
	m.layout()
	return m, cmd
}

func (m *tuiModel) say(text string, failed bool) {
	m.status.message, m.status.failed = text, failed
}

// layout passes sizes and state down to the sub-models.
func (m *tuiModel) layout() {
	height := max(3, m.height-3) // the title above; the status bar below
	m.status.confirm, m.status.maybe, m.status.failing = -1, 0, ""
	m.status.planning, m.status.running, m.status.mode = m.planning != nil, "", ""
	if m.running != nil {
		m.status.running = "replaying…"
		if c := m.notebook.running(); c != nil {
			m.status.running = "running " + render.CellLabel(c)
		}
	}
	m.status.idle = m.notebook.changedCount()
	m.status.help.SetWidth(m.width)
	switch {
	case m.confirm != nil:
		m.status.confirm, m.status.maybe, m.status.failing = liveCells(m.confirm.plan, m.confirm.action)
		m.status.mode = "confirm"
		var b strings.Builder
		b.WriteString(styleTitle.Render("Plan: "+string(m.confirm.action.kind)) + "\n\n")
		render.WritePlan(&b, m.notebook.recipe.Cells, scopedPlan(m.confirm), render.Style{})
		m.setPager(b.String(), height)
	case m.showHelp:
		m.status.mode = "help"
		full := m.status.help
		full.SetWidth(0) // the columns are sized for 80 columns
		m.setPager(styleTitle.Render("Keys")+"\n\n"+full.FullHelpView(m.keys.FullHelp()), height)
	default:
		m.notebook.layout(m.width, height, m.spin.View())
	}
}

func (m *tuiModel) setPager(content string, height int) {
	m.pager.SetWidth(m.width)
	m.pager.SetHeight(height)
	m.pager.SetContent(content)
}

func (m tuiModel) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	return v
}

// render draws the screen: the title, the notebook (or the plan or the
// help over it) and the status bar.
func (m tuiModel) render() string {
	title := styleTitle.Render(truncate(m.title, m.width))
	body := m.notebook.View()
	switch {
	case m.confirm != nil || m.showHelp:
		body = m.pager.View()
	case m.notebook.focus:
		title += styleDim.Render("  · one cell (esc: back)")
	}
	return title + "\n" + body + "\n" + m.status.View(m.width, m.spin.View())
}

// planned shows the plan of an action before it runs anything live,
// or starts it at once when it would only replay.
func (m *tuiModel) planned(msg planMsg) tea.Cmd {
	m.planning = nil
	if msg.err != nil {
		m.say("cannot plan: "+firstLine(lang.FormatError(msg.err)), true)
		return nil
	}
	if live, maybe, failing := liveCells(msg.plan, msg.action); live+maybe == 0 && failing == "" {
		return m.start(msg.action)
	}
	m.confirm = &msg
	m.pager.GotoTop()
	return nil
}

// scopedPlan is the part of a plan its action runs.
func scopedPlan(p *planMsg) *runner.Plan {
	if p.action.kind != actionTo {
		return p.plan
	}
	out := *p.plan
	out.Cells = nil
	for _, c := range p.plan.Cells {
		if c.Index <= p.action.cell {
			out.Cells = append(out.Cells, c)
		}
	}
	return &out
}

// liveCells counts the cells a plan runs live within the action, and
// those it may (their inputs are decided as the run goes), as the run
// will; failing names the first cell that would fail, where the run
// would stop.
func liveCells(p *runner.Plan, a runAction) (live, maybe int, failing string) {
	for _, c := range scopedPlan(&planMsg{action: a, plan: p}).Cells {
		if failing != "" {
			break // the run stops there
		}
		switch c.Action {
		case runner.PlanRun:
			live++
		case runner.PlanMaybe:
			maybe++
		case runner.PlanFail:
			failing = fmt.Sprintf("cell %d", c.Index)
		}
	}
	return live, maybe, failing
}

// ask plans action a (the plan decides whether to ask before running).
func (m *tuiModel) ask(a runAction) tea.Cmd {
	if m.ctl == nil || m.running != nil || m.planning != nil {
		return nil
	}
	m.planning = &a
	m.say("", false)
	return tea.Batch(m.ctl.planCmd(a), m.spin.Tick)
}

func (m *tuiModel) start(a runAction) tea.Cmd {
	m.confirm = nil
	m.running = &a
	m.say("", false)
	return tea.Batch(m.ctl.runCmd(a), m.spin.Tick)
}

func (m *tuiModel) key(k tea.KeyPressMsg) tea.Cmd {
	keys, nb := m.keys, &m.notebook
	if m.confirm != nil {
		switch {
		case key.Matches(k, keys.Yes):
			return m.start(m.confirm.action)
		case key.Matches(k, keys.Back, keys.No, keys.Quit):
			m.confirm = nil
			m.say("not run", false)
		case key.Matches(k, keys.PageDown, keys.Down):
			m.pager.HalfPageDown()
		case key.Matches(k, keys.PageUp, keys.Up):
			m.pager.HalfPageUp()
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
			m.say("stopping the running cell, then quitting…", false)
			return m.ctl.stopCmd()
		}
		return tea.Quit
	case key.Matches(k, keys.Stop):
		if m.running != nil {
			m.say("stopping…", false)
			return m.ctl.stopCmd()
		}
		if k.String() == "ctrl+c" {
			return tea.Quit // nothing runs: Ctrl-C quits, as everywhere
		}
	case key.Matches(k, keys.Help):
		m.showHelp = true
	case key.Matches(k, keys.Back):
		nb.focus = false
	case key.Matches(k, keys.Up):
		nb.move(-1)
	case key.Matches(k, keys.Down):
		nb.move(1)
	case key.Matches(k, keys.Top):
		nb.selectCell(0)
	case key.Matches(k, keys.Bottom):
		nb.selectCell(len(nb.cells) - 1)
	case key.Matches(k, keys.PageDown):
		nb.view.HalfPageDown()
	case key.Matches(k, keys.PageUp):
		nb.view.HalfPageUp()
	case key.Matches(k, keys.Focus):
		nb.focus = !nb.focus
		nb.view.GotoTop()
	case key.Matches(k, keys.Node):
		if !nb.nextNode() {
			m.say("this cell's output comes from no node", false)
		}
	case key.Matches(k, keys.NextFailed):
		if !nb.nextFailed() {
			m.say("no failed cell", false)
		}
	case key.Matches(k, keys.Fold):
		nb.toggleFold()
	case key.Matches(k, keys.Edit):
		if m.ctl != nil && m.running == nil {
			c := nb.current()
			return m.ctl.editCmd(c.StartLine + bodyOffset(c.Source))
		}
	case key.Matches(k, keys.RunAll):
		return m.ask(runAction{kind: actionAll})
	case key.Matches(k, keys.RunTo):
		c := nb.current()
		if c.Heading() != "" {
			return m.ask(runAction{kind: actionTo, cell: nb.sectionEnd(c.Index)})
		}
		return m.ask(runAction{kind: actionTo, cell: c.Index})
	case key.Matches(k, keys.RunFrom):
		if c := nb.current(); c.Runnable() {
			return m.ask(runAction{kind: actionFrom, cell: c.Index})
		}
	case key.Matches(k, keys.RunOnly):
		if c := nb.current(); c.Runnable() {
			return m.ask(runAction{kind: actionOnly, cell: c.Index})
		}
	}
	return nil
}

// outcome is the status bar's word on the last run.
func (m *tuiModel) outcome() string {
	r := m.lastRun
	switch {
	case r.stopped:
		return "stopped: run again to go on from where it stopped"
	case r.sum != nil && r.sum.Failed != nil:
		return fmt.Sprintf("%s failed — e edits it, enter runs it again, n finds failed cells", render.CellLabel(r.sum.Failed))
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
	for _, st := range []runner.Outcome{runner.Ran, runner.Replayed, runner.Failed, runner.Skipped} {
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
