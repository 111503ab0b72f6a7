package onprem

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/state"
	_ "github.com/kumo-dev/kumo/state/sqlite" // the state files are SQLite
)

const inventory = `hosts:
  - name: bastion
    address: 10.0.0.1
    user: admin
  - name: s1
    address: 10.0.0.11
    port: 2201
    user: farm
    key: ~/.ssh/farm
    jump: bastion
    labels: {flavor: small, rack: a}
  - name: s2
    address: 10.0.0.12
    labels: {flavor: small, rack: b}
    power_off: echo off > "$MARKER"
    power_on: echo "on $KUMO_HOST" > "$MARKER"
  - name: g1
    address: 10.0.0.21
    labels: {flavor: gpu}
`

func setup(t *testing.T) (*Provider, *state.Store, string) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	path := filepath.Join(dir, "inv.yaml")
	os.WriteFile(path, []byte(inventory), 0o644)
	t.Setenv("KUMO_ONPREM_INVENTORY", path)
	store, err := state.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return New(store), store, path
}

func TestAllocation(t *testing.T) {
	ctx := context.Background()
	p, store, _ := setup(t)
	free, total, err := p.Capacity(ctx, "small", nil)
	if err != nil || free != 2 || total != 2 {
		t.Fatalf("Capacity = %d, %d, %v", free, total, err)
	}
	a, err := p.Create(ctx, providers.NodeRequest{Token: "t1", Run: "r1", Flavor: "small"})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != "10.0.0.11:2201" || a.User != "farm" || !a.Existing || a.KeyFile != filepath.Join(os.Getenv("HOME"), ".ssh/farm") {
		t.Errorf("first host = %+v", a)
	}
	if a.Jump == nil || a.Jump.Host != "10.0.0.1" || a.Jump.Port != 22 || a.Jump.User != "admin" {
		t.Errorf("jump = %+v", a.Jump)
	}
	// The same token gets the same host: a resumed run adopts it.
	if again, err := p.Create(ctx, providers.NodeRequest{Token: "t1", Run: "r1", Flavor: "small"}); err != nil || again.ID != a.ID {
		t.Errorf("second Create with t1 = %+v, %v", again, err)
	}
	// Another run, even through another provider value on the same state,
	// never gets a host that is taken.
	b, err := New(store).Create(ctx, providers.NodeRequest{Token: "t2", Run: "r2", Flavor: "small"})
	if err != nil || b.ID != "10.0.0.12:22" {
		t.Fatalf("second host = %+v, %v", b, err)
	}
	_, err = p.Create(ctx, providers.NodeRequest{Token: "t3", Run: "r2", Flavor: "small"})
	var ex *ExhaustedError
	if !errors.As(err, &ex) || ex.Total != 2 || ex.Free != 0 || !providers.IsCapacity(err) {
		t.Errorf("exhausted pool: %v (a capacity error: %v)", err, providers.IsCapacity(err))
	}
	// Labels narrow the choice.
	if free, total, _ := p.Capacity(ctx, "small", map[string]any{"labels": map[string]any{"rack": "b"}}); free != 0 || total != 1 {
		t.Errorf("rack b: free %d total %d", free, total)
	}
	if list, _ := p.List(ctx, "r2", nil); len(list) != 1 || list[0].ID != b.ID {
		t.Errorf("List(r2) = %+v", list)
	}
	if f, ok, _ := p.Find(ctx, providers.Ref{Token: "t2"}); !ok || f.ID != b.ID {
		t.Errorf("Find(t2) = %+v %v", f, ok)
	}
	// Deleting returns the host to the pool.
	if err := p.Delete(ctx, providers.Ref{ID: b.ID}); err != nil {
		t.Fatal(err)
	}
	if free, _, _ := p.Capacity(ctx, "small", nil); free != 1 {
		t.Errorf("free after delete = %d", free)
	}
	if _, ok, _ := p.Find(ctx, providers.Ref{Token: "t2"}); ok {
		t.Error("a released host is still found")
	}
}

