package tui

import (
	"charm.land/bubbles/v2/help"
	"fmt"

	"github.com/kumo-dev/kumo/internal/render"
)

// statusBar is the TUI's bottom sub-model: one line saying what happens
// now (or what happened last) and one with the keys that apply. The root
// model tells it what it needs to know; it draws nothing else.
type statusBar struct {
	help help.Model
	keys tuiKeys
	// What happens now, most pressing first.
	confirm  int    // cells the plan waiting for y runs live (-1: none waits)
	maybe    int    // and the cells it may run live, decided as it goes
	failing  string // the first cell the plan says would fail, "" if none
	planning bool   // a plan is being made
	running  string // the running cell's label, "replaying…" before one runs live
	// What happened last: a run's outcome, a notice, a problem.
	message string
	failed  bool // message is a failure
	idle    string
	// mode changes the key line: "help", "confirm" or "" (the notebook).
	mode string
}

func newStatusBar(keys tuiKeys) statusBar {
	return statusBar{help: help.New(), keys: keys, confirm: -1}
}

// View is the two lines, truncated to width.
func (s statusBar) View(width int, spin string) string {
	var line string
	switch {
	case s.confirm >= 0:
		what := render.CountOf(s.confirm, "cell") + " would run live"
		if s.maybe > 0 {
			what += fmt.Sprintf(", %d may", s.maybe) // decided as the run goes
		}
		if s.failing != "" {
			what += "; " + s.failing + " would fail"
		}
		line = styleChanged.Render(what + ": y runs them, esc does nothing")
	case s.planning:
		line = spin + " planning…"
	case s.running != "":
		line = styleRunning.Render(spin+" "+s.running) + styleDim.Render("  s stops · q stops and quits")
	case s.message != "" && s.failed:
		line = styleFailed.Render(s.message)
	case s.message != "":
		line = s.message
	default:
		line = styleDim.Render(s.idle)
	}
	var keys string
	switch s.mode {
	case "confirm":
		keys = styleDim.Render("y/enter run · esc cancel · pgup/pgdn scroll")
	case "help":
		keys = styleDim.Render("esc or ? closes the help")
	default:
		keys = s.help.ShortHelpView(s.keys.ShortHelp())
	}
	return truncate(line, width) + "\n" + truncate(keys, width)
}
