package aws

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/providers/aws/ec2emu"
	"github.com/kumo-dev/kumo/providers/emulate"
	"github.com/kumo-dev/kumo/providers/local"
	"github.com/kumo-dev/kumo/providers/providertest"
)

// The test binary doubles as the emulator's node server.
func TestMain(m *testing.M) {
	local.ServeIfAsked()
	retryBase = 20 * time.Millisecond // the emulator's throttling is a test of retrying, not of waiting
	// The emulator's credentials, for the whole process: the tests that
	// wait on instances run in parallel, which t.Setenv rules out. The
	// tests about other credentials t.Setenv theirs and run alone.
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": ec2emu.AccessKeyID, "AWS_SECRET_ACCESS_KEY": ec2emu.AccessKeyID,
		"AWS_REGION": "", "AWS_PROFILE": "", "AWS_CONFIG_FILE": "/nonexistent",
		"AWS_EC2_METADATA_DISABLED":   "true", // never ask 169.254.169.254 for credentials
		"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
	} {
		os.Setenv(k, v)
	}
	os.Exit(m.Run())
}

func emulator(t *testing.T, opts ec2emu.Options) (*ec2emu.Server, map[string]any) {
	opts.Dir = t.TempDir()
	opts.LocalServer = []string{os.Args[0], "node-server"}
	emu := ec2emu.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	url, err := emu.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Shutdown(); cancel() })
	spec := map[string]any{"endpoint": url, "region": "us-east-1", "instance_type": "t3.small",
		"image": "ubuntu/images/hvm-ssd*/ubuntu-jammy-22.04-amd64-server-*", "ports": []any{8080}}
	return emu, spec
}

func fast() *Provider {
	p := New()
	p.PollInterval = 50 * time.Millisecond
	return p
}

// TestConformance: the harness every provider passes, against the EC2
// emulator, counting the instances it holds.
func TestConformance(t *testing.T) {
	t.Parallel()
	emu, spec := emulator(t, ec2emu.Options{})
	providertest.Run(t, providertest.Harness{
		Provider: fast(), Flavor: "small", Spec: spec, Power: true, SSH: true,
		Count: func(*testing.T) int {
			n := 0
			for st, k := range emu.States() {
				if st != "terminated" {
					n += k
				}
			}
			return n
		},
	})
}

// TestGroupResourcesAndTokens: what only EC2 has, around one instance's
// life: the instance is Ubuntu's, one per ClientToken, and its
// group's key pair and security group are made once and deleted with it.
func TestGroupResourcesAndTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	emu, spec := emulator(t, ec2emu.Options{})
	p := fast()
	req := providers.NodeRequest{Token: "tok-1", Run: "r", Group: "g", Unit: "u", Name: "u-1", Index: 1, Flavor: "small", Spec: spec, AuthorizedKey: providertest.AuthorizedKey(t)}
	inst, err := p.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(inst.ID, "i-") || !providertest.OwnLoopback(inst.IP) || inst.Port == 22 || inst.User != "ubuntu" {
		t.Fatalf("instance = %+v", inst)
	}
	if again, err := p.Create(ctx, req); err != nil || again.ID != inst.ID {
		t.Fatalf("Create again with the same token = %+v, %v", again, err)
	}
	if n := emu.States()["running"]; n != 1 {
		t.Errorf("%d instances running, want 1: the ClientToken makes a second launch the first", n)
	}
	if err := p.Delete(ctx, providers.Ref{ID: inst.ID, Token: "tok-1", Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteGroup(ctx, "r", "g", []map[string]any{spec}); err != nil {
		t.Fatal(err)
	}
	calls := emu.Calls()
	if calls["ImportKeyPair"] != 1 || calls["CreateSecurityGroup"] != 1 || calls["DeleteSecurityGroup"] != 1 || calls["DeleteKeyPair"] != 1 {
		t.Errorf("group resources: %v", calls)
	}
}

func TestThrottlingAnd5xxAreRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	emu, spec := emulator(t, ec2emu.Options{Faults: emulate.Faults{ThrottleEvery: 3, FailEvery: 5}})
	p := fast()
	key := providertest.AuthorizedKey(t)
	errs := make(chan error, 4)
	for i := 1; i <= 4; i++ {
		go func() {
			_, err := p.Create(ctx, providers.NodeRequest{Token: "t" + string(rune('0'+i)), Run: "r", Group: "g", Unit: "u", Name: "n", Index: i, Spec: spec, AuthorizedKey: key})
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Errorf("Create under throttling and 5xx: %v", err)
		}
	}
	if list, _ := p.List(ctx, "r", []map[string]any{spec}); len(list) != 4 {
		t.Errorf("%d instances, want exactly 4", len(list))
	}
	if emu.Calls()["RunInstances"] < 4 {
		t.Errorf("calls: %v", emu.Calls())
	}
}

