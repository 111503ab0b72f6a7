package openstack

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/providers/emulate"
	"github.com/kumo-dev/kumo/providers/local"
	"github.com/kumo-dev/kumo/providers/openstack/osemu"
	"github.com/kumo-dev/kumo/providers/providertest"
)

// The test binary doubles as the emulator's node server.
func TestMain(m *testing.M) {
	local.ServeIfAsked()
	// The emulators' password and region, the same for every emulator,
	// set once for the process: the tests that wait on servers run in
	// parallel, which t.Setenv rules out. Each emulator's address is in
	// its spec, as fleet lays a unit's recorded location over its spec
	// for every call after the first. The test of OS_* alone t.Setenvs
	// them and runs alone.
	for k, v := range map[string]string{"OS_PASSWORD": osemu.Password, "OS_REGION_NAME": osemu.Region,
		"OS_AUTH_URL": "", "OS_USERNAME": "", "OS_PROJECT_NAME": "", "OS_DOMAIN_NAME": "", "OS_CLOUD": ""} {
		os.Setenv(k, v)
	}
	code := m.Run()
	if cloud != nil && os.Getenv("KUMO_REALSTACK_DIR") == "" {
		cloud.Stop()
		if left := cloud.Leftovers(); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: the cloud's processes outlived Stop:\n%s\n", strings.Join(left, "\n"))
			code = 1
		}
		os.RemoveAll(cloud.Dir)
	}
	os.Exit(code)
}

func emulator(t testing.TB, opts osemu.Options) (*osemu.Server, map[string]any) {
	opts.Dir = t.TempDir()
	opts.LocalServer = []string{os.Args[0], "node-server"}
	emu := osemu.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	url, err := emu.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Shutdown(); cancel() })
	return emu, map[string]any{"flavor_name": "m1.small", "image": "ubuntu-22.04", "ports": []any{80},
		"auth_url": url, "username": osemu.User, "project_name": osemu.Project, "domain_name": osemu.Domain}
}

func fast() *Provider {
	p := New()
	p.PollInterval = 50 * time.Millisecond
	return p
}

// TestConformance: the harness every provider passes, against the
// OpenStack emulator, counting the servers it holds.
func TestConformance(t *testing.T) {
	t.Parallel()
	emu, spec := emulator(t, osemu.Options{})
	providertest.Run(t, providertest.Harness{
		Provider: fast(), Flavor: "small", Spec: spec, Power: true, SSH: true,
		Count: func(*testing.T) int {
			n := 0
			for st, k := range emu.Statuses() {
				if st != "DELETED" {
					n += k
				}
			}
			return n
		},
	})
}