func TestPower(t *testing.T) {
	ctx := context.Background()
	p, _, _ := setup(t)
	marker := filepath.Join(t.TempDir(), "power")
	t.Setenv("MARKER", marker)
	s1, _ := p.Create(ctx, providers.NodeRequest{Token: "a", Run: "r", Flavor: "small"})
	s2, _ := p.Create(ctx, providers.NodeRequest{Token: "b", Run: "r", Flavor: "small"})
	err := p.PowerOff(ctx, providers.Ref{ID: s1.ID})
	if err == nil || !strings.Contains(err.Error(), "power off is not supported by onprem for host s1") {
		t.Errorf("power off without commands: %v", err)
	}
	if err := p.PowerOff(ctx, providers.Ref{ID: s2.ID}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(marker); string(b) != "off\n" {
		t.Errorf("power_off command wrote %q", b)
	}
	if _, err := p.PowerOn(ctx, providers.Ref{ID: s2.ID}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(marker); string(b) != "on s2\n" {
		t.Errorf("power_on command wrote %q", b)
	}
}

func TestInventoryErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ yaml, want string }{
		{"hosts:\n  - address: 1.2.3.4\n", "host #1 has no name"},
		{"hosts:\n  - name: a\n", "host a has no address"},
		{"hosts:\n  - {name: a, address: x}\n  - {name: a, address: y}\n", "two hosts are named a"},
		{"hosts:\n  - {name: a, address: x, jump: nowhere}\n", "host a jumps through nowhere, which is not in the inventory"},
		{"hosts: [", "inv.yaml"},
	} {
		path := filepath.Join(dir, "inv.yaml")
		os.WriteFile(path, []byte(tt.yaml), 0o644)
		if _, err := LoadInventory(path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.yaml, err, tt.want)
		}
	}
	if _, err := LoadInventory(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "KUMO_ONPREM_INVENTORY") {
		t.Errorf("missing inventory: %v", err)
	}
}

func TestInventoryPath(t *testing.T) {
	t.Setenv("HOME", "/home/u")
	t.Setenv("KUMO_ONPREM_INVENTORY", "")
	if got := (Spec{}).InventoryPath(); got != "/home/u/.config/kumo/onprem.yaml" {
		t.Errorf("default = %s", got)
	}
	t.Setenv("KUMO_ONPREM_INVENTORY", "~/inv.yaml")
	if got := (Spec{}).InventoryPath(); got != "/home/u/inv.yaml" {
		t.Errorf("from the environment = %s", got)
	}
	if got := (Spec{Inventory: "/etc/farm.yaml"}).InventoryPath(); got != "/etc/farm.yaml" {
		t.Errorf("from the spec = %s", got)
	}
}

// The inventory is parsed once, but an edit is seen by the next call:
// a host added to a full pool is handed out, and a host another process
// released is found again before the pool is called exhausted.
func TestInventoryEditsAndReleasesAreSeen(t *testing.T) {
	ctx := context.Background()
	p, store, path := setup(t)
	for _, tok := range []string{"a", "b"} {
		if _, err := p.Create(ctx, providers.NodeRequest{Token: tok, Run: "r", Flavor: "small"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Create(ctx, providers.NodeRequest{Token: "c", Run: "r", Flavor: "small"}); !providers.IsCapacity(err) {
		t.Fatalf("a full pool: %v", err)
	}
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append(b, []byte("  - name: s3\n    address: 198.18.9.13\n    labels: {flavor: small}\n")...), 0o644)
	c, err := p.Create(ctx, providers.NodeRequest{Token: "c", Run: "r", Flavor: "small"})
	if err != nil || c.ID != "198.18.9.13:22" {
		t.Fatalf("after the edit: %+v, %v; want the added host", c, err)
	}
	// Another process (another provider value on the state) releases s1.
	if err := New(store).Delete(ctx, providers.Ref{ID: "10.0.0.11:2201"}); err != nil {
		t.Fatal(err)
	}
	if d, err := p.Create(ctx, providers.NodeRequest{Token: "d", Run: "r", Flavor: "small"}); err != nil || d.ID != "10.0.0.11:2201" {
		t.Errorf("after another process released s1: %+v, %v", d, err)
	}
}
