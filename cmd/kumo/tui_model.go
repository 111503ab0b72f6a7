package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/lang/runner"
)

// The step-through TUI shows a recipe like a notebook: cells on the
// left with their status, the selected cell's code and output on the
// right. The runner works in its own goroutine and reaches the model only
// through messages (tuiBridge); the model answers the runner's "may I run
// this cell?" through a channel. Replayed cells need no answer: they
// cost nothing and touch nothing.

// Messages from the runner.
type (
	cellStartedMsg struct {
		idx    int
		reason string // why it runs live; "" when replayed
	}
	cellStatusMsg struct {
		idx  int
		text string
	}
	noticeMsg     struct{ text string }
	cellOutputMsg struct {
		idx  int
		line string
	}
	cellFinishedMsg struct {
		idx    int
		result runner.CellResult
	}
	waitingMsg struct { // the runner waits to run cell idx live
		idx    int
		reason string
	}
	runDoneMsg struct{ err error }
)

// A cellView is where a cell stands on screen: the runner's status once
// it has finished, else one of these.
type cellView string

const (
	viewPending cellView = "pending" // not reached yet
	viewText    cellView = "text"    // a markdown cell: nothing to run
	viewRunning cellView = "running"
)

func finishedView(s runner.CellStatus) cellView { return cellView(s) }

// stepAnswer is the model's answer to waitingMsg.
type stepAnswer bool // true: run it; false: stop

type tuiModel struct {
	title   string
	cells   []*lang.Cell
	status  map[int]cellView
	output  map[int][]string
	errs    map[int]string
	times   map[int]time.Duration
	current int  // the running cell, or -1
	waiting int  // the cell the runner waits to run, or -1
	auto    bool // run the rest without asking
	stopped int  // the cell the user stopped before, or -1
	done    bool
	runErr  error
	reason  string // why the cell waited for runs live
	// statusLine is the running cell's live status (creating nodes...).
	statusLine string
	notices    []string

	selected int
	width    int
	height   int
	spin     spinner.Model
	answers  chan<- stepAnswer
	cancel   context.CancelFunc
}

func newTUIModel(title string, cells []*lang.Cell, answers chan<- stepAnswer, cancel context.CancelFunc) tuiModel {
	m := tuiModel{title: title, cells: cells, status: map[int]cellView{}, output: map[int][]string{}, errs: map[int]string{},
		times: map[int]time.Duration{}, current: -1, waiting: -1, stopped: -1, answers: answers, cancel: cancel,
		spin: spinner.New(spinner.WithSpinner(spinner.Dot)), width: 100, height: 30}
	for _, c := range cells {
		m.status[c.Index] = viewPending
		if !c.Runnable() {
			m.status[c.Index] = viewText
		}
	}
	return m
}

func (m tuiModel) Init() tea.Cmd { return m.spin.Tick }

func (m tuiModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case spinner.TickMsg:
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return m, cmd
	case cellStartedMsg:
		m.current, m.waiting = msg.idx, -1
		m.status[msg.idx] = viewRunning
		m.selected = msg.idx
		if msg.reason != "" {
			m.output[msg.idx] = []string{styleDim.Render("runs live: " + msg.reason)}
		}
	case cellOutputMsg:
		m.output[msg.idx] = append(m.output[msg.idx], msg.line)
	case cellStatusMsg:
		m.statusLine = msg.text
	case noticeMsg:
		m.notices = append(m.notices, msg.text)
	case cellFinishedMsg:
		m.statusLine = ""
		m.status[msg.idx] = finishedView(msg.result.Status)
		if msg.result.Status == runner.Replayed && len(msg.result.Output) > 0 {
			// What the cell printed when it ran live.
			m.output[msg.idx] = strings.Split(strings.TrimRight(msg.result.Output.String(), "\n"), "\n")
		}
		m.times[msg.idx] = msg.result.Duration
		if msg.result.Err != nil {
			m.errs[msg.idx] = lang.FormatError(msg.result.Err)
		}
		if m.current == msg.idx {
			m.current = -1
		}
	case waitingMsg:
		m.waiting, m.selected, m.reason = msg.idx, msg.idx, msg.reason
		if m.auto {
			m.answer(true)
		}
	case runDoneMsg:
		m.done, m.runErr = true, msg.err
	case tea.KeyPressMsg:
		return m.key(msg)
	}
	return m, nil
}

func (m *tuiModel) answer(run bool) {
	if m.waiting >= 0 {
		m.answers <- stepAnswer(run)
		m.waiting = -1
	}
}

func (m tuiModel) key(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	switch k.String() {
	case "q", "ctrl+c":
		if m.done {
			return m, tea.Quit
		}
		if m.waiting >= 0 {
			m.stopped = m.waiting
			m.answer(false) // stop before the cell; the run ends and says so
		} else if m.current >= 0 {
			m.cancel() // interrupt the running cell, like Ctrl-C in kumo run
		}
	case "n", "enter", "space":
		m.answer(true)
	case "c":
		m.auto = true
		m.answer(true)
	case "up", "k":
		if m.selected > 0 {
			m.selected--
		}
	case "down", "j":
		if m.selected < len(m.cells)-1 {
			m.selected++
		}
	}
	return m, nil
}

