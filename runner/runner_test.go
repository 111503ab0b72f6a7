package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/secret"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/state"
	"github.com/kumo-dev/kumo/state/pgtest"
	_ "github.com/kumo-dev/kumo/state/sqlite" // the state files are SQLite
)

// bump is a real side effect: it appends a line to a file and returns
// how many lines the file has. Replay must never call it.
var bump = &builtins.Def{
	Name:      "bump",
	Effectful: true,
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
	Name:      "reveal",
	Effectful: true,
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

// makeDef stands for a creating builtin: it appends to a file and says
// it made a resource whose token is its argument.
var makeDef = &builtins.Def{
	Name:      "make",
	Effectful: true,
	Fn: func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var path, token string
		if err := builtins.Unpack(b, args, kwargs, "path", &path, "token", &token); err != nil {
			return nil, err
		}
		bump.Fn(thread, b, starlark.Tuple{starlark.String(path), starlark.String("made " + token)}, nil)
		builtins.CallSiteOf(thread).Effects.Made(state.Resource{Token: token})
		return starlark.String(token), nil
	},
}

// siteDef returns the call site it was called from.
var siteDef = &builtins.Def{
	Name:      "site",
	Effectful: true,
	Fn: func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return starlark.String(builtins.CallSiteOf(thread).Site), nil
	},
}

// readfile is a pure builtin that reads a file kumo knows nothing about:
// a dependency replay cannot see.
var readfile = &builtins.Def{
	Name: "readfile",
	Fn: func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var path string
		if err := builtins.Unpack(b, args, kwargs, "path", &path); err != nil {
			return nil, err
		}
		data, err := os.ReadFile(path)
		return starlark.String(strings.TrimSpace(string(data))), err
	},
}

// knob is a pure builtin with a registered outside input, as spec() has
// the flavor catalog.
var knob = &builtins.Def{
	Name: "knob",
	Fn: func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return starlark.String(knobValue), nil
	},
}

var knobValue = "one"

func init() { builtins.RegisterInput("knob", func() string { return knobValue }) }

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

