package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/glamour/v2"
	"charm.land/lipgloss/v2"
	"github.com/alecthomas/chroma/v2/quick"
	"github.com/charmbracelet/x/ansi"

	"github.com/kumo-dev/kumo/lang/runner"
	"github.com/kumo-dev/kumo/lang/state"
)

// outputLines is how many of a cell's last output lines the notebook
// shows under it; focus mode (o) shows them all.
const outputLines = 12

var (
	styleTitle    = lipgloss.NewStyle().Bold(true)
	styleDim      = lipgloss.NewStyle().Faint(true)
	styleFailed   = lipgloss.NewStyle().Foreground(lipgloss.Color("1"))
	styleOK       = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))
	styleChanged  = lipgloss.NewStyle().Foreground(lipgloss.Color("3"))
	styleRunning  = lipgloss.NewStyle().Foreground(lipgloss.Color("4"))
	styleBar      = lipgloss.NewStyle().Foreground(lipgloss.Color("5")).Bold(true)
	styleBarBlank = lipgloss.NewStyle()
	styleBox      = lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).Padding(0, 1)
	styleHeading  = lipgloss.NewStyle().Bold(true).Underline(true)
)

// noColor: NO_COLOR is set. Bubble Tea strips colours itself then; the
// code and prose renderers are told too, so they choose plain styles.
var noColor = os.Getenv("NO_COLOR") != ""

// layout sizes the viewport and fills it with what is to be shown.
func (m *tuiModel) layout() {
	m.view.SetWidth(m.width)
	m.view.SetHeight(max(3, m.height-3)) // title above; status and keys below
	m.help.SetWidth(0)                   // the full help's columns are sized for 80 columns
	switch {
	case m.confirm != nil:
		var b strings.Builder
		b.WriteString(styleTitle.Render(fmt.Sprintf("Plan: %s", m.confirm.action.kind)) + "\n\n")
		writePlan(&b, m.recipe.Cells, m.scoped(m.confirm), termStyle{})
		m.view.SetContent(b.String())
	case m.showHelp:
		m.view.SetContent(styleTitle.Render("Keys") + "\n\n" + m.help.FullHelpView(m.keys.FullHelp()))
	case m.focus:
		m.view.SetContent(m.renderCell(m.cells[m.selected], m.width, true))
	default:
		m.renderNotebook()
	}
}

