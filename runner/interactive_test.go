package runner

import (
	"context"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/lang"
)

// session runs cells one at a time, as a notebook kernel does: each
// call adds or changes a cell of the growing recipe and runs it.
type session struct {
	h     *harness
	it    *Interactive
	cells []string
}

func (h *harness) session() *session {
	h.t.Helper()
	globals := starlark.StringDict{"bump": bump.Builtin(), "make": makeDef.Builtin()}
	it, err := NewInteractive(Options{Recipe: &lang.Recipe{Path: h.recipe, Dir: h.dir}, Run: "r", Builtins: globals,
		Env: &builtins.Env{Run: "r", Store: h.store}, Events: h})
	if err != nil {
		h.t.Fatal(err)
	}
	return &session{h: h, it: it}
}

// exec sets cell idx (appending when idx is the next one) and runs it.
func (s *session) exec(idx int, code string) Outcome {
	s.h.t.Helper()
	code = strings.ReplaceAll(code, "$DIR", s.h.dir)
	if idx == len(s.cells) {
		s.cells = append(s.cells, code)
	} else {
		s.cells[idx] = code
	}
	var text strings.Builder
	for _, c := range s.cells {
		text.WriteString("# %%\n" + c + "\n\n")
	}
	globals := s.it.Interpreter().Globals
	rec, err := lang.ParseRecipe(s.h.recipe, text.String(), func(n string) bool { _, ok := globals[n]; return ok })
	if err != nil {
		s.h.t.Fatal(err)
	}
	res := s.it.Exec(context.Background(), rec, idx)
	if res.Err != nil {
		s.h.t.Fatalf("cell %d: %v", idx, res.Err)
	}
	return res.Status
}

// Cells run one at a time replay in a later session with nothing done
// again; an edited cell runs alone, and a cell run again unchanged in
// the same session replays.
func TestInteractiveRunsCellsAsARecipe(t *testing.T) {
	h := newHarness(t)
	effects := func() int { return countLines(h.dir + "/effects") }
	cells := []string{`a = 1`, `b = bump("$DIR/effects", "two %d" % a)`, `c = b + 1`}
	s := h.session()
	for i, code := range cells {
		if got := s.exec(i, code); got != Ran {
			t.Fatalf("cell %d in a new run: %s", i, got)
		}
	}
	if effects() != 1 {
		t.Fatalf("%d effects", effects())
	}
	if got := s.exec(1, cells[1]); got != Replayed {
		t.Errorf("a cell run again unchanged: %s", got)
	}
	s.it.Close(false)

	s = h.session()
	for i, code := range cells[:2] {
		if got := s.exec(i, code); got != Replayed {
			t.Errorf("cell %d in the next interp: %s", i, got)
		}
	}
	if got := s.exec(0, "a = 1  # edited"); got != Ran {
		t.Errorf("an edited cell: %s", got)
	}
	if got := s.exec(1, cells[1]); got != Replayed {
		t.Errorf("the cell after an edit whose values did not change: %s", got)
	}
	if got := s.exec(0, "a = 2"); got != Ran {
		t.Errorf("an edited cell: %s", got)
	}
	if got := s.exec(1, cells[1]); got != Ran {
		t.Errorf("the cell after an edit that changed what it reads: %s", got)
	}
	if effects() != 2 {
		t.Errorf("%d effects, want 2", effects())
	}
	s.it.Close(false)

	// The third cell, not run in the last session, kept its record: the
	// whole recipe, as it last ran, replays the first two and runs the
	// third live (b changed).
	h.write("r.star", "# %%\na = 2\n\n# %%\n"+strings.ReplaceAll(cells[1], "$DIR", h.dir)+"\n\n# %%\nc = b + 1\n")
	if got, _, err := h.run(Options{}); err != nil || got != "replayed replayed ran" || strings.Join(h.reasons, ",") != "2:b changed" {
		t.Errorf("the recipe after the sessions: %s (%v), %v", got, h.reasons, err)
	}
	if got, _, err := h.run(Options{}); err != nil || got != "replayed replayed replayed" {
		t.Errorf("the recipe again: %s, %v", got, err)
	}
}