// TestFloatingIPsAndGroupResources: what only OpenStack has, around one
// server's life: a floating IP and a volume, one POST per token (adopted
// by its metadata), the group's key pair and security group deleted
// with it.
func TestFloatingIPsAndGroupResources(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	emu, spec := emulator(t, osemu.Options{})
	spec["floating_ip"] = true
	spec["volume_size"] = 30
	p := fast()
	if err := p.Validate(ctx, "small", spec); err != nil {
		t.Fatal(err)
	}
	req := providers.NodeRequest{Token: "tok-1", Run: "r", Group: "g", Unit: "u", Name: "u-1", Index: 1, Spec: spec, AuthorizedKey: providertest.AuthorizedKey(t)}
	inst, err := p.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if inst.State != providers.Running || !providertest.OwnLoopback(inst.IP) || inst.Port == 22 || inst.Token != "tok-1" {
		t.Fatalf("instance = %+v", inst)
	}
	if emu.FloatingIPs() != 1 {
		t.Errorf("%d floating IPs, want 1", emu.FloatingIPs())
	}
	if again, err := p.Create(ctx, req); err != nil || again.ID != inst.ID {
		t.Fatalf("Create again = %+v, %v", again, err)
	}
	if n := emu.Calls()["POST /compute/v2.1/servers"]; n != 1 {
		t.Errorf("POST /servers called %d times, want 1", n)
	}
	if err := p.Delete(ctx, providers.Ref{ID: inst.ID, Token: "tok-1", Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if emu.FloatingIPs() != 0 {
		t.Errorf("floating IP not released")
	}
	if err := p.DeleteGroup(ctx, "r", "g", []map[string]any{spec}); err != nil {
		t.Fatal(err)
	}
	calls := emu.Calls()
	if calls["DELETE /network/v2.0/security-groups/{id}"] != 1 || len(emu.KeyPairs()) != 0 {
		t.Errorf("group cleanup calls: %v", calls)
	}
}

func TestRateLimitsAnd5xxAreRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, spec := emulator(t, osemu.Options{Faults: emulate.Faults{ThrottleEvery: 3, FailEvery: 7}})
	p := fast()
	key := providertest.AuthorizedKey(t)
	errs := make(chan error, 4)
	for i := 1; i <= 4; i++ {
		go func() {
			_, err := p.Create(ctx, providers.NodeRequest{Token: "t" + string(rune('0'+i)), Run: "r", Group: "g", Unit: "u",
				Name: "n" + string(rune('0'+i)), Index: i, Spec: spec, AuthorizedKey: key})
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Errorf("Create under 429 and 503: %v", err)
		}
	}
	if list, _ := p.List(ctx, "r", []map[string]any{spec}); len(list) != 4 {
		t.Errorf("%d servers, want exactly 4", len(list))
	}
}

// TestBadSpecsFailBeforeAnythingIsCreated, with the credentials in OS_*
// variables alone, as a first run reads them.
func TestBadSpecsFailBeforeAnythingIsCreated(t *testing.T) {
	ctx := context.Background()
	emu, spec := emulator(t, osemu.Options{})
	for k, env := range map[string]string{"auth_url": "OS_AUTH_URL", "username": "OS_USERNAME",
		"project_name": "OS_PROJECT_NAME", "domain_name": "OS_DOMAIN_NAME"} {
		t.Setenv(env, spec[k].(string))
		delete(spec, k)
	}
	with := func(k string, v any) map[string]any {
		s := map[string]any{}
		for kk, vv := range spec {
			s[kk] = vv
		}
		s[k] = v
		return s
	}
	for _, tt := range []struct {
		spec     map[string]any
		want     string
		badInput bool // the spec's mistake: kumo exits 2
	}{
		{with("region", "Atlantis"), `No suitable endpoint could be found`, false},
		{with("flavor_name", "m9.huge"), `no flavor "m9.huge" in region "RegionOne" (have: g1.xlarge, m1.large`, true},
		{with("image", "windows-95"), `no image "windows-95"`, true},
		{with("network", "nowhere"), `no network "nowhere"`, true},
	} {
		err := fast().Validate(ctx, "small", tt.spec)
		var bad *providers.BadInputError
		if err == nil || !strings.Contains(err.Error(), tt.want) || errors.As(err, &bad) != tt.badInput {
			t.Errorf("%v: %v (bad input: %v), want %q (bad input: %v)", tt.spec, err, bad != nil, tt.want, tt.badInput)
		}
	}
	t.Setenv("OS_PASSWORD", "wrong")
	// Keystone's refusal, in its words and code.
	if err := fast().Validate(ctx, "small", spec); err == nil ||
		!strings.Contains(err.Error(), "authenticating at http://127.0.0.1") || !strings.Contains(err.Error(), "the cloud refused (HTTP 401)") {
		t.Errorf("wrong password: %v", err)
	}
	t.Setenv("OS_AUTH_URL", "")
	if err := fast().Validate(ctx, "small", spec); err == nil || !strings.Contains(err.Error(), "openstack: no credentials") {
		t.Errorf("without credentials: %v", err)
	}
	if n := emu.Calls()["POST /compute/v2.1/servers"]; n != 0 {
		t.Errorf("servers created: %d", n)
	}
}

// TestCloud: one key pair and one security group per unit group, right
// as the group changes (the harness every cloud provider passes).
func TestCloud(t *testing.T) {
	t.Parallel()
	emu, spec := emulator(t, osemu.Options{})
	providertest.RunCloud(t, providertest.Cloud{
		New: func() providers.Provider { return fast() }, Spec: spec,
		KeyPairs: emu.KeyPairs, OpenPorts: emu.OpenPorts, Ingress: emu.Ingress,
		AuthorizedKeys: func(id string) (string, error) {
			b, err := os.ReadFile(filepath.Join(emu.Local.Dir, id, "authorized_keys"))
			return string(b), err
		},
	})
}

// Compute hosts out of room for a flavor: the server goes to ERROR with
// the scheduler's "No valid host was found", which kumo says is a
// capacity error; another flavor still fits.
func TestNoValidHostIsACapacityError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	emu, spec := emulator(t, osemu.Options{Capacity: map[string]int{"m1.small": 1}})
	key := providertest.AuthorizedKey(t)
	p := fast()
	req := func(token string, s map[string]any) providers.NodeRequest {
		return providers.NodeRequest{Token: token, Run: "r", Group: "g", Unit: "u", Name: token, Index: 1, Spec: s, AuthorizedKey: key}
	}
	if _, err := p.Create(ctx, req("u-1", spec)); err != nil {
		t.Fatal(err)
	}
	_, err := p.Create(ctx, req("u-2", spec))
	if !providers.IsCapacity(err) || !strings.Contains(err.Error(), "No valid host was found") {
		t.Fatalf("no room: %v (capacity error: %v)", err, providers.IsCapacity(err))
	}
	if got := emu.Statuses(); got["ACTIVE"] != 1 || got["ERROR"] != 0 {
		t.Errorf("servers %v, want 1 ACTIVE and the one without a host deleted", got)
	}
	other := maps.Clone(spec)
	other["flavor_name"] = "m1.medium"
	if _, err := p.Create(ctx, req("u-3", other)); err != nil {
		t.Errorf("another flavor: %v", err)
	}
}

// A zone out of room for a flavor: servers asked for there fail for
// capacity, the flavor still fits in another zone.
func TestZoneCapacity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	emu, spec := emulator(t, osemu.Options{Capacity: map[string]int{"m1.small@az1": 1}})
	key := providertest.AuthorizedKey(t)
	p := fast()
	req := func(token, zone string) providers.NodeRequest {
		s := maps.Clone(spec)
		s["zone"] = zone
		return providers.NodeRequest{Token: token, Run: "r", Group: "g", Unit: "u", Name: token, Index: 1, Spec: s, AuthorizedKey: key}
	}
	if _, err := p.Create(ctx, req("u-1", "az2")); err != nil {
		t.Fatalf("another zone: %v", err)
	}
	if _, err := p.Create(ctx, req("u-2", "az1")); err != nil {
		t.Fatalf("the zone's one server (the other zone's does not count): %v", err)
	}
	if _, err := p.Create(ctx, req("u-3", "az1")); !providers.IsCapacity(err) {
		t.Fatalf("a second server in the full zone: %v, want a capacity error", err)
	}
	if got := emu.Statuses(); got["ACTIVE"] != 2 {
		t.Errorf("servers %v, want 2 ACTIVE", got)
	}
}
