package runner

import (
	"context"
	"os"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/lang"
)

// setline keeps a file's text as given, as the stdlib's files.install
// keeps a config file; in check mode it says whether the file differs.
var setline = &builtins.Def{
	Name:      "setline",
	Effectful: true,
	Fn: func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var path, text string
		if err := builtins.Unpack(b, args, kwargs, "path", &path, "text", &text); err != nil {
			return nil, err
		}
		return starlark.None, os.WriteFile(path, []byte(text), 0o644)
	},
	Check: func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) ([]builtins.Drift, bool, error) {
		var path, text string
		if err := builtins.Unpack(b, args, kwargs, "path", &path, "text", &text); err != nil {
			return nil, false, err
		}
		if have, _ := os.ReadFile(path); string(have) != text {
			return []builtins.Drift{{Node: "n-1", What: path + " differs"}}, true, nil
		}
		return nil, true, nil
	},
}

const checkRecipe = `# %% Setup
count = bump("$DIR/effects", "setup")

# %% Config
setline("$DIR/app.conf", "port = 80")

# %% After
bump("$DIR/effects", "after")
`

func (h *harness) check() (*CheckReport, error) {
	h.t.Helper()
	globals := starlark.StringDict{"bump": bump.Builtin(), "setline": setline.Builtin()}
	rec, err := lang.ReadRecipe(h.recipe, globals.Has)
	if err != nil {
		return nil, err
	}
	h.events, h.reasons, h.notices = nil, nil, nil
	r := New(Options{Recipe: rec, Builtins: globals, Events: h, Run: "r", Env: &builtins.Env{Run: "r", Store: h.store}})
	return r.Check(context.Background())
}

func TestCheckFindsDriftAndChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", checkRecipe)
	run := func(o Options) string {
		t.Helper()
		got, _, err := h.runWith(starlark.StringDict{"setline": setline.Builtin()}, o)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := run(Options{}); got != "ran ran ran" {
		t.Fatalf("first run: %s", got)
	}
	calls := func() int {
		n := 0
		cells, _ := h.store.Cells("r")
		for _, c := range cells {
			js, _ := h.store.Calls("r", c.ID)
			n += len(js)
		}
		return n
	}
	journaled := calls()

	report, err := h.check()
	if err != nil || report.Drifted() || report.Calls != 1 || report.Cells != 1 || report.Stopped != "" {
		t.Fatalf("check of an unchanged world: %+v, %v", report, err)
	}

	os.WriteFile(h.dir+"/app.conf", []byte("port = 8080"), 0o644)
	report, err = h.check()
	if err != nil || !report.Drifted() || len(report.Drift) != 1 || report.Drift[0].Cell.Index != 1 || !strings.Contains(report.Drift[0].What, "app.conf differs") {
		t.Fatalf("check after a change by hand: %+v, %v", report, err)
	}
	if b, _ := os.ReadFile(h.dir + "/app.conf"); string(b) != "port = 8080" {
		t.Errorf("the check changed the file: %q", b)
	}
	if n := countLines(h.dir + "/effects"); n != 2 {
		t.Errorf("the check ran effects: %d lines, want the first run's 2", n)
	}
	if n := calls(); n != journaled {
		t.Errorf("the check journaled calls: %d, was %d", n, journaled)
	}

	// --verify: the drifted cell runs again, which repairs it; the rest replays.
	if got := run(Options{Drifted: report.Reasons()}); got != "replayed ran replayed" {
		t.Errorf("a run with the drift: %s (%v)", got, h.reasons)
	}
	if len(h.reasons) != 1 || h.reasons[0] != "1:drifted on n-1: 1 difference" {
		t.Errorf("reasons: %q", h.reasons)
	}
	if b, _ := os.ReadFile(h.dir + "/app.conf"); string(b) != "port = 80" {
		t.Errorf("not repaired: %q", b)
	}
	if report, _ := h.check(); report.Drifted() {
		t.Errorf("drift after the repair: %+v", report.Drift)
	}

	// An edited cell has no record to check against: the check stops there.
	h.write("r.star", strings.Replace(checkRecipe, `"after"`, `"later"`, 1))
	report, err = h.check()
	if err != nil || report.Stopped == "" || !strings.Contains(report.Stopped, "would run live (edited)") || report.Calls != 1 {
		t.Errorf("check of an edited recipe: %+v, %v", report, err)
	}
}
