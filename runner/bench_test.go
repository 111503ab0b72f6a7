package runner

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/state"
)

// echo is a journaled builtin with no cost of its own, so that the
// benchmarks measure the journal: describing, digesting, encoding and a
// durable commit per call.
var echo = &builtins.Def{
	Name:      "echo",
	Effectful: true,
	Fn: func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return starlark.String(fmt.Sprint(args)), nil
	},
}

// benchRecipe is 50 cells of 10 journaled calls each.
func benchRecipe() string { return recipeOf(50, 10) }

// recipeOf is cells cells of calls journaled calls each.
func recipeOf(cells, calls int) string {
	var b strings.Builder
	for c := 0; c < cells; c++ {
		fmt.Fprintf(&b, "# %%%% Cell %d\n", c)
		for i := 0; i < calls; i++ {
			fmt.Fprintf(&b, "r%d_%d = echo(\"node-%d\", \"apt-get install -y pkg%d\")\n", c, i, i, c)
		}
	}
	return b.String()
}

func runOnce(b *testing.B, store *state.Store, rec *lang.Recipe, globals starlark.StringDict) {
	r := New(Options{Recipe: rec, Run: "bench", Builtins: globals, Env: &builtins.Env{Run: "bench", Store: store}})
	if _, err := r.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkJournaledCall is the cost the journal adds to one live call.
// benchSetup opens a state file on disk and parses the benchmark recipe.
func benchSetup(b *testing.B) (*state.Store, *lang.Recipe, starlark.StringDict) {
	return benchSetupOf(b, benchRecipe())
}

func benchSetupOf(b *testing.B, src string) (*state.Store, *lang.Recipe, starlark.StringDict) {
	store, err := state.Open(filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	globals := starlark.StringDict{"echo": echo.Builtin()}
	rec, err := lang.ParseRecipe("bench.star", src, globals.Has)
	if err != nil {
		b.Fatal(err)
	}
	return store, rec, globals
}

func BenchmarkJournaledCall(b *testing.B) {
	store, rec, globals := benchSetup(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		store.ForgetRun("bench")
		b.StartTimer()
		runOnce(b, store, rec, globals) // 500 live calls
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*500), "µs/call")
}

// BenchmarkReplay50Cells500Calls replays the whole recipe from the journal.
func BenchmarkReplay50Cells500Calls(b *testing.B) {
	store, rec, globals := benchSetup(b)
	runOnce(b, store, rec, globals)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runOnce(b, store, rec, globals)
	}
}

// BenchmarkReplay10000Calls replays 100 cells of 100 journaled calls
// each: the journal at scale (issue 11: whole-process under 1 s, which
// bench/journal.sh measures with the kumo binary).
func BenchmarkReplay10000Calls(b *testing.B) {
	store, rec, globals := benchSetupOf(b, recipeOf(100, 100))
	runOnce(b, store, rec, globals)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runOnce(b, store, rec, globals)
	}
}

// BenchmarkReplayWithOneEditedCell edits cell 25 of 50 (alternately
// editing and restoring it): reactive replay runs that one cell live and
// replays the 49 others, whose inputs did not change.
func BenchmarkReplayWithOneEditedCell(b *testing.B) {
	store, rec, globals := benchSetup(b)
	runOnce(b, store, rec, globals)
	edited, err := lang.ParseRecipe("bench.star", strings.Replace(benchRecipe(), "r25_0 = echo(", "r25_0 = echo(\"edited\", ", 1), globals.Has)
	if err != nil {
		b.Fatal(err)
	}
	var sum *Summary
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := rec
		if i%2 == 0 {
			r = edited
		}
		run := New(Options{Recipe: r, Run: "bench", Builtins: globals, Env: &builtins.Env{Run: "bench", Store: store}})
		if sum, err = run.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		ran := 0
		for _, c := range sum.Cells {
			if c.Status == Ran {
				ran++
			}
		}
		if ran != 1 {
			b.Fatalf("%d cells ran live, want 1", ran)
		}
	}
}
