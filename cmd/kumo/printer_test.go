package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/internal/render"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/runner"
)

// lockedBuffer is written by the printer's clock and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var testCell = &lang.Cell{Index: 2, Title: "Create"}

// On a terminal, a long step is one line rewritten in place with a
// spinner and the time elapsed; a line printed meanwhile wipes it first
// and draws it again below; the end of the cell wipes it for good.
func TestStatusLineOnATerminal(t *testing.T) {
	out := &lockedBuffer{}
	p := newCellPrinter(IO{Out: out, Err: out}, false, false, &builtins.Masker{})
	p.style = render.Style{Live: true}
	defer p.close()
	p.CellStarted(testCell, runner.CellStart{Reason: "new"})
	p.Status(testCell, "web on local: 1/3 created")
	waitShows(t, out, "\r\033[K  ⠙ web on local: 1/3 created (0s)") // the clock turned the spinner
	p.Output(testCell, "", "note", "creating unit g/web")
	s := out.String()
	if !regexp.MustCompile("\r\033\\[K  · creating unit g/web\n\r\033\\[K  [⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] web on local").MatchString(s) {
		t.Errorf("the note did not wipe the status line and draw it again below:\n%q", s)
	}
	p.CellFinished(testCell, runner.CellResult{Status: runner.Ran, Duration: time.Second})
	if !strings.HasSuffix(out.String(), "\r\033[K✔ [2] Create (1s)\n") {
		t.Errorf("the end of the cell did not wipe the status line:\n%q", out.String())
	}
}

// Elsewhere (a CI log) the status is a plain line once it has lasted a
// while, and again every so often; never a carriage return.
func TestStatusLinesInALog(t *testing.T) {
	every, after := statusEvery, statusAfter
	statusEvery, statusAfter = 150*time.Millisecond, 100*time.Millisecond
	defer func() { statusEvery, statusAfter = every, after }()
	out := &lockedBuffer{}
	p := newCellPrinter(IO{Out: out, Err: out}, false, false, &builtins.Masker{})
	defer p.close()
	p.Status(testCell, "waiting for http://x/ (connection refused)")
	if strings.Contains(out.String(), "waiting") {
		t.Error("a status was printed before it lasted statusAfter")
	}
	waitShows(t, out, "  … waiting for http://x/ (connection refused) (0s)\n")
	time.Sleep(400 * time.Millisecond)
	p.Status(testCell, "")
	n := strings.Count(out.String(), "… waiting")
	if n < 2 || n > 5 || strings.Contains(out.String(), "\r") {
		t.Errorf("%d status lines, want a few and no carriage return:\n%q", n, out.String())
	}
}

// Colour and the live line follow the terminal: a real pty gets both,
// NO_COLOR takes colour away, TERM=dumb both, and a file neither.
func TestStyleFollowsTheTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	t.Setenv("TERM", "xterm")
	t.Setenv("NO_COLOR", "")
	if s := render.StyleFor(tty); !s.Live || !s.Color {
		t.Errorf("a terminal: %+v", s)
	}
	if s := render.StyleFor(tty); s.Red("x") != "\033[31mx\033[0m" {
		t.Errorf("red on a terminal = %q", s.Red("x"))
	}
	t.Setenv("NO_COLOR", "1")
	if s := render.StyleFor(tty); !s.Live || s.Color || s.Red("x") != "x" {
		t.Errorf("NO_COLOR: %+v", s)
	}
	t.Setenv("TERM", "dumb")
	if s := render.StyleFor(tty); s.Live || s.Color {
		t.Errorf("TERM=dumb: %+v", s)
	}
	f, _ := os.CreateTemp(t.TempDir(), "log")
	defer f.Close()
	t.Setenv("TERM", "xterm")
	t.Setenv("NO_COLOR", "")
	if s := render.StyleFor(f); s.Live || s.Color {
		t.Errorf("a file: %+v", s)
	}
}

// A failed cell is red on a terminal.
func TestFailuresAreRed(t *testing.T) {
	out := &lockedBuffer{}
	p := newCellPrinter(IO{Out: out, Err: out}, false, false, &builtins.Masker{})
	p.style = render.Style{Live: true, Color: true}
	defer p.close()
	p.CellFinished(testCell, runner.CellResult{Status: runner.Failed, Err: starkit.Inputf("r.star:3:1: boom")})
	if !strings.Contains(out.String(), "\033[31m✘ [2] Create failed after 0s\033[0m") || !strings.Contains(out.String(), "\033[31m    r.star:3:1: boom\033[0m") {
		t.Errorf("failure not red:\n%q", out.String())
	}
}

// status sums the running nodes' prices, and per unit group when a run
// has several; nodes not running cost nothing.
func TestStatusPricesPerGroup(t *testing.T) {
	r := statusRunJSON{Name: "r", Status: "ok", PriceHour: 0.0624, Nodes: []statusNodeJSON{
		{Group: "web", Unit: "w", Name: "w-1", Provider: "aws", Status: "ready", State: "RUNNING", PriceHour: 0.0208},
		{Group: "web", Unit: "w", Name: "w-2", Provider: "aws", Status: "ready", State: "POWER_OFF", PriceHour: 0.0208},
		{Group: "db", Unit: "d", Name: "d-1", Provider: "aws", Status: "ready", State: "RUNNING", PriceHour: 0.0416},
	}}
	var b strings.Builder
	printRunStatus(&b, r)
	if want := "running nodes cost $0.0624/h together (catalog on-demand prices): unit group db $0.0416/h, unit group web $0.0208/h"; !strings.Contains(b.String(), want) {
		t.Errorf("status:\n%s\nwant %q", b.String(), want)
	}
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
