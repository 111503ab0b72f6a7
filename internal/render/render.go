// Package render writes what kumo shows people, the same way in every
// command and the TUI: a terminal's style, cell labels, durations and
// counts, and a plan.
package render

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/kumo-dev/kumo/lang"
)

// Style is what the output can show.
type Style struct {
	Live  bool // a terminal: status lines are rewritten in place
	Color bool // ANSI colours (a terminal, and NO_COLOR unset)
}

// StyleFor looks at w and the environment.
func StyleFor(w io.Writer) Style {
	tty := IsTerminal(w) && os.Getenv("TERM") != "dumb"
	return Style{Live: tty, Color: tty && os.Getenv("NO_COLOR") == ""}
}

func (s Style) Paint(code, text string) string {
	if !s.Color || text == "" {
		return text
	}
	return "\033[" + code + "m" + text + "\033[0m"
}

func (s Style) Dim(text string) string   { return s.Paint("2", text) }
func (s Style) Red(text string) string   { return s.Paint("31", text) }
func (s Style) Green(text string) string { return s.Paint("32", text) }

// IsTerminal reports whether w is a terminal (colour, prompts).
func IsTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// CellLabel is how a cell is named in output: "[3] Install".
func CellLabel(c *lang.Cell) string {
	if c.Title == "" && c.Kind != "" {
		return fmt.Sprintf("[%d] [%s]", c.Index, c.Kind)
	}
	if c.Title == "" {
		return fmt.Sprintf("[%d]", c.Index)
	}
	return fmt.Sprintf("[%d] %s", c.Index, c.Title)
}

// Round is d to the millisecond under a second, else to 10 ms.
func Round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Millisecond)
}

// IndentLines puts prefix before each line of s.
func IndentLines(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// CountOf is "1 cell", "2 cells".
func CountOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
