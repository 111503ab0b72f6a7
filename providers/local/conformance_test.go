package local

import (
	"os"
	"testing"

	"github.com/kumo-dev/kumo/providers/providertest"
)

func TestConformance(t *testing.T) {
	t.Parallel() // the harness's tokens are its own
	p := newProvider(t)
	providertest.Run(t, providertest.Harness{
		Provider: p, Spec: map[string]any{}, Power: true, SSH: true,
		// A node is a folder under the provider's, with its server.
		Count: func(t *testing.T) int {
			entries, err := os.ReadDir(p.Dir)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			n := 0
			for _, e := range entries {
				if e.IsDir() {
					n++
				}
			}
			return n
		},
	})
}
