package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/x/ansi"
	"golang.org/x/term"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/internal/render"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/runner"
)

// cellPrinter shows a run cell by cell: text for people, or one JSON
// object per cell (--json) with the text on stderr.
//
// On a terminal, long work (creating nodes, waiting) shows as one live
// line with a spinner and the time elapsed, rewritten in place and wiped
// before any other line is printed; elsewhere (CI logs, pipes) the same
// status is printed as a plain line once it has lasted a few seconds,
// and then every statusEvery.
type cellPrinter struct {
	IO
	json   bool
	quiet  bool // no recorded output of replayed cells
	style  render.Style
	mask   *builtins.Masker // errors can quote output; output can hold secrets
	mu     sync.Mutex
	status string    // the live status line, "" when none
	since  time.Time // when the status began
	shown  bool      // the status line is on the screen (terminal)
	last   time.Time // when the status was last printed (not a terminal)
	frame  int
	stop   chan struct{}
	done   chan struct{}
}

// How often a status line is printed when the output is not a terminal,
// and how long work must last before it is (variables for the tests).
var (
	statusEvery = 10 * time.Second
	statusAfter = 5 * time.Second
)

func newCellPrinter(stdio IO, asJSON, quiet bool, mask *builtins.Masker) *cellPrinter {
	p := &cellPrinter{IO: stdio, json: asJSON, quiet: quiet, mask: mask, stop: make(chan struct{}), done: make(chan struct{})}
	p.style = render.StyleFor(p.text())
	go p.tick()
	return p
}

// close stops the status line's clock.
func (p *cellPrinter) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
		<-p.done
	}
	p.mu.Lock()
	p.wipe()
	p.mu.Unlock()
}

// text is where human-readable lines go.
func (p *cellPrinter) text() io.Writer {
	if p.json {
		return p.Err
	}
	return p.Out
}

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func (p *cellPrinter) tick() {
	defer close(p.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.frame++
			p.draw()
			p.mu.Unlock()
		}
	}
}

// draw shows the status line: in place on a terminal, else as a plain
// line now and then. The caller holds p.mu.
func (p *cellPrinter) draw() {
	if p.status == "" {
		return
	}
	elapsed := time.Since(p.since).Truncate(time.Second)
	if p.style.Live {
		// One row only: a line that wrapped could not be wiped in place.
		clock := fmt.Sprintf(" (%s)", elapsed)
		text := ansi.Truncate(p.status, max(10, p.width()-4-len(clock)-1), "…")
		fmt.Fprintf(p.text(), "\r\033[K  %s %s%s", spinnerFrames[p.frame%len(spinnerFrames)], text, p.style.Dim(clock))
		p.shown = true
		return
	}
	if time.Since(p.since) >= statusAfter && time.Since(p.last) >= statusEvery {
		fmt.Fprintf(p.text(), "  … %s (%s)\n", p.status, elapsed)
		p.last = time.Now()
	}
}

// width is the terminal's width in columns (80 when unknown).
func (p *cellPrinter) width() int {
	if f, ok := p.text().(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			return w
		}
	}
	return 80
}

// wipe takes the status line off the screen before another line is
// printed. The caller holds p.mu.
func (p *cellPrinter) wipe() {
	if p.shown {
		fmt.Fprint(p.text(), "\r\033[K")
		p.shown = false
	}
}

// println prints a line of text, keeping the status line below it.
func (p *cellPrinter) println(w io.Writer, line string) {
	p.wipe()
	fmt.Fprintln(w, line)
	if p.style.Live {
		p.draw()
	}
}

func (p *cellPrinter) header(run, file, statePath string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.println(p.text(), fmt.Sprintf("kumo: run %q of %s (state %s)", run, file, statePath))
}

// say prints a line of kumo's own about the run.
func (p *cellPrinter) say(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.println(p.text(), "kumo: "+fmt.Sprintf(format, args...))
}

func (p *cellPrinter) CellStarted(c *lang.Cell, s runner.CellStart) {
	if s.Replay {
		return // replayed cells print one line when they finish
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.println(p.text(), fmt.Sprintf("▶ %s %s", render.CellLabel(c), p.style.Dim("("+s.Reason+")")))
}

func (p *cellPrinter) Output(c *lang.Cell, source, stream, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case stream == "note":
		p.println(p.text(), "  · "+text)
	case source == "":
		p.println(p.text(), "  "+text)
	case stream == "stderr":
		p.println(p.text(), "  "+source+" | "+p.style.Red(text))
	default:
		p.println(p.text(), "  "+source+" | "+text)
	}
}