var (
	styleTitle    = lipgloss.NewStyle().Bold(true)
	styleDim      = lipgloss.NewStyle().Faint(true)
	styleSelected = lipgloss.NewStyle().Reverse(true)
	styleFailed   = lipgloss.NewStyle().Foreground(lipgloss.Color("1"))
	styleOK       = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))
	styleBox      = lipgloss.NewStyle().Border(lipgloss.NormalBorder()).Padding(0, 1)
)

func (m tuiModel) icon(idx int) string {
	switch m.status[idx] {
	case viewRunning:
		return m.spin.View()
	case finishedView(runner.Ran):
		return styleOK.Render("✔")
	case finishedView(runner.Replayed):
		return styleOK.Render("↺")
	case finishedView(runner.Failed):
		return styleFailed.Render("✘")
	case finishedView(runner.Skipped):
		return "·"
	case viewText:
		return styleDim.Render("¶")
	}
	if idx == m.waiting {
		return "▶"
	}
	return styleDim.Render("○")
}

func (m tuiModel) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	return v
}

// render draws the screen.
func (m tuiModel) render() string {
	listWidth := max(24, m.width/3)
	var list strings.Builder
	for _, c := range m.cells {
		suffix := ""
		if d, ok := m.times[c.Index]; ok && m.status[c.Index] == finishedView(runner.Ran) {
			suffix = " " + round(d).String()
		}
		label := truncate(cellLabel(c), listWidth-4-len(suffix))
		if c.Index == m.selected {
			label = styleSelected.Render(label)
		}
		list.WriteString(m.icon(c.Index) + " " + label + styleDim.Render(suffix) + "\n")
	}
	detailWidth := max(30, m.width-listWidth-4)
	height := max(8, m.height-4)
	detail := m.detail(detailWidth, height)
	body := lipgloss.JoinHorizontal(lipgloss.Top,
		// Sizes in Lip Gloss v2 include the border.
		styleBox.Width(listWidth+2).Height(height+2).Render(list.String()),
		styleBox.Width(detailWidth+2).Height(height+2).Render(detail))
	return styleTitle.Render(m.title) + "\n" + body + "\n" + m.footer()
}

// detail is the selected cell's code, then the tail of its output.
func (m tuiModel) detail(width, height int) string {
	if m.selected < 0 || m.selected >= len(m.cells) {
		return ""
	}
	c := m.cells[m.selected]
	var b strings.Builder
	src := strings.Split(strings.TrimRight(c.Source, "\n"), "\n")
	codeLines := min(len(src), height/2)
	for _, l := range src[:codeLines] {
		b.WriteString(styleDim.Render(truncate(l, width-2)) + "\n")
	}
	if codeLines < len(src) {
		b.WriteString(styleDim.Render(fmt.Sprintf("… %d more lines", len(src)-codeLines)) + "\n")
	}
	b.WriteString(strings.Repeat("─", max(1, width-2)) + "\n")
	out := m.output[c.Index]
	if e := m.errs[c.Index]; e != "" {
		out = append(append([]string{}, out...), strings.Split(e, "\n")...)
	}
	room := max(1, height-codeLines-3)
	if len(out) > room {
		out = out[len(out)-room:]
	}
	for _, l := range out {
		if m.errs[c.Index] != "" && strings.Contains(m.errs[c.Index], l) {
			l = styleFailed.Render(truncate(l, width-2))
		} else {
			l = truncate(l, width-2)
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// tally counts the cells by how they went: "2 ran, 1 replayed".
func (m tuiModel) tally() string {
	var parts []string
	for _, st := range []runner.CellStatus{runner.Ran, runner.Replayed, runner.Failed, runner.Skipped} {
		n := 0
		for _, v := range m.status {
			if v == finishedView(st) {
				n++
			}
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	return strings.Join(parts, ", ")
}

func (m tuiModel) footer() string {
	switch {
	case m.done && m.stopped >= 0:
		return "stopped before " + cellLabel(m.cells[m.stopped]) + styleDim.Render("  — q quits; run again to go on from there")
	case m.done && m.runErr != nil:
		return styleFailed.Render("stopped: "+firstLine(lang.FormatError(m.runErr))) + styleDim.Render("  — q quits; run again to resume")
	case m.done:
		return styleOK.Render("done: "+m.tally()) + styleDim.Render("  — q quits")
	case m.waiting >= 0:
		return fmt.Sprintf("next: %s (%s)   ", cellLabel(m.cells[m.waiting]), m.reason) + styleDim.Render("n/enter run it · c run the rest · ↑↓ look · q stop here")
	case m.current >= 0 && m.statusLine != "":
		return m.spin.View() + " " + m.statusLine + styleDim.Render("   q interrupts")
	case m.current >= 0:
		return m.spin.View() + " running " + cellLabel(m.cells[m.current]) + styleDim.Render("   q interrupts")
	}
	return styleDim.Render("replaying…")
}

func truncate(s string, n int) string {
	if n <= 1 || lipgloss.Width(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) > n-1 {
		r = r[:n-1]
	}
	return string(r) + "…"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
