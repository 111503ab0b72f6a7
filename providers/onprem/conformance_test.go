package onprem

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kumo-dev/kumo/providers/providertest"
	"github.com/kumo-dev/kumo/state"
)

// TestConformance: the pool hands hosts out and takes them back as every
// provider makes and deletes nodes; the state's allocation rows are what
// exists. Power is the inventory's commands, whose effect the pool cannot
// see (TestPower covers them), and nothing here answers SSH.
func TestConformance(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	var inv strings.Builder
	inv.WriteString("hosts:\n")
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&inv, "  - name: h%d\n    address: 198.18.7.%d\n    labels: {flavor: small}\n", i, i)
	}
	path := filepath.Join(dir, "inv.yaml")
	os.WriteFile(path, []byte(inv.String()), 0o644)
	t.Setenv("KUMO_ONPREM_INVENTORY", path)
	store, err := state.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	providertest.Run(t, providertest.Harness{
		Provider: New(store), Flavor: "small", Spec: map[string]any{},
		Count: func(t *testing.T) int {
			n := 0
			for _, run := range []string{"conformance", "conformance-a", "conformance-b"} {
				as, err := store.Allocations(run)
				if err != nil {
					t.Fatal(err)
				}
				n += len(as)
			}
			return n
		},
	})
}