func (p *cellPrinter) Status(c *lang.Cell, text string) { p.setStatus(text) }

func (p *cellPrinter) setStatus(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if text == "" {
		p.wipe()
		p.status = ""
		return
	}
	if p.status == "" {
		p.since, p.last = time.Now(), time.Time{}
	}
	p.status = text
	if p.style.Live {
		p.draw()
	}
}

func (p *cellPrinter) Notice(text string) { p.say("%s", text) }

// engineReport shows the resource engine's notes and live status through
// a printer, for commands that work outside a cell (destroy).
type engineReport struct{ p *cellPrinter }

func (r engineReport) Note(text string)   { r.p.Output(nil, "", "note", text) }
func (r engineReport) Status(text string) { r.p.setStatus(text) }

// cellJSON is one line of kumo run --json.
type cellJSON struct {
	Index      int     `json:"index"`
	Title      string  `json:"title"`
	Status     string  `json:"status"`
	Reason     string  `json:"reason,omitempty"` // why a cell ran live
	DurationMS int64   `json:"duration_ms"`
	Error      *string `json:"error"` // null unless the cell failed
}

func (p *cellPrinter) CellFinished(c *lang.Cell, r runner.CellResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = ""
	p.wipe()
	if p.json {
		line := cellJSON{c.Index, c.Title, string(r.Status), r.Reason, r.Duration.Milliseconds(), nil}
		if r.Err != nil {
			msg := p.mask.Mask(lang.FormatError(r.Err))
			line.Error = &msg
		}
		b, _ := json.Marshal(line)
		fmt.Fprintln(p.Out, string(b))
	}
	w := p.text()
	switch r.Status {
	case runner.Replayed:
		p.println(w, p.style.Dim(fmt.Sprintf("↺ %s (replayed)", render.CellLabel(c))))
		if !p.quiet {
			for _, line := range r.Output {
				p.println(w, p.style.Dim("  "+line.Display()))
			}
		}
	case runner.Ran:
		p.println(w, p.style.Green("✔")+fmt.Sprintf(" %s (%s)", render.CellLabel(c), render.Round(r.Duration)))
	case runner.Skipped:
		why := "skipped"
		if r.Reason != "" {
			why += ": " + r.Reason
		}
		p.println(w, p.style.Dim(fmt.Sprintf("· %s (%s)", render.CellLabel(c), why)))
	case runner.Failed:
		p.println(w, p.style.Red(fmt.Sprintf("✘ %s failed after %s", render.CellLabel(c), render.Round(r.Duration))))
		p.println(p.Err, p.style.Red(render.IndentLines(p.mask.Mask(lang.FormatError(r.Err)), "    ")))
	}
}

func (p *cellPrinter) footer(sum *runner.Summary, ctxErr error) {
	if sum == nil {
		return
	}
	counts := map[runner.Outcome]int{}
	for _, r := range sum.Cells {
		counts[r.Status]++
	}
	var parts []string
	for _, s := range []runner.Outcome{runner.Ran, runner.Replayed, runner.Failed, runner.Skipped} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	p.say("%s", strings.Join(parts, ", "))
	if sum.Failed == nil || ctxErr != nil {
		return
	}
	advice := fmt.Sprintf("kumo: %s failed. Fix the cause and run the same command again: finished cells are replayed and the run resumes at this cell.", sum.Failed.Name())
	if len(sum.Forgotten) > 0 {
		var flags []string
		for _, nv := range sum.Forgotten {
			flags = append(flags, "-p "+nv)
		}
		advice = fmt.Sprintf("kumo: %s failed on bad input before anything changed, so the run does not remember %s. "+
			"If a value is the cause, run again with another (-p NAME=VALUE); finished cells are replayed and the run resumes at this cell.",
			sum.Failed.Name(), strings.Join(flags, " "))
	}
	p.mu.Lock()
	p.println(p.Err, advice)
	p.mu.Unlock()
}
