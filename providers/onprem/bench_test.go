package onprem

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/state"
)

// BenchmarkAllocate: a pool of n hosts handed out to n nodes, then the
// run's nodes listed (as nodes() refreshes them), on a SQLite state.
func BenchmarkAllocate(b *testing.B) {
	for _, n := range []int{200, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			var inv strings.Builder
			inv.WriteString("hosts:\n")
			for i := 0; i < n; i++ {
				fmt.Fprintf(&inv, "  - name: h%d\n    address: 198.18.%d.%d\n    user: farm\n    labels: {flavor: small, rack: r%d}\n", i, 8+i/250, 1+i%250, i%10)
			}
			path := filepath.Join(dir, "inv.yaml")
			os.WriteFile(path, []byte(inv.String()), 0o644)
			spec := map[string]any{"inventory": path}
			ctx := context.Background()
			for k := 0; k < b.N; k++ {
				store, err := state.Open(filepath.Join(dir, fmt.Sprintf("state%d.db", k)))
				if err != nil {
					b.Fatal(err)
				}
				p := New(store)
				run := "farm"
				for i := 0; i < n; i++ {
					if _, err := p.Create(ctx, providers.NodeRequest{Token: fmt.Sprint("t", i), Run: run, Flavor: "small", Spec: spec}); err != nil {
						b.Fatal(err)
					}
				}
				if list, err := p.List(ctx, run, nil); err != nil || len(list) != n {
					b.Fatalf("List = %d, %v", len(list), err)
				}
				store.Close()
			}
		})
	}
}