// scoped is the part of a plan its action runs.
func (m *tuiModel) scoped(p *planMsg) *runner.Plan {
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

// renderNotebook draws every shown cell and keeps the selected one in view.
func (m *tuiModel) renderNotebook() {
	var lines []string
	m.starts = map[int]int{}
	for i, c := range m.cells {
		if m.hidden(i) {
			continue
		}
		if len(lines) > 0 {
			lines = append(lines, "")
		}
		m.starts[i] = len(lines)
		lines = append(lines, strings.Split(m.renderCell(c, m.width, false), "\n")...)
	}
	m.view.SetContentLines(lines)
	// Keep the selected cell's start (and as much of it as fits) in view.
	start := m.starts[m.selected]
	end := len(lines)
	if next, ok := m.starts[m.nextShown(m.selected)]; ok {
		end = next
	}
	top, h := m.view.YOffset(), m.view.Height()
	switch {
	case start < top:
		m.view.SetYOffset(start)
	case end > top+h:
		m.view.SetYOffset(min(start, end-h))
	}
}

func (m *tuiModel) nextShown(i int) int {
	for j := i + 1; j < len(m.cells); j++ {
		if !m.hidden(j) {
			return j
		}
	}
	return -1
}

// renderCell draws one cell: a header line with its status, then its
// prose or its code and output. The selected cell has a bar on its left.
func (m *tuiModel) renderCell(c *cellView, width int, full bool) string {
	selected := c.cell.Index == m.selected
	bar := styleBarBlank.Render(" ")
	if selected {
		bar = styleBar.Render("┃")
	}
	inner := max(20, width-2)
	var body []string
	if !c.cell.Runnable() {
		if h := c.cell.Heading(); h != "" && m.folded[c.cell.Index] {
			n := m.sectionEnd(c.cell.Index) - c.cell.Index
			body = append(body, styleHeading.Render("▸ "+h)+styleDim.Render("  ("+countOf(n, "cell")+" folded — space opens)"))
		} else {
			body = append(body, strings.Split(renderProse(c.cell.Prose(), inner), "\n")...)
		}
	} else {
		body = append(body, m.cellHeader(c, inner))
		body = append(body, renderCode(c.cell.Body(), c.cell.StartLine+bodyOffset(c.cell.Source), inner)...)
		body = append(body, m.cellOutput(c, inner, full)...)
	}
	for i, l := range body {
		body[i] = bar + " " + l
	}
	return strings.Join(body, "\n")
}

// bodyOffset is how many lines of a cell's source come before its body
// (the marker line and blank lines), so code shows the recipe's line
// numbers, the ones errors name.
func bodyOffset(src string) int {
	n := 0
	lines := strings.Split(src, "\n")
	if len(lines) > 0 && strings.HasPrefix(lines[0], "# %%") {
		n = 1
	}
	for n < len(lines) && strings.TrimSpace(lines[n]) == "" {
		n++
	}
	return n
}

// cellHeader is "[2] Make nodes" on the left and the status on the right.
func (m *tuiModel) cellHeader(c *cellView, width int) string {
	left := styleTitle.Render(cellLabel(c.cell))
	var right string
	switch c.status {
	case statusNotRun:
		right = styleDim.Render("○ not run")
	case statusRecorded:
		right = styleOK.Render("✔") + styleDim.Render(" ok "+round(c.dur).String()+" (recorded)")
	case statusInterrupted:
		right = styleFailed.Render("✘ interrupted last time")
	case statusReplayed:
		right = styleOK.Render("↺ replayed")
	case statusRunning:
		right = styleRunning.Render(m.spin.View()+" running "+round(m.now().Sub(c.started)).Truncate(time.Second).String()) + styleDim.Render(" ("+c.reason+")")
	case statusRan:
		right = styleOK.Render("✔ ok " + round(c.dur).String())
	case statusFailed:
		right = styleFailed.Render("✘ failed")
		if c.dur > 0 {
			right += styleFailed.Render(" after " + round(c.dur).String())
		}
	case statusSkipped:
		right = styleDim.Render("· skipped")
	}
	if c.changed {
		right = styleChanged.Render("✎ edited since it ran ") + right
	}
	gap := width - lipgloss.Width(left) - lipgloss.Width(right)
	if gap < 1 {
		return truncate(left+" "+right, width)
	}
	return left + strings.Repeat(" ", gap) + right
}

// cellOutput is the cell's output (the last lines unless full), then its
// error in full: an error is never cut.
func (m *tuiModel) cellOutput(c *cellView, width int, full bool) []string {
	var out []string
	lines := c.output
	if m.node != "" && c.cell.Index == m.selected {
		var only state.Output
		for _, l := range lines {
			if l.Source == m.node {
				only = append(only, l)
			}
		}
		lines = only
		out = append(out, styleDim.Render("   output of "+m.node+" only (t: next node)"))
	}
	if !full && len(lines) > outputLines {
		out = append(out, styleDim.Render(fmt.Sprintf("   … %d earlier lines (o shows them all)", len(lines)-outputLines)))
		lines = lines[len(lines)-outputLines:]
	}
	for _, l := range lines {
		text := l.Display()
		if l.Stream == state.StreamNote {
			text = styleDim.Render(text)
		} else if l.Stream == state.StreamStderr {
			text = styleChanged.Render(text)
		}
		out = append(out, "   "+truncate(text, width-3))
	}
	if c.live != "" {
		out = append(out, "   "+styleRunning.Render(m.spin.View()+" "+truncate(c.live, width-5)))
	}
	if c.err != "" && c.status == statusFailed {
		for _, l := range strings.Split(c.err, "\n") {
			for _, w := range strings.Split(wrapLine(l, width-3), "\n") {
				out = append(out, "   "+styleFailed.Render(w))
			}
		}
	}
	return out
}

// wrapLine folds a long line (an error) to width rather than cutting it.
func wrapLine(s string, width int) string {
	if width < 10 || lipgloss.Width(s) <= width {
		return s
	}
	return lipgloss.Wrap(s, width, " ")
}

// codeCache keeps highlighted code: the notebook is drawn again on every
// line a running cell prints, and its code does not change meanwhile.
var codeCache = map[string][]string{}

// renderCode shows code with the recipe's line numbers, highlighted.
func renderCode(code string, firstLine, width int) []string {
	key := fmt.Sprintf("%d\x00%d\x00%s", width, firstLine, code)
	if lines, ok := codeCache[key]; ok {
		return lines
	}
	if len(codeCache) > 4096 {
		clear(codeCache)
	}
	text := code
	if !noColor {
		var buf bytes.Buffer
		// Starlark reads as Python; chroma's Python lexer fits it.
		if err := quick.Highlight(&buf, code, "python", "terminal16", "native"); err == nil {
			text = buf.String()
		}
	}
	var out []string
	for i, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		num := styleDim.Render(fmt.Sprintf("%4s │ ", strconv.Itoa(firstLine+i)))
		out = append(out, num+truncate(l, width-7))
	}
	codeCache[key] = out
	return out
}

