package openstack

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/providers/openstack/osemu"
	"github.com/kumo-dev/kumo/providers/openstack/realstack"
	"github.com/kumo-dev/kumo/providers/providertest"
)

// The provider's lifecycle against a real OpenStack (Debian's Nova with
// the fake driver, Neutron, Glance, Keystone), through gophercloud as
// against any cloud. What exists is counted with Debian's openstack CLI,
// never with kumo's own listing.

// realSpec points the provider at cloud and is a spec its servers fit.
func realSpec(t testing.TB, cloud *realstack.Cloud) map[string]any {
	for _, kv := range cloud.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return map[string]any{"flavor_name": "m1.tiny", "image": cloud.Image, "network": cloud.Network, "ports": []any{80}}
}

// cli runs Debian's openstack CLI with the cloud's admin environment.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("openstack", args...)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// lines are the non-empty lines of s.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// serversNamed are "name status" of the cloud's servers whose name
// starts with prefix, sorted by name.
func serversNamed(t *testing.T, prefix string) []string {
	t.Helper()
	var out []string
	for _, l := range lines(cli(t, "server", "list", "-f", "value", "-c", "Name", "-c", "Status", "--sort-column", "Name")) {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// TestConformanceAgainstRealOpenStack: the harness every provider
// passes, against Nova itself, counting servers with the openstack CLI.
// The fake driver's servers are records: nothing answers SSH.
func TestConformanceAgainstRealOpenStack(t *testing.T) {
	cloud := realCloud(t)
	spec := realSpec(t, cloud)
	providertest.Run(t, providertest.Harness{
		Provider: fast(), Flavor: "tiny", Spec: spec, Power: true,
		Count: func(t *testing.T) int { return len(serversNamed(t, "conformance")) },
	})
}

func TestLifecycleAgainstRealOpenStack(t *testing.T) {
	cloud := realCloud(t)
	spec := realSpec(t, cloud)
	ctx := context.Background()
	p := fast()
	if err := p.Validate(ctx, "tiny", spec); err != nil {
		t.Fatal(err)
	}
	run := "life"
	key := providertest.AuthorizedKey(t)
	req := func(name string, s map[string]any) providers.NodeRequest {
		return providers.NodeRequest{Token: "tok-" + name, Run: run, Group: "g", Unit: "u", Name: name, Index: 1, Spec: s, AuthorizedKey: key}
	}
	subnet := netip.MustParsePrefix("198.18.64.0/24")

	// A server, created once whatever the calls.
	inst, err := p.Create(ctx, req("life-1", spec))
	if err != nil {
		t.Fatal(err)
	}
	if inst.State != providers.Running || !subnet.Contains(netip.MustParseAddr(inst.IP)) {
		t.Fatalf("instance = %+v, want running with an address from Neutron's 198.18.64.0/24", inst)
	}
	again, err := p.Create(ctx, req("life-1", spec))
	if err != nil || again.ID != inst.ID {
		t.Fatalf("Create again = %+v, %v", again, err)
	}
	// A process that never heard of it (a kumo killed after the POST)
	// finds it by its kumo:token metadata.
	fresh, err := fast().Create(ctx, req("life-1", spec))
	if err != nil || fresh.ID != inst.ID {
		t.Fatalf("Create from a new process = %+v, %v", fresh, err)
	}
	if got := serversNamed(t, "life-g-"); len(got) != 1 || got[0] != "life-g-life-1 ACTIVE" {
		t.Fatalf("servers %q, want life-1 ACTIVE alone", got)
	}
	// Its security group opens SSH and the spec's port, its key pair is kumo's.
	rules := cli(t, "security", "group", "rule", "list", "-f", "value", "-c", "Port Range", "-c", "Direction", providers.GroupName(run, "g"))
	if !strings.Contains(rules, "22:22 ingress") || !strings.Contains(rules, "80:80 ingress") {
		t.Errorf("rules of the unit's group:\n%s", rules)
	}
	if got := cli(t, "server", "show", inst.ID, "-f", "value", "-c", "key_name"); got != providers.KeyPairName(run, "g", key) {
		t.Errorf("key pair %q, want %q", got, providers.KeyPairName(run, "g", key))
	}

	// Power off and on, as Nova reports it.
	ref := providers.Ref{ID: inst.ID, Token: "tok-life-1", Spec: spec}
	if err := p.PowerOff(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if got := cli(t, "server", "show", inst.ID, "-f", "value", "-c", "status"); got != "SHUTOFF" {
		t.Errorf("after PowerOff Nova says %s", got)
	}
	if on, err := p.PowerOn(ctx, ref); err != nil || on.State != providers.Running {
		t.Fatalf("PowerOn = %+v, %v", on, err)
	}

	// Out to three, in to two.
	for _, name := range []string{"life-2", "life-3"} {
		if _, err := p.Create(ctx, req(name, spec)); err != nil {
			t.Fatal(err)
		}
	}
	if list, err := p.List(ctx, run, []map[string]any{spec}); err != nil || len(list) != 3 {
		t.Errorf("List = %d servers, %v; want 3", len(list), err)
	}
	third, _, _ := p.Find(ctx, providers.Ref{Token: "tok-life-3", Spec: spec})
	if err := p.Delete(ctx, providers.Ref{ID: third.ID, Token: "tok-life-3", Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if got := serversNamed(t, "life-g-"); strings.Join(got, ",") != "life-g-life-1 ACTIVE,life-g-life-2 ACTIVE" {
		t.Errorf("after scaling in: %q", got)
	}

	// Nova's own refusals reach the user with its words and code.
	huge := maps.Clone(spec)
	huge["flavor_name"] = "m1.huge"
	_, err = p.Create(ctx, req("life-huge", huge))
	if !providers.IsCapacity(err) || !strings.Contains(err.Error(), "No valid host was found") {
		t.Errorf("a flavor no host has room for: %v (capacity error: %v)", err, providers.IsCapacity(err))
	}
	big := maps.Clone(spec)
	big["image"], big["flavor_name"] = realstack.BigImage, "m1.small"
	_, err = p.Create(ctx, req("life-big", big))
	if err == nil || !strings.Contains(err.Error(), "Flavor's disk is smaller than the minimum size specified in image metadata") ||
		!strings.Contains(err.Error(), "400") {
		t.Errorf("an image bigger than the flavor's disk: %v", err)
	}
	bad := maps.Clone(spec)
	bad["flavor_name"] = "m9.nothing"
	if err := p.Validate(ctx, "x", bad); err == nil || !strings.Contains(err.Error(), `no flavor "m9.nothing"`) ||
		!strings.Contains(err.Error(), "m1.tiny") {
		t.Errorf("an unknown flavor: %v", err)
	}
	bad = maps.Clone(spec)
	bad["image"] = "windows-95"
	if err := p.Validate(ctx, "x", bad); err == nil || !strings.Contains(err.Error(), `no image "windows-95"`) {
		t.Errorf("an unknown image: %v", err)
	}
	if got := serversNamed(t, "life-g-"); len(got) != 2 {
		t.Errorf("after the refusals: %q, want the two servers (one in ERROR deleted)", got)
	}

	// Destroy, as the fleet does it (each node, then its group), leaves
	// nothing: servers, security group, key pair.
	left, err := p.List(ctx, run, []map[string]any{spec})
	if err != nil {
		t.Fatal(err)
	}
	for _, inst := range left {
		if err := p.Delete(ctx, providers.Ref{ID: inst.ID, Token: inst.Token, Spec: spec}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.DeleteGroup(ctx, run, "g", []map[string]any{spec, huge, big}); err != nil {
		t.Fatal(err)
	}
	if got := serversNamed(t, "life-g-"); len(got) != 0 {
		t.Errorf("after DeleteGroup: %q", got)
	}
	if got := cli(t, "security", "group", "list", "-f", "value", "-c", "Name"); strings.Contains(got, providers.GroupName(run, "g")) {
		t.Errorf("security groups left:\n%s", got)
	}
	if got := cli(t, "keypair", "list", "-f", "value", "-c", "Name"); strings.Contains(got, providers.KeyPairName(run, "g", key)) {
		t.Errorf("key pairs left:\n%s", got)
	}
}

// Create and delete n servers at once, as a unit of n nodes is made and
// destroyed, against the emulator and against real Nova (make
// bench-openstack runs both in one process, for the ratio).
func BenchmarkCreateDelete(b *testing.B) {
	for _, where := range []string{"emulator", "real"} {
		for _, n := range []int{1, 10} {
			b.Run(fmt.Sprintf("%s/%d", where, n), func(b *testing.B) {
				var spec map[string]any
				if where == "real" {
					spec = realSpec(b, realCloud(b))
				} else {
					_, spec = emulator(b, osemu.Options{APIOnly: true})
				}
				p, key := fast(), providertest.AuthorizedKey(b)
				ctx := context.Background()
				for i := 0; i < b.N; i++ {
					run := fmt.Sprintf("bench%d", i)
					ids := make([]string, n)
					var g errgroup.Group
					for k := range n {
						g.Go(func() error {
							name := fmt.Sprintf("n%d", k+1)
							inst, err := p.Create(ctx, providers.NodeRequest{Token: run + name, Run: run, Group: "g", Unit: "u",
								Name: name, Index: k + 1, Spec: spec, AuthorizedKey: key})
							ids[k] = inst.ID
							return err
						})
					}
					if err := g.Wait(); err != nil {
						b.Fatal(err)
					}
					for k := range n {
						g.Go(func() error {
							return p.Delete(ctx, providers.Ref{ID: ids[k], Token: run + fmt.Sprintf("n%d", k+1), Spec: spec})
						})
					}
					if err := g.Wait(); err != nil {
						b.Fatal(err)
					}
					if err := p.DeleteGroup(ctx, run, "g", []map[string]any{spec}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