func TestBadSpecsFailBeforeAnythingIsCreated(t *testing.T) {
	ctx := context.Background()
	emu, spec := emulator(t, ec2emu.Options{})
	with := func(k string, v any) map[string]any {
		s := map[string]any{}
		for kk, vv := range spec {
			s[kk] = vv
		}
		s[k] = v
		return s
	}
	for _, tt := range []struct {
		spec map[string]any
		want string
	}{
		{with("region", "xx-nowhere-1"), "Credential should be scoped to a valid region, not 'xx-nowhere-1'"},
		{with("instance_type", "t9.huge"), "instance type t9.huge in us-east-1: InvalidInstanceType"},
		{with("image", "ami-0000000000000dead"), "InvalidAMIID.NotFound"},
		{with("image", "nothing-like-this-*"), "no image named nothing-like-this-*"},
		{with("image", "bogus"), "no image named bogus"},
	} {
		err := fast().Validate(ctx, "small", tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.spec, err, tt.want)
		}
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	if err := fast().Validate(ctx, "small", spec); err == nil || !strings.Contains(err.Error(), "aws: no credentials") {
		t.Errorf("without credentials: %v", err)
	}
	if n := emu.Calls()["RunInstances"]; n != 0 {
		t.Errorf("RunInstances called %d times", n)
	}
}

// Against a custom endpoint (an emulator), missing credentials are told
// without asking the instance metadata service: here a listener stands
// in for 169.254.169.254 and counts what reaches it.
func TestNoCredentialsNeverAskIMDSForACustomEndpoint(t *testing.T) {
	_, spec := emulator(t, ec2emu.Options{})
	var asked atomic.Int32
	imdsStandIn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		http.Error(w, "no", http.StatusNotFound)
	}))
	defer imdsStandIn.Close()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imdsStandIn.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	err := fast().Validate(context.Background(), "small", spec)
	if err == nil || !strings.Contains(err.Error(), "aws: no credentials; tried the environment") || !strings.Contains(err.Error(), "not the instance metadata service") {
		t.Errorf("without credentials: %v, want one saying what was tried", err)
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("the instance metadata service was asked %d times for an emulator's credentials", n)
	}
}

// TestCloud: one key pair and one security group per unit group, right
// as the group changes (the harness every cloud provider passes).
func TestCloud(t *testing.T) {
	t.Parallel()
	emu, spec := emulator(t, ec2emu.Options{})
	providertest.RunCloud(t, providertest.Cloud{
		New: func() providers.Provider { return fast() }, Spec: spec,
		KeyPairs: emu.KeyPairs, OpenPorts: emu.OpenPorts, Ingress: emu.Ingress,
		AuthorizedKeys: func(id string) (string, error) {
			b, err := os.ReadFile(filepath.Join(emu.Local.Dir, id, "authorized_keys"))
			return string(b), err
		},
	})
}

// A zone out of an instance type answers InsufficientInstanceCapacity
// (a 500): kumo says it is a capacity error, which placement fails over
// on, and asks once, not ten times. A credentials error is not one.
func TestNoCapacityIsACapacityErrorAskedOnce(t *testing.T) {
	ctx := context.Background()
	emu, spec := emulator(t, ec2emu.Options{Capacity: map[string]int{"t3.small": 1}})
	key := providertest.AuthorizedKey(t)
	p := fast()
	req := func(token string) providers.NodeRequest {
		return providers.NodeRequest{Token: token, Run: "r", Group: "g", Unit: "u", Name: token, Index: 1, Spec: spec, AuthorizedKey: key}
	}
	if _, err := p.Create(ctx, req("u-1")); err != nil {
		t.Fatal(err)
	}
	before := emu.Calls()["RunInstances"]
	_, err := p.Create(ctx, req("u-2"))
	if !providers.IsCapacity(err) || !strings.Contains(err.Error(), "InsufficientInstanceCapacity: We currently do not have sufficient t3.small capacity") {
		t.Fatalf("a full zone: %v (capacity error: %v)", err, providers.IsCapacity(err))
	}
	if n := emu.Calls()["RunInstances"] - before; n != 1 {
		t.Errorf("RunInstances asked %d times for a full zone, want 1", n)
	}
	if got := emu.States(); got["running"] != 1 || len(got) != 1 {
		t.Errorf("instances %v, want the 1 running", got)
	}
	// Another type still has room.
	other := maps.Clone(spec)
	other["instance_type"] = "t3.medium"
	r := req("u-3")
	r.Spec = other
	if _, err := p.Create(ctx, r); err != nil {
		t.Errorf("another type: %v", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	t.Setenv("AWS_ACCESS_KEY_ID", "wrong")
	if _, err := fast().Create(ctx, req("u-4")); err == nil || providers.IsCapacity(err) {
		t.Errorf("bad credentials: %v, want an error that is not a capacity error", err)
	}
}
