package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/secret"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/lang/state"
)

// bump is a real side effect: it appends a line to a file and returns
// how many lines the file has. Replay must never call it.
var bump = &builtins.Def{
	Name:    "bump",
	Journal: true,
	Fn: func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var path, line string
		if err := builtins.Unpack(b, args, kwargs, "path", &path, "line?", &line); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		f.WriteString(line + "\n")
		f.Close()
		return starlark.MakeInt(countLines(path)), nil
	},
}

// reveal returns text holding a secret's value, as a command's output might.
var reveal = &builtins.Def{
	Name:    "reveal",
	Journal: true,
	Fn: func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var s starlark.Value
		if err := builtins.Unpack(b, args, kwargs, "s", &s); err != nil {
			return nil, err
		}
		env, _ := builtins.FromThread(thread)
		v, _, err := builtins.TextArg(env, s)
		return starlark.String("the password is " + v), err
	},
}

func countLines(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

type harness struct {
	t      *testing.T
	dir    string
	store  *state.Store
	recipe string
	events []string
}

func newHarness(t *testing.T) *harness {
	dir := t.TempDir()
	s, err := state.Open(filepath.Join(dir, ".kumo", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &harness{t: t, dir: dir, store: s, recipe: filepath.Join(dir, "r.star")}
}

func (h *harness) write(name, src string) {
	h.t.Helper()
	src = strings.ReplaceAll(src, "$DIR", h.dir)
	if err := os.WriteFile(filepath.Join(h.dir, name), []byte(src), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) CellStarted(c *lang.Cell, replay bool)         {}
func (h *harness) Output(c *lang.Cell, src, stream, text string) {}
func (h *harness) CellFinished(c *lang.Cell, r CellResult) {
	h.events = append(h.events, r.Status)
}

// run runs the recipe and returns the status of each cell, e.g. "ran ran replayed".
func (h *harness) run(opts Options) (string, *Runner, error) {
	h.t.Helper()
	globals := starlark.StringDict{"bump": bump.Builtin(), "reveal": reveal.Builtin(), "secret": secret.Builtins[0].Builtin()}
	rec, err := lang.ReadRecipe(h.recipe, globals.Has)
	if err != nil {
		return "", nil, err
	}
	h.events = nil
	opts.Recipe, opts.Builtins, opts.Events = rec, globals, h
	if opts.Run == "" {
		opts.Run = "r"
	}
	opts.Env = &builtins.Env{Run: opts.Run, Store: h.store}
	r := New(opts)
	_, err = r.Run(context.Background())
	return strings.Join(h.events, " "), r, err
}

const recipe = `# %% [parameters]
n = 1
tag = "a"

# %% One
count1 = bump("$DIR/effects", "one")
def helper(x):
    return x * 10

# %% Two
count2 = bump("$DIR/effects", "two %d" % n)

# %% Three
count3 = bump("$DIR/effects", "three " + tag)
result = helper(count3)
`

func TestReplayHasNoSideEffectsAndRebuildsGlobals(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", recipe)
	got, _, err := h.run(Options{})
	if err != nil || got != "ran ran ran ran" {
		t.Fatalf("first run: %s, %v", got, err)
	}
	if n := countLines(h.dir + "/effects"); n != 3 {
		t.Fatalf("first run made %d effects, want 3", n)
	}
	got, r, err := h.run(Options{})
	if err != nil || got != "replayed replayed replayed replayed" {
		t.Fatalf("second run: %s, %v", got, err)
	}
	if n := countLines(h.dir + "/effects"); n != 3 {
		t.Errorf("replay made %d new effects, want 0", n-3)
	}
	// Globals come back exactly: journaled results and functions.
	g := r.Session().Globals
	if g["count3"].String() != "3" || g["result"].String() != "30" {
		t.Errorf("replayed globals count3=%v result=%v, want 3 and 30", g["count3"], g["result"])
	}
	if _, ok := g["helper"].(*starlark.Function); !ok {
		t.Errorf("helper is %v, want the function", g["helper"])
	}
}

func TestEditedCellRunsLiveFromThereOn(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", recipe)
	h.run(Options{})
	h.write("r.star", strings.Replace(recipe, `"two %d" % n`, `"two (edited) %d" % n`, 1))
	got, _, err := h.run(Options{})
	if err != nil || got != "replayed replayed ran ran" {
		t.Fatalf("after editing cell 2: %s, %v", got, err)
	}
	if n := countLines(h.dir + "/effects"); n != 5 {
		t.Errorf("effects = %d, want 3 + 2 re-run cells", n)
	}
	// Retitling a cell or adding blank lines is not an edit.
	h.write("r.star", strings.Replace(strings.Replace(recipe, `"two %d" % n`, `"two (edited) %d" % n`, 1), "# %% One", "# %% The first\n", 1))
	if got, _, _ := h.run(Options{}); got != "replayed replayed replayed replayed" {
		t.Errorf("after retitling: %s, want all replayed", got)
	}
}

func TestParameterChangeRerunsTheCellsThatUseIt(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", recipe)
	h.run(Options{})
	got, r, err := h.run(Options{Overrides: map[string]string{"tag": "b"}})
	if err != nil || got != "ran replayed replayed ran" {
		t.Fatalf("with -p tag=b: %s, %v (the parameters cell runs, cells 1-2 do not use tag)", got, err)
	}
	if v := r.Session().Globals["tag"]; v.String() != `"b"` {
		t.Errorf("tag = %v", v)
	}
	// Same value again: nothing to do.
	if got, _, _ := h.run(Options{Overrides: map[string]string{"tag": "b"}}); got != "replayed replayed replayed replayed" {
		t.Errorf("same -p again: %s", got)
	}
	// Editing a default counts as a change of that parameter.
	h.write("r.star", strings.Replace(recipe, "n = 1", "n = 2", 1))
	if got, _, _ := h.run(Options{Overrides: map[string]string{"tag": "b"}}); got != "ran replayed ran ran" {
		t.Errorf("after editing n's default: %s, want cell 2 onwards live", got)
	}
	// Unknown names are refused before anything runs.
	before := countLines(h.dir + "/effects")
	_, _, err = h.run(Options{Overrides: map[string]string{"nope": "1"}})
	if !lang.IsInputError(err) || countLines(h.dir+"/effects") != before {
		t.Errorf("unknown -p: %v, effects %d -> %d", err, before, countLines(h.dir+"/effects"))
	}
}

func TestFromAndOnly(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", recipe)
	h.run(Options{})
	if got, _, err := h.run(Options{From: "2"}); err != nil || got != "replayed replayed ran ran" {
		t.Errorf("--from 2: %s, %v", got, err)
	}
	if got, _, err := h.run(Options{Only: "Two"}); err != nil || got != "replayed replayed ran skipped" {
		t.Errorf("--only Two: %s, %v", got, err)
	}
	if _, _, err := h.run(Options{From: "9"}); !lang.IsInputError(err) {
		t.Errorf("--from 9: %v, want an input error", err)
	}
}

func TestOnlyNeedsEarlierCellsDone(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", recipe)
	_, _, err := h.run(Options{Only: "3"})
	if !lang.IsInputError(err) || !strings.Contains(err.Error(), "has not succeeded") {
		t.Errorf("--only on a fresh run: %v", err)
	}
	if n := countLines(h.dir + "/effects"); n != 0 {
		t.Errorf("refused --only still made %d effects", n)
	}
}

func TestFailedCellResumes(t *testing.T) {
	h := newHarness(t)
	failing := strings.Replace(recipe, "# %% Three\n", "# %% Three\nif not '$DIR/fixed' in [l.strip() for l in []]:\n    pass\nfail('boom') if count2 < 100 and FAIL else None\n", 1)
	h.write("r.star", strings.Replace(failing, "tag = \"a\"", "tag = \"a\"\nFAIL = True", 1))
	got, _, err := h.run(Options{})
	if err == nil || got != "ran ran ran failed" {
		t.Fatalf("first run: %s, %v", got, err)
	}
	got, _, err = h.run(Options{Overrides: map[string]string{"FAIL": "False"}})
	if err != nil || got != "ran replayed replayed ran" {
		t.Fatalf("after the fix: %s, %v", got, err)
	}
	if n := countLines(h.dir + "/effects"); n != 3 {
		t.Errorf("effects = %d, want 3 (cells 1-2 not repeated)", n)
	}
}

func TestDivergenceStopsReplay(t *testing.T) {
	h := newHarness(t)
	h.write("conf.star", `target = "$DIR/effects"`)
	src := "# %% One\nload(\"conf.star\", \"target\")\nbump(target, \"x\")\n# %% Two\nbump(target, \"y\")\n"
	h.write("r.star", src)
	if _, _, err := h.run(Options{}); err != nil {
		t.Fatal(err)
	}
	// The cell's source is unchanged, but what it loads now differs.
	h.write("conf.star", `target = "$DIR/elsewhere"`)
	got, _, err := h.run(Options{})
	var div *DivergenceError
	if !errors.As(err, &div) {
		t.Fatalf("got %s, %v; want a divergence", got, err)
	}
	msg := err.Error()
	for _, want := range []string{`cell 0 "One"`, "call #1", h.dir + "/effects", h.dir + "/elsewhere", "--from 0"} {
		if !strings.Contains(msg, want) {
			t.Errorf("divergence message lacks %q:\n%s", want, msg)
		}
	}
	if got != "failed skipped" {
		t.Errorf("statuses %s, want failed skipped", got)
	}
	if _, err := os.Stat(h.dir + "/elsewhere"); err == nil {
		t.Error("the diverging call was executed")
	}
	// --from runs it live, which resolves it.
	if got, _, err := h.run(Options{From: "0"}); err != nil || got != "ran ran" {
		t.Errorf("--from 0: %s, %v", got, err)
	}
}

func TestParametersCellCannotTouchTheWorld(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", "# %% [parameters]\nx = bump(\"$DIR/effects\")\n")
	_, _, err := h.run(Options{})
	if !lang.IsInputError(err) || countLines(h.dir+"/effects") != 0 {
		t.Errorf("effect in the parameters cell: %v", err)
	}
}

func TestSecretsStayOutOfTheState(t *testing.T) {
	h := newHarness(t)
	t.Setenv("KUMO_SECRET_DB_PASSWORD", "hunter2-very-secret")
	h.write("r.star", "# %% A\npw = secret(\"db_password\")\nprint(reveal(pw))\nx = reveal(pw)\n")
	if _, _, err := h.run(Options{}); err != nil {
		t.Fatal(err)
	}
	h.store.Close()
	raw, err := os.ReadFile(h.store.Path)
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(h.store.Path + "-wal")
	if strings.Contains(string(raw)+string(wal), "hunter2") {
		t.Error("the secret's value is in the state file")
	}
	s, _ := state.Open(h.store.Path)
	defer s.Close()
	calls, _ := s.Calls("r", 0)
	if len(calls) != 2 || !strings.Contains(calls[0].Args, "<secret db_password>") || !strings.Contains(calls[0].Result, "********") {
		t.Errorf("journal = %+v, want the name in args and a masked result", calls)
	}
	cells, _ := s.Cells("r")
	if !strings.Contains(cells[0].Output, "the password is ********") {
		t.Errorf("cell output = %q, want the printed value masked", cells[0].Output)
	}
}

func TestStepHookPausesBeforeLiveCellsOnly(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", recipe)
	h.run(Options{From: "3"}) // cells 1-2 succeed once so they can replay
	var asked []int
	stop := errors.New("user stopped")
	step := func(ctx context.Context, c *lang.Cell) error {
		asked = append(asked, c.Index)
		return stop
	}
	h.write("r.star", strings.Replace(recipe, `"three " + tag`, `"three (edited) " + tag`, 1))
	got, _, err := h.run(Options{Step: step})
	if err != nil {
		t.Fatalf("a stopped run is not a failure: %v", err)
	}
	if got != "replayed replayed replayed" || len(asked) != 1 || asked[0] != 3 {
		t.Errorf("statuses %q, asked before %v; want replayed cells unasked and a stop before cell 3", got, asked)
	}
	if run, _, _ := h.store.GetRun("r"); run.Status != "stopped" {
		t.Errorf("run status %q", run.Status)
	}
	before := countLines(h.dir + "/effects")
	if got, _, _ := h.run(Options{Step: func(context.Context, *lang.Cell) error { return nil }}); got != "replayed replayed replayed ran" {
		t.Errorf("stepping on: %s", got)
	}
	if countLines(h.dir+"/effects") != before+1 {
		t.Error("the stepped cell did not run")
	}
}
