package builtins

import (
	"fmt"
	"strings"
	"sync"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins/starkit"
)

// Progress keeps the live status line of work on several targets:
// what is done ("pkg.install on 3 nodes: 2/3 done"), with the last line
// a target printed, so a long step never leaves the screen silent.
type Progress struct {
	env   *Env
	what  string
	total int

	mu   sync.Mutex
	done int
	last string // "node: line"
}

// StepProgress starts the status line of builtin b on eps, named after
// the stdlib step the call works for (or b itself), with suffix after it.
func (e *Env) StepProgress(thread *starlark.Thread, b *starlark.Builtin, suffix string, eps []Endpoint) *Progress {
	step := starkit.StepName(thread)
	if step == "" {
		step = b.Name()
	}
	labels := make([]string, len(eps))
	for i, ep := range eps {
		labels[i] = ep.Label
	}
	return e.StartProgress(step+suffix, labels)
}

// StartProgress shows that what is starting on targets (their labels).
func (e *Env) StartProgress(what string, targets []string) *Progress {
	p := &Progress{env: e, total: len(targets)}
	switch len(targets) {
	case 0:
		p.what = what
	case 1:
		p.what = what + " on " + targets[0]
	default:
		p.what = fmt.Sprintf("%s on %d nodes", what, len(targets))
	}
	p.show()
	return p
}

// Line notes the latest line a target printed.
func (p *Progress) Line(target, line string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	p.mu.Lock()
	if p.total > 1 {
		line = target + ": " + line
	}
	p.last = line
	p.mu.Unlock()
	p.show()
}

// Done counts one target finished.
func (p *Progress) Done() {
	p.mu.Lock()
	p.done++
	p.mu.Unlock()
	p.show()
}

// End clears the status line.
func (p *Progress) End() { p.env.Status("") }

func (p *Progress) show() {
	p.mu.Lock()
	text := p.what
	if p.total > 1 {
		text += fmt.Sprintf(": %d/%d done", p.done, p.total)
	}
	if p.last != "" {
		text += " · " + p.last
	}
	p.mu.Unlock()
	p.env.Status(text)
}
