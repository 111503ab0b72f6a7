package fleet

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/providers/local"
	"github.com/kumo-dev/kumo/state"
	_ "github.com/kumo-dev/kumo/state/sqlite" // the state files are SQLite
)

// The test binary doubles as the local provider's node server.
func TestMain(m *testing.M) {
	local.ServeIfAsked()
	os.Exit(m.Run())
}

// fixture is an engine on a state file and the real local provider.
type fixture struct {
	t     *testing.T
	eng   *Engine
	local *local.Provider
	notes []string
}

func (f *fixture) Note(text string) { f.notes = append(f.notes, text) }
func (f *fixture) Status(string)    {}

func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	store, err := state.Open(filepath.Join(dir, ".kumo", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	lp := local.New(filepath.Join(dir, ".kumo", "local"))
	lp.ServerCommand = []string{os.Args[0], "node-server"}
	f := &fixture{t: t, local: lp}
	f.eng = &Engine{Store: store, Run: "r", Providers: map[string]providers.Provider{"local": lp}, Report: f}
	t.Cleanup(func() {
		f.eng.Destroy(context.Background())
		store.Close()
	})
	return f
}

var spec = Spec{Provider: "local", Flavor: "small", Fields: map[string]any{"cpus": 1}}

// nodesAtProvider counts the nodes the provider has for the run: counted
// outside the state, from what the provider holds.
func (f *fixture) nodesAtProvider() int {
	list, err := f.local.List(context.Background(), "r", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return len(list)
}

func (f *fixture) unit(name string) Unit {
	u, err := f.eng.Unit("g", name)
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *fixture) noted(want string) {
	f.t.Helper()
	for _, n := range f.notes {
		if strings.Contains(n, want) {
			return
		}
	}
	f.t.Errorf("no note says %q; notes: %q", want, f.notes)
}

func call(site string) Call { return Call{Site: site, Effects: &state.Effects{}} }

func TestCreateUnitConvergesAtItsSite(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := call("1/UnitGroup.create_unit#1")
	if _, err := f.eng.CreateUnit(ctx, c, "g", "web", spec, 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	if made, _ := c.Effects.Lists(); len(made) != 3 { // the unit and its two nodes
		t.Errorf("made %v", made)
	}
	// The same call again: nothing is made, and it says so.
	again := call("1/UnitGroup.create_unit#1")
	if _, err := f.eng.CreateUnit(ctx, again, "g", "web", spec, 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := f.nodesAtProvider(); n != 2 {
		t.Fatalf("%d nodes after the same call twice, want 2", n)
	}
	f.noted("g/web: 2 nodes made by this call before still there (web-1, web-2)")
	if made, _ := again.Effects.Lists(); len(made) != 3 {
		t.Errorf("the call again did not claim what it made: %v", made)
	}
	// A changed count converges, both ways.
	f.eng.CreateUnit(ctx, call("1/UnitGroup.create_unit#1"), "g", "web", spec, 3, time.Minute)
	f.noted("g/web: adding 1 node (web-3) to the 2 made by this call before")
	if n := f.nodesAtProvider(); n != 3 {
		t.Fatalf("%d nodes after nodes=3, want 3", n)
	}
	f.eng.CreateUnit(ctx, call("1/UnitGroup.create_unit#1"), "g", "web", spec, 1, time.Minute)
	f.noted("g/web: this call made 3 node(s) and now asks for 1: deleting web-2, web-3")
	if n := f.nodesAtProvider(); n != 1 {
		t.Fatalf("%d nodes after nodes=1, want 1", n)
	}
}

func TestCreateUnitFromElsewhereIsAGet(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.eng.CreateUnit(ctx, call("1/UnitGroup.create_unit#1"), "g", "web", spec, 2, time.Minute)
	if _, err := f.eng.CreateUnit(ctx, call("5/UnitGroup.create_unit#1"), "g", "web", spec, 2, time.Minute); err != nil {
		t.Errorf("the same unit from another cell: %v", err)
	}
	_, err := f.eng.CreateUnit(ctx, call("5/UnitGroup.create_unit#1"), "g", "web", spec, 4, time.Minute)
	if !starkit.IsInputError(err) || !strings.Contains(err.Error(), "already exists with 2 nodes; change it where it is made") {
		t.Errorf("another size from another cell: %v", err)
	}
	other := spec
	other.Fields = map[string]any{"cpus": 2}
	_, err = f.eng.CreateUnit(ctx, call("1/UnitGroup.create_unit#1"), "g", "web", other, 2, time.Minute)
	if !starkit.IsInputError(err) || !strings.Contains(err.Error(), "kumo does not change a unit's spec in place") {
		t.Errorf("another spec: %v", err)
	}
	if n := f.nodesAtProvider(); n != 2 {
		t.Errorf("%d nodes, want 2: refused calls made or deleted nodes", n)
	}
}

func TestAddNodesConverges(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.eng.CreateUnit(ctx, call("1/UnitGroup.create_unit#1"), "g", "web", spec, 1, time.Minute)
	add := func(n int) []Node {
		t.Helper()
		nodes, err := f.eng.AddNodes(ctx, call("2/Unit.add_nodes#1"), f.unit("web"), n, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return nodes
	}
	first := add(2)
	if again := add(2); len(again) != 2 || again[0].ID != first[0].ID || again[1].ID != first[1].ID {
		t.Errorf("add_nodes(2) twice: %v then %v", names(rowsOf(first)), names(rowsOf(again)))
	}
	if n := f.nodesAtProvider(); n != 3 {
		t.Errorf("%d nodes, want 1 + 2", n)
	}
	add(3)
	add(1)
	if n := f.nodesAtProvider(); n != 2 {
		t.Errorf("%d nodes after add_nodes(3) then (1), want 1 + 1", n)
	}
	// Outside a cell (the REPL) every call adds.
	f.eng.AddNodes(ctx, Call{}, f.unit("web"), 1, time.Minute)
	f.eng.AddNodes(ctx, Call{}, f.unit("web"), 1, time.Minute)
	if n := f.nodesAtProvider(); n != 4 {
		t.Errorf("%d nodes after two REPL add_nodes(1), want 4", n)
	}
}

func TestDeleteNodesDoesNotDeleteMoreWhenRunAgain(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.eng.CreateUnit(ctx, call("1/UnitGroup.create_unit#1"), "g", "web", spec, 4, time.Minute)
	del := func(count int) []string {
		t.Helper()
		got, err := f.eng.DeleteNodes(ctx, call("3/Unit.delete_nodes#1"), f.unit("web"), count, nil)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := del(1); !slices.Equal(got, []string{"web-4"}) {
		t.Errorf("delete_nodes(count=1) = %v", got)
	}
	if got := del(1); !slices.Equal(got, []string{"web-4"}) || f.nodesAtProvider() != 3 {
		t.Errorf("run again: %v, %d nodes; want web-4 and 3 nodes", got, f.nodesAtProvider())
	}
	f.noted("g/web: 1 node deleted by this call before")
	if got := del(2); !slices.Equal(got, []string{"web-4", "web-3"}) || f.nodesAtProvider() != 2 {
		t.Errorf("count 1 -> 2: %v, %d nodes", got, f.nodesAtProvider())
	}
	// By name: a node already gone is skipped; a name that never was is
	// a mistake.
	got, err := f.eng.DeleteNodes(ctx, call("4/Unit.delete_nodes#1"), f.unit("web"), 0, []Selector{{Name: "web-2"}})
	if err != nil || !slices.Equal(got, []string{"web-2"}) {
		t.Fatalf("delete web-2: %v, %v", got, err)
	}
	if got, err := f.eng.DeleteNodes(ctx, call("4/Unit.delete_nodes#1"), f.unit("web"), 0, []Selector{{Name: "web-2"}}); err != nil || !slices.Equal(got, []string{"web-2"}) {
		t.Errorf("delete web-2 again: %v, %v", got, err)
	}
	f.noted("web-2 is already deleted")
	if _, err := f.eng.DeleteNodes(ctx, call("6/Unit.delete_nodes#1"), f.unit("web"), 0, []Selector{{Name: "web-9"}}); !starkit.IsInputError(err) {
		t.Errorf("an unknown name: %v", err)
	}
	if n := f.nodesAtProvider(); n != 1 {
		t.Errorf("%d nodes left, want 1", n)
	}
}

// A deletion cut short (the row says Deleting, by this call) is finished
// on those nodes when the call runs again, not begun on others.
func TestInterruptedDeletionIsFinishedNotRepeated(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.eng.CreateUnit(ctx, call("1/UnitGroup.create_unit#1"), "g", "web", spec, 3, time.Minute)
	u := f.unit("web").rec
	u.Data.DeletedBy = map[string][]string{"3/Unit.delete_nodes#1": {"web-3"}}
	f.eng.Store.UpdateResource(&u)
	n3, _ := f.eng.Store.Resource(state.Query{Run: "r", Kind: state.KindNode, Name: "web-3"})
	n3.Status, n3.Data.DeletingBy = state.Deleting, "3/Unit.delete_nodes#1"
	f.eng.Store.UpdateResource(&n3)
	got, err := f.eng.DeleteNodes(ctx, call("3/Unit.delete_nodes#1"), f.unit("web"), 1, nil)
	if err != nil || !slices.Equal(got, []string{"web-3"}) {
		t.Fatalf("resumed deletion: %v, %v", got, err)
	}
	if n := f.nodesAtProvider(); n != 2 {
		t.Errorf("%d nodes, want 2 (web-3 finished, none other)", n)
	}
}

func TestDeletingWhatIsGoneIsANoop(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.eng.CreateUnit(ctx, call("1/UnitGroup.create_unit#1"), "g", "web", spec, 1, time.Minute)
	for i := 0; i < 2; i++ {
		if err := f.eng.DeleteUnit(ctx, call("2/Unit.delete#1"), "g", "web"); err != nil {
			t.Fatalf("delete unit, time %d: %v", i+1, err)
		}
		if err := f.eng.DeleteGroup(ctx, call("2/UnitGroup.delete#1"), "g"); err != nil {
			t.Fatalf("delete group, time %d: %v", i+1, err)
		}
	}
	f.noted("unit g/web is already deleted")
	f.noted("unit group g is already deleted")
	if n := f.nodesAtProvider(); n != 0 {
		t.Errorf("%d nodes left", n)
	}
}

// What vanished at the provider is made again by the call that made it:
// a node in ERROR (its server killed) is started again with its files; a
// node gone altogether is replaced, keeping its name.
func TestVanishedNodesAreMadeAgain(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	site := "1/UnitGroup.create_unit#1"
	f.eng.CreateUnit(ctx, call(site), "g", "web", spec, 2, time.Minute)
	nodes, _ := f.eng.Nodes(ctx, "", "", "")
	web1, web2 := nodes[0], nodes[1]
	dir1 := filepath.Join(f.local.Dir, web1.Token)
	os.WriteFile(filepath.Join(dir1, "root", "data"), []byte("kept"), 0o644)
	pid, _ := os.ReadFile(filepath.Join(dir1, "server.pid"))
	killPID(t, string(pid))
	os.RemoveAll(filepath.Join(f.local.Dir, web2.Token))
	// The kill and the removal take effect when the processes have exited.
	waitFor(t, func() bool {
		states, _ := f.eng.refresh(ctx, rowsOf([]Node{web1, web2}))
		return states[web1.ID] == providers.Error && states[web2.ID] == providers.Gone
	})

	missing, err := f.eng.Missing(ctx, []string{web1.Token, web2.Token})
	if err != nil || !strings.Contains(missing[web1.Token], "web-1 is in ERROR at local") || !strings.Contains(missing[web2.Token], "web-2 is gone from local") {
		t.Fatalf("Missing = %v, %v", missing, err)
	}
	if _, err := f.eng.CreateUnit(ctx, call(site), "g", "web", spec, 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	f.noted("web-1 was in ERROR at local; started it again")
	f.noted("web-2 is gone from local; making it again")
	if b, _ := os.ReadFile(filepath.Join(dir1, "root", "data")); string(b) != "kept" {
		t.Errorf("web-1's files after restart: %q", b)
	}
	after, _ := f.eng.Nodes(ctx, "", "", providers.Running)
	if len(after) != 2 || after[1].Name != "web-2" || after[1].Token == web2.Token {
		t.Errorf("nodes after: %+v", after)
	}
	if missing, _ := f.eng.Missing(ctx, []string{after[0].Token, after[1].Token}); len(missing) != 0 {
		t.Errorf("still missing: %v", missing)
	}
	// What kumo deleted is not "missing": it was deleted on purpose.
	f.eng.DeleteUnit(ctx, Call{}, "g", "web")
	if missing, _ := f.eng.Missing(ctx, []string{after[0].Token}); len(missing) != 0 {
		t.Errorf("a node deleted through kumo counts as missing: %v", missing)
	}
}

func TestDestroyNamesEachNodeOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.eng.CreateUnit(ctx, call("1/UnitGroup.create_unit#1"), "g", "web", spec, 2, time.Minute)
	deleted, err := f.eng.Destroy(ctx)
	if err != nil || !slices.Equal(deleted, []string{"web-1", "web-2"}) {
		t.Errorf("Destroy = %v, %v", deleted, err)
	}
	if n := f.nodesAtProvider(); n != 0 {
		t.Errorf("%d nodes left", n)
	}
}

func killPID(t *testing.T, pid string) {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(pid))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(n, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatal("condition never held")
}

// rowsOf is the records behind nodes.
func rowsOf(ns []Node) []state.Resource {
	out := make([]state.Resource, len(ns))
	for i, n := range ns {
		out[i] = n.rec
	}
	return out
}