// proseCache keeps rendered Markdown: glamour is slow to start.
var proseCache = map[string]string{}

// renderProse renders a markdown cell with glamour.
func renderProse(md string, width int) string {
	key := strconv.Itoa(width) + "\x00" + md
	if s, ok := proseCache[key]; ok {
		return s
	}
	style := "dark"
	if noColor {
		style = "notty"
	}
	out := md
	if r, err := glamour.NewTermRenderer(glamour.WithStandardStyle(style), glamour.WithWordWrap(width-2)); err == nil {
		if s, err := r.Render(md); err == nil {
			out = strings.Trim(s, "\n")
		}
	}
	if len(proseCache) > 4096 {
		clear(proseCache) // many widths seen: start over rather than grow
	}
	proseCache[key] = out
	return out
}

func (m tuiModel) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	return v
}

// render draws the screen: title, the notebook (or plan, help, one
// cell), the status line and the keys that apply.
func (m tuiModel) render() string {
	title := styleTitle.Render(truncate(m.title, m.width))
	if m.focus {
		title += styleDim.Render("  · one cell (esc: back)")
	}
	return title + "\n" + m.view.View() + "\n" + truncate(m.statusLine(), m.width) + "\n" + truncate(m.keyLine(), m.width)
}

// statusLine says what happens now, or what happened last.
func (m tuiModel) statusLine() string {
	switch {
	case m.confirm != nil:
		return styleChanged.Render(countOf(liveCells(m.confirm.plan, m.confirm.action), "cell") + " would run live: y runs them, esc does nothing")
	case m.planning != nil:
		return m.spin.View() + " planning…"
	case m.running != nil:
		for _, c := range m.cells {
			if c.status == statusRunning {
				return styleRunning.Render(m.spin.View()+" running "+cellLabel(c.cell)) + styleDim.Render("  s stops · q stops and quits")
			}
		}
		return m.spin.View() + " replaying…"
	case m.message != "":
		if m.lastRun != nil && m.lastRun.sum != nil && m.lastRun.sum.Failed != nil && strings.Contains(m.message, "failed") {
			return styleFailed.Render(m.message)
		}
		return m.message
	}
	return styleDim.Render(m.changedCount())
}

// keyLine is the short help, or a reminder inside the help and plan.
func (m tuiModel) keyLine() string {
	switch {
	case m.confirm != nil:
		return styleDim.Render("y/enter run · esc cancel · pgup/pgdn scroll")
	case m.showHelp:
		return styleDim.Render("esc or ? closes the help")
	}
	return m.help.ShortHelpView(m.keys.ShortHelp())
}

func truncate(s string, n int) string {
	if n <= 1 || lipgloss.Width(s) <= n {
		return s
	}
	return ansi.Truncate(s, n, "…")
}
