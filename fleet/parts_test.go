package fleet

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/providers/local"
	"github.com/kumo-dev/kumo/state"
)

// hosts is a pool of a few machines, as on-prem: real local nodes, of
// which only so many can exist at once.
type hosts struct {
	*local.Provider
	total int
}

func (h hosts) Capacity(ctx context.Context, flavor string, spec map[string]any) (int, int, error) {
	list, err := h.List(ctx, "r", nil)
	return h.total - len(list), h.total, err
}

// A unit spread over a pool of 2 hosts and a cloud: the pool makes what
// it has room for and says it had no more; the rest of the unit is made
// on the next spec; every node is deleted at its own provider.
func TestCreatePartTakesWhatAPoolHasRoomFor(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	pool := local.New(filepath.Join(t.TempDir(), "pool"))
	pool.ServerCommand = []string{os.Args[0], "node-server"}
	f.eng.Providers["pool"] = hosts{pool, 2}
	onPool := Spec{Provider: "pool", Flavor: "small", Fields: map[string]any{"cpus": 1}}
	count := func(p *local.Provider) int {
		list, err := p.List(ctx, "r", nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	c := call("1/UnitGroup.create_unit#1")
	n, err := f.eng.CreatePart(ctx, c, "g", "farm", onPool, 5, 5, time.Minute)
	if n != 2 || !providers.IsCapacity(err) {
		t.Fatalf("CreatePart on a pool of 2 = %d, %v; want 2 and a capacity error", n, err)
	}
	if n, err := f.eng.CreatePart(ctx, c, "g", "farm", spec, 3, 5, time.Minute); n != 3 || err != nil {
		t.Fatalf("CreatePart of the rest = %d, %v", n, err)
	}
	if p, l := count(pool), f.nodesAtProvider(); p != 2 || l != 3 {
		t.Fatalf("%d nodes in the pool and %d on local, want 2 and 3", p, l)
	}
	counts, others, err := f.eng.PartCounts(c, "g", "farm", []Spec{spec, onPool})
	if err != nil || counts[0] != 3 || counts[1] != 2 || others != 0 {
		t.Errorf("PartCounts = %v, %d, %v", counts, others, err)
	}
	// The same calls again change nothing.
	f.eng.CreatePart(ctx, c, "g", "farm", onPool, 2, 5, time.Minute)
	f.eng.CreatePart(ctx, c, "g", "farm", spec, 3, 5, time.Minute)
	if p, l := count(pool), f.nodesAtProvider(); p != 2 || l != 3 {
		t.Fatalf("again: %d nodes in the pool and %d on local, want 2 and 3", p, l)
	}
	// Power goes through each node's own provider.
	u := f.unit("farm")
	if err := f.eng.PowerOff(ctx, u); err != nil {
		t.Fatal(err)
	}
	nodes, _ := f.eng.Nodes(ctx, "", "farm", providers.PowerOff)
	if len(nodes) != 5 {
		t.Errorf("%d nodes powered off, want 5", len(nodes))
	}
	if err := f.eng.DeleteGroup(ctx, Call{}, "g"); err != nil {
		t.Fatal(err)
	}
	if p, l := count(pool), f.nodesAtProvider(); p != 0 || l != 0 {
		t.Errorf("after deleting the group: %d nodes in the pool and %d on local", p, l)
	}
}

// A unit still at Intent (its run killed before it was marked ready)
// that gains a part keeps the part's record when it is marked ready.
func TestCreatePartKeepsAPartRecordedBeforeReady(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	pool := local.New(filepath.Join(t.TempDir(), "pool"))
	pool.ServerCommand = []string{os.Args[0], "node-server"}
	f.eng.Providers["pool"] = hosts{pool, 2}
	onPool := Spec{Provider: "pool", Flavor: "small", Fields: map[string]any{"cpus": 1}}
	c := call("1/UnitGroup.create_unit#1")
	if _, err := f.eng.CreatePart(ctx, c, "g", "farm", spec, 1, 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	u := f.unit("farm").rec
	u.Status = state.Intent
	if err := f.eng.Store.UpdateResource(&u); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.CreatePart(ctx, c, "g", "farm", onPool, 1, 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	if u := f.unit("farm").rec; u.Status != state.Ready || len(u.Data.Parts) != 1 || u.Data.Parts[0].Provider != "pool" {
		t.Errorf("unit %s with parts %+v, want ready with the pool's part", u.Status, u.Data.Parts)
	}
}