func countLines(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

type harness struct {
	t       *testing.T
	dir     string
	store   *state.Store
	recipe  string
	events  []string
	reasons []string // "cell:why" of each live cell
	notices []string
	gone    map[string]bool // tokens the World hook reports gone
}

// newHarness runs on a SQLite state, or on a PostgreSQL environment of
// the test server with KUMO_TEST_BACKEND=postgres (make test runs the
// runner's tests both ways).
func newHarness(t *testing.T) *harness {
	dir := t.TempDir()
	var s *state.Store
	var err error
	if os.Getenv("KUMO_TEST_BACKEND") == "postgres" {
		s, err = state.OpenPostgres(pgtest.URL(t), filepath.Join(dir, ".kumo"))
	} else {
		s, err = state.Open(filepath.Join(dir, ".kumo", "state.db"))
	}
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

func (h *harness) CellStarted(c *lang.Cell, s CellStart) {
	if !s.Replay {
		h.reasons = append(h.reasons, fmt.Sprintf("%d:%s", c.Index, s.Reason))
	}
}
func (h *harness) Output(c *lang.Cell, src, stream, text string) {}
func (h *harness) Status(c *lang.Cell, text string)              {}
func (h *harness) Notice(text string)                            { h.notices = append(h.notices, text) }
func (h *harness) CellFinished(c *lang.Cell, r CellResult) {
	h.events = append(h.events, string(r.Status))
}

// run runs the recipe and returns the status of each cell, e.g. "ran ran replayed".
func (h *harness) run(opts Options) (string, *Runner, error) {
	h.t.Helper()
	return h.runWith(nil, opts)
}

// runWith is run with more builtins.
func (h *harness) runWith(more starlark.StringDict, opts Options) (string, *Runner, error) {
	h.t.Helper()
	globals := starlark.StringDict{"bump": bump.Builtin(), "reveal": reveal.Builtin(), "secret": secret.Builtins[0].Builtin(),
		"make": makeDef.Builtin(), "site": siteDef.Builtin(), "readfile": readfile.Builtin(), "knob": knob.Builtin()}
	for k, v := range more {
		globals[k] = v
	}
	rec, err := lang.ReadRecipe(h.recipe, globals.Has)
	if err != nil {
		return "", nil, err
	}
	h.events, h.reasons, h.notices = nil, nil, nil
	opts.Recipe, opts.Builtins, opts.Events = rec, globals, h
	if opts.Remember != nil {
		opts.Overrides = map[string]starlark.Value{}
		for n, raw := range opts.Remember {
			opts.Overrides[n] = lang.ParamValue(raw)
		}
	}
	if opts.World == nil {
		opts.World = func(ctx context.Context, tokens []string) (map[string]string, error) {
			out := map[string]string{}
			for _, t := range tokens {
				if h.gone[t] {
					out[t] = t + " is gone"
				}
			}
			return out, nil
		}
	}
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
	g := r.Interpreter().Globals
	if g["count3"].String() != "3" || g["result"].String() != "30" {
		t.Errorf("replayed globals count3=%v result=%v, want 3 and 30", g["count3"], g["result"])
	}
	if _, ok := g["helper"].(*starlark.Function); !ok {
		t.Errorf("helper is %v, want the function", g["helper"])
	}
}

func TestEditedCellRunsAloneWhenItsOutputsAreUnchanged(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", recipe)
	h.run(Options{})
	// Cell 3 reads tag and helper, not count2: editing cell 2 runs cell 2.
	h.write("r.star", strings.Replace(recipe, `"two %d" % n`, `"two (edited) %d" % n`, 1))
	got, _, err := h.run(Options{})
	if err != nil || got != "replayed replayed ran replayed" {
		t.Fatalf("after editing cell 2: %s, %v", got, err)
	}
	if strings.Join(h.reasons, " ") != "2:edited" {
		t.Errorf("reasons %v", h.reasons)
	}
	if n := countLines(h.dir + "/effects"); n != 4 {
		t.Errorf("effects = %d, want 3 + the edited cell", n)
	}
	// Retitling a cell or adding blank lines is not an edit.
	h.write("r.star", strings.Replace(strings.Replace(recipe, `"two %d" % n`, `"two (edited) %d" % n`, 1), "# %% One", "# %% The first\n", 1))
	if got, _, _ := h.run(Options{}); got != "replayed replayed replayed replayed" {
		t.Errorf("after retitling: %s, want all replayed", got)
	}
}

// An edit that changes a value a later cell reads runs that cell too,
// named in the reason; one that leaves the value as it was does not.
func TestChangedValuesRerunTheirReaders(t *testing.T) {
	h := newHarness(t)
	src := `# %% A
x = bump("$DIR/effects", "a")
label = "v1"
# %% B
bump("$DIR/effects", "b " + label)
# %% C
bump("$DIR/effects", "c")
`
	h.write("r.star", src)
	h.run(Options{})
	h.write("r.star", strings.Replace(src, `"v1"`, `"v2"`, 1))
	got, _, _ := h.run(Options{})
	if got != "ran ran replayed" || strings.Join(h.reasons, " ") != "0:edited 1:label changed" {
		t.Errorf("label changed: %s %v", got, h.reasons)
	}
	// A comment and a new print in A: its outputs are the same values.
	h.write("r.star", strings.Replace(src, `"v1"`, "\"v2\" # the label\nprint(label)", 1))
	if got, _, _ := h.run(Options{}); got != "ran replayed replayed" {
		t.Errorf("outputs unchanged: %s %v", got, h.reasons)
	}
}

func TestParameterChangeRerunsTheCellsThatUseIt(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", recipe)
	h.run(Options{})
	got, r, err := h.run(Options{Remember: map[string]string{"tag": "b"}})
	if err != nil || got != "ran replayed replayed ran" {
		t.Fatalf("with -p tag=b: %s, %v (the parameters cell runs, cells 1-2 do not use tag)", got, err)
	}
	if v := r.Interpreter().Globals["tag"]; v.String() != `"b"` {
		t.Errorf("tag = %v", v)
	}
	if strings.Join(h.reasons, " ") != "3:tag changed" {
		t.Errorf("reasons %v", h.reasons)
	}
	// Same value again: nothing to do.
	if got, _, _ := h.run(Options{Remember: map[string]string{"tag": "b"}}); got != "replayed replayed replayed replayed" {
		t.Errorf("same -p again: %s", got)
	}
	// Editing a default counts as a change of that parameter: only cell
	// 2 reads n.
	h.write("r.star", strings.Replace(recipe, "n = 1", "n = 2", 1))
	if got, _, _ := h.run(Options{Remember: map[string]string{"tag": "b"}}); got != "ran replayed ran replayed" {
		t.Errorf("after editing n's default: %s, want cell 2 live", got)
	}
	// Unknown names are refused before anything runs.
	before := countLines(h.dir + "/effects")
	_, _, err = h.run(Options{Remember: map[string]string{"nope": "1"}})
	if !starkit.IsInputError(err) || countLines(h.dir+"/effects") != before {
		t.Errorf("unknown -p: %v, effects %d -> %d", err, before, countLines(h.dir+"/effects"))
	}
}

// A parameter reaches cells through values derived from it: a cell runs
// again when the value it reads changed, not when the parameter did.
func TestParametersReachCellsThroughDerivedValues(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", `# %% [parameters]
students = 3
# %% Seats
seats = students * 2
big = students > 10
# %% Rooms
bump("$DIR/effects", "rooms for %d" % seats)
# %% Hall
bump("$DIR/effects", "hall: %s" % big)
`)
	h.run(Options{})
	got, _, _ := h.run(Options{Remember: map[string]string{"students": "5"}})
	if got != "ran ran ran replayed" {
		t.Errorf("students 3 -> 5: %s (big is still False: Hall replays)", got)
	}
	got, _, _ = h.run(Options{Remember: map[string]string{"students": "20"}})
	if got != "ran ran ran ran" {
		t.Errorf("students 5 -> 20: %s", got)
	}
}

// Dependencies through the world are declared: [after: A] runs when A
// ran live; [always] runs every time.
func TestAfterAndAlwaysTags(t *testing.T) {
	h := newHarness(t)
	src := `# %% Write config
bump("$DIR/effects", "config v1")
# %% Restart [after: Write config]
bump("$DIR/effects", "restart")
# %% Check [always]
bump("$DIR/effects", "check")
`
	h.write("r.star", src)
	h.run(Options{})
	if got, _, _ := h.run(Options{}); got != "replayed replayed ran" || h.reasons[0] != "2:[always]" {
		t.Errorf("unchanged: %s %v", got, h.reasons)
	}
	h.write("r.star", strings.Replace(src, "v1", "v2", 1))
	got, _, _ := h.run(Options{})
	if got != "ran ran ran" || h.reasons[1] != `1:cell 0 "Write config" ran` {
		t.Errorf("config edited: %s %v", got, h.reasons)
	}
	if got, _, _ := h.run(Options{}); got != "replayed replayed ran" {
		t.Errorf("then unchanged: %s", got)
	}
}

// Inserting, removing and moving cells leaves the others their records.
func TestCellsKeepTheirRecordsWhenOthersMove(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", recipe)
	h.run(Options{})
	inserted := strings.Replace(recipe, "# %% Two", "# %% New one\nbump(\"$DIR/effects\", \"new\")\n\n# %% Two", 1)
	h.write("r.star", inserted)
	if got, _, _ := h.run(Options{}); got != "replayed replayed ran replayed replayed" {
		t.Errorf("after inserting a cell: %s", got)
	}
	h.write("r.star", recipe) // and removing it again
	if got, _, _ := h.run(Options{}); got != "replayed replayed replayed replayed" {
		t.Errorf("after removing it: %s", got)
	}
	if n := countLines(h.dir + "/effects"); n != 4 {
		t.Errorf("effects = %d, want 3 + the new cell", n)
	}
}

// A function's digest follows its code and what it closes over: a cell
// calling a function whose body changed runs again.
func TestFunctionsAreComparedByCodeAndGlobals(t *testing.T) {
	h := newHarness(t)
	src := `# %% Def
suffix = "!"
def shout(s):
    return s.upper() + suffix
# %% Use
bump("$DIR/effects", shout("hi"))
`
	h.write("r.star", src)
	h.run(Options{})
	h.write("r.star", strings.Replace(src, "s.upper()", "s.lower()", 1))
	if got, _, _ := h.run(Options{}); got != "ran ran" || h.reasons[1] != "1:shout changed" {
		t.Errorf("function body edited: %s %v", got, h.reasons)
	}
	h.write("r.star", strings.Replace(src, `suffix = "!"`, `suffix = "?"`, 1))
	if got, _, _ := h.run(Options{}); got != "ran ran" {
		t.Errorf("a global the function reads changed: %s %v", got, h.reasons)
	}
}

// Editing a module re-runs the cells that load it and use what it
// defines.
func TestEditedModuleRerunsItsUsers(t *testing.T) {
	h := newHarness(t)
	h.write("conf.star", "def target():\n    return \"$DIR/effects\"\n")
	h.write("r.star", "# %% Load\nload(\"conf.star\", \"target\")\n# %% Use\nbump(target(), \"x\")\n# %% Other\nbump(\"$DIR/effects\", \"y\")\n")
	h.run(Options{})
	h.write("conf.star", "def target():\n    return \"$DIR/effects2\"\n")
	got, _, _ := h.run(Options{})
	if got != "ran ran replayed" || h.reasons[0] != "0:module conf.star changed" {
		t.Errorf("module edited: %s %v", got, h.reasons)
	}
	if countLines(h.dir+"/effects2") != 1 {
		t.Error("the cell using the module did not run with its new code")
	}
}

// A builtin's outside input (spec()'s flavor catalog) is an input of the
// cells that call it.
func TestBuiltinOutsideInputs(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", "# %% A\nbump(\"$DIR/effects\", knob())\n# %% B\nbump(\"$DIR/effects\", \"b\")\n")
	h.run(Options{})
	knobValue = "two"
	defer func() { knobValue = "one" }()
	if got, _, _ := h.run(Options{}); got != "ran replayed" || h.reasons[0] != "0:knob changed" {
		t.Errorf("catalog changed: %s %v", got, h.reasons)
	}
}

// Live calls get a site that stays the same when the cell runs again:
// the Nth call of a builtin in that cell record.
func TestCallSitesAreStable(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", "# %% A\nx = 1\n# %% B\na = site()\nb = site()\nprint(a, b)\n")
	_, r, _ := h.run(Options{})
	a, b := r.Interpreter().Globals["a"].String(), r.Interpreter().Globals["b"].String()
	if a == b || !strings.HasSuffix(a, `/site#1"`) || !strings.HasSuffix(b, `/site#2"`) {
		t.Fatalf("sites %s %s", a, b)
	}
	// Inserted before and edited: the cell keeps its record, so its sites.
	h.write("r.star", "# %% Z\nz = 0\n# %% A\nx = 1\n# %% B\na = site()\nb = site()\nprint(b, a)\n")
	_, r, _ = h.run(Options{})
	if got := r.Interpreter().Globals["a"].String(); got != a {
		t.Errorf("site after an edit = %s, want %s", got, a)
	}
}

// What a replayed cell made is checked before the first live cell: a
// cell whose work vanished runs again, and the run restarts if that cell
// was already replayed. Nothing is asked when nothing runs live.
func TestVanishedWorkRerunsItsCell(t *testing.T) {
	h := newHarness(t)
	src := `# %% Make
tok = make("$DIR/effects", "t1")
# %% Use
bump("$DIR/effects", "use " + tok)
# %% Last
bump("$DIR/effects", "last v1")
`
	h.write("r.star", src)
	h.run(Options{})
	h.gone = map[string]bool{"t1": true}
	asked := 0
	world := func(ctx context.Context, tokens []string) (map[string]string, error) {
		asked++
		if len(tokens) != 1 || tokens[0] != "t1" {
			t.Errorf("asked about %v", tokens)
		}
		return map[string]string{"t1": "t1 is gone"}, nil
	}
	if got, _, _ := h.run(Options{World: world}); got != "replayed replayed replayed" || asked != 0 {
		t.Errorf("nothing live: %s, asked %d times", got, asked)
	}
	h.write("r.star", strings.Replace(src, "last v1", "last v2", 1))
	got, _, err := h.run(Options{World: world})
	if err != nil || got != "ran replayed ran" || asked != 1 {
		t.Errorf("a live cell after a replayed one whose work vanished: %s, %v, asked %d", got, err, asked)
	}
	if h.reasons[0] != "0:t1 is gone" || len(h.notices) != 1 || !strings.Contains(h.notices[0], `t1 is gone: cell 0 "Make" runs live again`) {
		t.Errorf("reasons %v notices %v", h.reasons, h.notices)
	}
	// Each cell was reported once, though the run started over.
	if len(h.events) != 3 {
		t.Errorf("events %v", h.events)
	}
}

// What a later cell of the recipe deleted is meant to be gone.
func TestDeletedByTheRecipeIsNotVanished(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", "# %% Make\ntok = make(\"$DIR/effects\", \"t1\")\n# %% Edit me\nbump(\"$DIR/effects\", \"v1\")\n")
	h.run(Options{})
	// Record a deletion of t1 by the second cell, as a teardown cell would.
	cells, _ := h.store.Cells("r")
	h.store.AppendCall("r", state.Call{Cell: cells[1].ID, Seq: 9, Builtin: "x", ArgsDigest: "d", Args: "x()", Result: `{"t":"none"}`, Deleted: []state.Effect{{Token: "t1"}}})
	h.gone = map[string]bool{"t1": true}
	h.write("r.star", "# %% Make\ntok = make(\"$DIR/effects\", \"t1\")\n# %% Edit me\nbump(\"$DIR/effects\", \"v2\")\n")
	if got, _, _ := h.run(Options{}); got != "replayed ran" {
		t.Errorf("deleted by the recipe: %s %v", got, h.notices)
	}
}

func TestFromAndOnly(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", recipe)
	h.run(Options{})
	if got, _, err := h.run(Options{From: "2"}); err != nil || got != "replayed replayed ran ran" {
		t.Errorf("--from 2: %s, %v", got, err)
	}
	// --only replays just the cells the one it runs depends on: Two
	// reads n (the parameters), not what One defines.
	if got, _, err := h.run(Options{Only: "Two"}); err != nil || got != "replayed skipped ran skipped" {
		t.Errorf("--only Two: %s, %v", got, err)
	}
	if got, _, err := h.run(Options{Only: "Three"}); err != nil || got != "replayed replayed skipped ran" {
		t.Errorf("--only Three (uses helper from One): %s, %v", got, err)
	}
	if _, _, err := h.run(Options{From: "9"}); !starkit.IsInputError(err) {
		t.Errorf("--from 9: %v, want an input error", err)
	}
}

// --only follows values through cells that change them in place.
func TestOnlyReplaysWhatChangesItsInputs(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", `# %% A
names = ["a"]
# %% B
names.append("b")
# %% C
other = 1
# %% D
bump("$DIR/effects", ",".join(names))
`)
	h.run(Options{})
	got, r, err := h.run(Options{Only: "D"})
	if err != nil || got != "replayed replayed skipped ran" {
		t.Errorf("--only D: %s, %v", got, err)
	}
	if v := r.Interpreter().Globals["names"].String(); v != `["a", "b"]` {
		t.Errorf("names = %s", v)
	}
}

func TestOnlyNeedsEarlierCellsDone(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", recipe)
	_, _, err := h.run(Options{Only: "3"})
	if !starkit.IsInputError(err) || !strings.Contains(err.Error(), `--only 3: cell 1 "One" must run live first (new)`) {
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
	got, _, err = h.run(Options{Remember: map[string]string{"FAIL": "False"}})
	if err != nil || got != "ran replayed replayed ran" {
		t.Fatalf("after the fix: %s, %v", got, err)
	}
	if n := countLines(h.dir + "/effects"); n != 3 {
		t.Errorf("effects = %d, want 3 (cells 1-2 not repeated)", n)
	}
}

func TestDivergenceStopsReplay(t *testing.T) {
	h := newHarness(t)
	h.write("target", "$DIR/effects")
	src := "# %% One\nbump(readfile(\"$DIR/target\"), \"x\")\n# %% Two\nbump(\"$DIR/effects\", \"y\")\n# %% Three\nz = 1\n"
	h.write("r.star", src)
	if _, _, err := h.run(Options{}); err != nil {
		t.Fatal(err)
	}
	// The cell's source and inputs are unchanged, but a file it reads in
	// a way kumo cannot see now says something else.
	h.write("target", "$DIR/elsewhere")
	h.write("r.star", strings.Replace(src, "z = 1", "z = 2", 1))
	got, _, err := h.run(Options{})
	var div *DivergenceError
	if !errors.As(err, &div) {
		t.Fatalf("got %s, %v; want a divergence", got, err)
	}
	msg := err.Error()
	for _, want := range []string{`cell 0 "One"`, "call #1", h.dir + "/effects", h.dir + "/elsewhere", "kumo run " + h.recipe + " --from 0"} {
		if !strings.Contains(msg, want) {
			t.Errorf("divergence message lacks %q:\n%s", want, msg)
		}
	}
	if got != "failed skipped skipped" {
		t.Errorf("statuses %s, want failed skipped skipped", got)
	}
	if _, err := os.Stat(h.dir + "/elsewhere"); err == nil {
		t.Error("the diverging call was executed")
	}
	// --from runs it live, which resolves it.
	if got, _, err := h.run(Options{From: "0"}); err != nil || got != "ran ran ran" {
		t.Errorf("--from 0: %s, %v", got, err)
	}
}

func TestParametersCellCannotTouchTheWorld(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", "# %% [parameters]\nx = bump(\"$DIR/effects\")\n")
	_, _, err := h.run(Options{})
	if !starkit.IsInputError(err) || countLines(h.dir+"/effects") != 0 {
		t.Errorf("effect in the parameters cell: %v", err)
	}
}

func TestSecretsStayOutOfTheState(t *testing.T) {
	if os.Getenv("KUMO_TEST_BACKEND") == "postgres" {
		t.Skip("reads the SQLite file")
	}
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
	cells, _ := s.Cells("r")
	calls, _ := s.Calls("r", cells[0].ID)
	if len(calls) != 2 || !strings.Contains(calls[0].Args, "<secret db_password>") || !strings.Contains(calls[0].Result, "********") {
		t.Errorf("journal = %+v, want the name in args and a masked result", calls)
	}
	if !strings.Contains(cells[0].Output.String(), "the password is ********") {
		t.Errorf("cell output = %q, want the printed value masked", cells[0].Output)
	}
}

func TestStepHookPausesBeforeLiveCellsOnly(t *testing.T) {
	h := newHarness(t)
	h.write("r.star", recipe)
	h.run(Options{From: "3"}) // cells 1-2 succeed once so they can replay
	var asked []int
	stop := errors.New("user stopped")
	step := func(ctx context.Context, c *lang.Cell, reason string) error {
		asked = append(asked, c.Index)
		return stop
	}
	h.write("r.star", strings.Replace(recipe, `"three " + tag`, `"three (edited) " + tag`, 1))
	got, _, err := h.run(Options{Step: step})
	if err != nil {
		t.Fatalf("a stopped run is not a failure: %v", err)
	}
	if got != "replayed replayed replayed skipped" || len(asked) != 1 || asked[0] != 3 {
		t.Errorf("statuses %q, asked before %v; want replayed cells unasked and a stop before cell 3", got, asked)
	}
	if run, _, _ := h.store.GetRun("r"); run.Status != "stopped" {
		t.Errorf("run status %q", run.Status)
	}
	before := countLines(h.dir + "/effects")
	if got, _, _ := h.run(Options{Step: func(context.Context, *lang.Cell, string) error { return nil }}); got != "replayed replayed replayed ran" {
		t.Errorf("stepping on: %s", got)
	}
	if countLines(h.dir+"/effects") != before+1 {
		t.Error("the stepped cell did not run")
	}
}
