package tui

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/kumo-dev/kumo/export"
	"github.com/kumo-dev/kumo/internal/render"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/runner"
	"github.com/kumo-dev/kumo/state"
)

// The notebook is the TUI's main sub-model: the recipe's cells, what
// each printed and how it went, drawn into a viewport. Runner events
// change its cells; keys move the selection, fold sections, pick a node
// or focus on one cell.

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

// outputLines is how many of a cell's last output lines the notebook
// shows under it; focus mode shows them all.
const outputLines = 12

type notebookModel struct {
	recipe   *lang.Recipe
	cells    []*cellView
	selected int
	folded   map[int]bool // section headings folded
	focus    bool         // one cell, all of its output
	node     string       // show only this node's output lines ("" all)
	view     viewport.Model
	now      func() time.Time
	// starts are each shown cell's first line in the viewport's content.
	starts map[int]int
}

func newNotebookModel(recipe *lang.Recipe, records []state.CellRecord, now func() time.Time) notebookModel {
	nb := notebookModel{folded: map[int]bool{}, view: viewport.New(), now: now}
	nb.setRecipe(recipe, records)
	return nb
}

// setRecipe shows recipe with what the state recorded of its cells,
// paired as the record of an export pairs them.
func (nb *notebookModel) setRecipe(recipe *lang.Recipe, records []state.CellRecord) {
	nb.recipe = recipe
	nb.cells = nil
	for _, c := range export.Build(recipe, records, export.Run{}).Cells {
		v := &cellView{cell: c.Cell, changed: c.Changed, output: c.Output, err: c.Error, dur: c.Duration}
		switch c.Status {
		case export.Prose:
			v.status = statusProse
		case export.NotRun:
			v.status = statusNotRun
		case export.OK:
			v.status = statusRecorded
		case export.Failed:
			v.status = statusFailed
		case export.Running:
			v.status = statusInterrupted
		}
		nb.cells = append(nb.cells, v)
	}
	if nb.selected >= len(nb.cells) {
		nb.selected = max(0, len(nb.cells)-1)
	}
}

// Update takes the runner's events about cells.
func (nb notebookModel) Update(msg tea.Msg) notebookModel {
	switch msg := msg.(type) {
	case cellStartedMsg:
		c := nb.cells[msg.idx]
		c.started, c.live = nb.now(), ""
		if msg.replay {
			c.status = statusReplayed
			break
		}
		c.status, c.reason, c.output, c.err, c.changed = statusRunning, msg.reason, nil, "", false
		nb.selected, nb.node = msg.idx, ""
	case cellOutputMsg:
		nb.cells[msg.idx].output = append(nb.cells[msg.idx].output, msg.line)
	case cellStatusMsg:
		nb.cells[msg.idx].live = msg.text
	case cellFinishedMsg:
		nb.finished(msg.idx, msg.result)
	}
	return nb
}

