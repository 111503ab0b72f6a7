package session

import (
	"os"
	"path/filepath"
	"syscall"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/providers/aws"
	"github.com/kumo-dev/kumo/providers/container"
	"github.com/kumo-dev/kumo/providers/local"
	"github.com/kumo-dev/kumo/providers/onprem"
	"github.com/kumo-dev/kumo/providers/openstack"
	"github.com/kumo-dev/kumo/state"
)

// ProvidersFor returns every provider kumo knows, keeping their data
// beside the state.
func ProvidersFor(store *state.Store) map[string]providers.Provider {
	return Providers(store.Dir(), store)
}

// Providers makes the providers with local nodes under dir and
// on-prem allocations in alloc.
func Providers(dir string, alloc onprem.Allocator) map[string]providers.Provider {
	return map[string]providers.Provider{
		"local":     local.New(filepath.Join(dir, "local")),
		"container": container.New(filepath.Join(dir, "container")),
		"onprem":    onprem.New(alloc),
		"aws":       aws.New(),
		"openstack": openstack.New(),
	}
}

// NewEnv is the builtins' view of run.
func NewEnv(store *state.Store, run string) *builtins.Env {
	return &builtins.Env{Run: run, Store: store, Providers: ProvidersFor(store), Secrets: &builtins.Masker{}, Fault: faultFromEnv()}
}

// faultFromEnv lets the crash tests kill kumo -9 at an exact point of
// the resource engine: with KUMO_FAULT=after-create, kumo dies right
// after a provider made a node and before the state recorded it, the
// window the intent rows cover.
func faultFromEnv() func(string) {
	want := os.Getenv("KUMO_FAULT")
	if want == "" {
		return nil
	}
	return func(point string) {
		if point == want {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
}