// finished records how a cell went.
func (nb *notebookModel) finished(idx int, r runner.CellResult) {
	c := nb.cells[idx]
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

// current is the selected cell.
func (nb *notebookModel) current() *lang.Cell { return nb.cells[nb.selected].cell }

// running is the cell running live, or nil.
func (nb *notebookModel) running() *lang.Cell {
	for _, c := range nb.cells {
		if c.status == statusRunning {
			return c.cell
		}
	}
	return nil
}

// move selects the next shown cell in direction d (0: the selected one,
// or the one before it if it is folded away).
func (nb *notebookModel) move(d int) {
	i := nb.selected + d
	for i >= 0 && i < len(nb.cells) && nb.hidden(i) {
		if d == 0 {
			i--
		} else {
			i += d
		}
	}
	if i >= 0 && i < len(nb.cells) {
		nb.selected = i
	}
	nb.node = ""
}

func (nb *notebookModel) selectCell(i int) {
	nb.selected = min(max(i, 0), len(nb.cells)-1)
	nb.move(0)
}

// section is the heading cell whose section holds cell i, or -1.
func (nb *notebookModel) section(i int) int {
	for j := i; j >= 0; j-- {
		if nb.cells[j].cell.Heading() != "" {
			return j
		}
	}
	return -1
}

// sectionEnd is the last cell of the section headed by h.
func (nb *notebookModel) sectionEnd(h int) int {
	end := h
	for j := h + 1; j < len(nb.cells) && nb.cells[j].cell.Heading() == ""; j++ {
		end = j
	}
	return end
}

// hidden: the cell is in a folded section (the heading stays shown).
func (nb *notebookModel) hidden(i int) bool {
	h := nb.section(i)
	return h >= 0 && h != i && nb.folded[h]
}

// toggleFold folds or opens the selected cell's section.
func (nb *notebookModel) toggleFold() {
	if h := nb.section(nb.selected); h >= 0 {
		nb.folded[h] = !nb.folded[h]
		nb.selected = h
	}
}

// nextFailed selects the next failed cell, opening its section; it
// reports false when there is none.
func (nb *notebookModel) nextFailed() bool {
	for k := 1; k <= len(nb.cells); k++ {
		i := (nb.selected + k) % len(nb.cells)
		if nb.cells[i].status == statusFailed {
			if h := nb.section(i); h >= 0 {
				nb.folded[h] = false
			}
			nb.selected = i
			return true
		}
	}
	return false
}

// nextNode shows the next node's lines alone, then all again; it
// reports false when the selected cell's output comes from no node.
func (nb *notebookModel) nextNode() bool {
	sources := nb.cells[nb.selected].output.Sources()
	if len(sources) == 0 {
		return false
	}
	next := sources[0]
	for i, s := range sources {
		if s == nb.node {
			next = ""
			if i+1 < len(sources) {
				next = sources[i+1]
			}
		}
	}
	nb.node = next
	return true
}

// changedCount says how many cells would run because they are edited or new.
func (nb *notebookModel) changedCount() string {
	n := 0
	for _, c := range nb.cells {
		if c.changed || (c.status == statusNotRun && c.cell.Runnable()) {
			n++
		}
	}
	if n == 0 {
		return "nothing changed"
	}
	return render.CountOf(n, "cell") + " edited or new — a runs what changed"
}

var (
	styleTitle    = lipgloss.NewStyle().Bold(true)
	styleDim      = lipgloss.NewStyle().Faint(true)
	styleFailed   = lipgloss.NewStyle().Foreground(lipgloss.Color("1"))
	styleOK       = lipgloss.NewStyle().Foreground(lipgloss.Color("2"))
	styleChanged  = lipgloss.NewStyle().Foreground(lipgloss.Color("3"))
	styleRunning  = lipgloss.NewStyle().Foreground(lipgloss.Color("4"))
	styleBar      = lipgloss.NewStyle().Foreground(lipgloss.Color("5")).Bold(true)
	styleHeading  = lipgloss.NewStyle().Bold(true).Underline(true)
	styleBarBlank = lipgloss.NewStyle()
)

// noColor: NO_COLOR is set. Bubble Tea strips colours itself then; the
// code and prose renderers are told too, so they choose plain styles.
var noColor = os.Getenv("NO_COLOR") != ""

// layout draws the cells (or the focused one) into the viewport, sized
// width x height, and keeps the selected cell in view. spin is the
// spinner's frame for the running cell.
func (nb *notebookModel) layout(width, height int, spin string) {
	nb.view.SetWidth(width)
	nb.view.SetHeight(height)
	if nb.focus {
		nb.view.SetContent(nb.renderCell(nb.cells[nb.selected], width, true, spin))
		return
	}
	var lines []string
	nb.starts = map[int]int{}
	for i, c := range nb.cells {
		if nb.hidden(i) {
			continue
		}
		if len(lines) > 0 {
			lines = append(lines, "")
		}
		nb.starts[i] = len(lines)
		lines = append(lines, strings.Split(nb.renderCell(c, width, false, spin), "\n")...)
	}
	nb.view.SetContentLines(lines)
	start, end := nb.starts[nb.selected], len(lines)
	for j := nb.selected + 1; j < len(nb.cells); j++ {
		if next, ok := nb.starts[j]; ok {
			end = next
			break
		}
	}
	top, h := nb.view.YOffset(), nb.view.Height()
	switch {
	case start < top:
		nb.view.SetYOffset(start)
	case end > top+h:
		nb.view.SetYOffset(min(start, end-h))
	}
}

func (nb notebookModel) View() string { return nb.view.View() }

// renderCell draws one cell: a header line with its status, then its
// prose or its code and output. The selected cell has a bar on its left.
func (nb *notebookModel) renderCell(c *cellView, width int, full bool, spin string) string {
	bar := styleBarBlank.Render(" ")
	if c.cell.Index == nb.selected {
		bar = styleBar.Render("┃")
	}
	inner := max(20, width-2)
	var body []string
	if !c.cell.Runnable() {
		if h := c.cell.Heading(); h != "" && nb.folded[c.cell.Index] {
			n := nb.sectionEnd(c.cell.Index) - c.cell.Index
			body = append(body, styleHeading.Render("▸ "+h)+styleDim.Render("  ("+render.CountOf(n, "cell")+" folded — space opens)"))
		} else {
			body = append(body, strings.Split(renderProse(c.cell.Prose(), inner), "\n")...)
		}
	} else {
		body = append(body, nb.cellHeader(c, inner, spin))
		body = append(body, renderCode(c.cell.Body(), c.cell.StartLine+bodyOffset(c.cell.Source), inner)...)
		body = append(body, nb.cellOutput(c, inner, full, spin)...)
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
func (nb *notebookModel) cellHeader(c *cellView, width int, spin string) string {
	left := styleTitle.Render(render.CellLabel(c.cell))
	var right string
	switch c.status {
	case statusNotRun:
		right = styleDim.Render("○ not run")
	case statusRecorded:
		right = styleOK.Render("✔") + styleDim.Render(" ok "+render.Round(c.dur).String()+" (recorded)")
	case statusInterrupted:
		right = styleFailed.Render("✘ interrupted last time")
	case statusReplayed:
		right = styleOK.Render("↺ replayed")
	case statusRunning:
		right = styleRunning.Render(spin+" running "+render.Round(nb.now().Sub(c.started)).Truncate(time.Second).String()) + styleDim.Render(" ("+c.reason+")")
	case statusRan:
		right = styleOK.Render("✔ ok " + render.Round(c.dur).String())
	case statusFailed:
		right = styleFailed.Render("✘ failed")
		if c.dur > 0 {
			right += styleFailed.Render(" after " + render.Round(c.dur).String())
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
func (nb *notebookModel) cellOutput(c *cellView, width int, full bool, spin string) []string {
	var out []string
	lines := c.output
	if nb.node != "" && c.cell.Index == nb.selected {
		var only state.Output
		for _, l := range lines {
			if l.Source == nb.node {
				only = append(only, l)
			}
		}
		lines = only
		out = append(out, styleDim.Render("   output of "+nb.node+" only (t: next node)"))
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
		out = append(out, "   "+styleRunning.Render(spin+" "+truncate(c.live, width-5)))
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
		text = highlight(code)
	}
	var out []string
	for i, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		num := styleDim.Render(fmt.Sprintf("%4s │ ", strconv.Itoa(firstLine+i)))
		out = append(out, num+truncate(l, width-7))
	}
	codeCache[key] = out
	return out
}

// proseCache keeps rendered Markdown.
var proseCache = map[string]string{}

// renderProse renders a markdown cell (see markdown.go).
func renderProse(md string, width int) string {
	key := strconv.Itoa(width) + "\x00" + md
	if s, ok := proseCache[key]; ok {
		return s
	}
	out := strings.Join(markdownLines(export.FenceIndentedCode(md), width), "\n")
	if len(proseCache) > 4096 {
		clear(proseCache) // many widths seen: start over rather than grow
	}
	proseCache[key] = out
	return out
}

func truncate(s string, n int) string {
	if n <= 1 || lipgloss.Width(s) <= n {
		return s
	}
	return ansi.Truncate(s, n, "…")
}
