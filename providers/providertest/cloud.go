package providertest

import (
	"context"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/kumo-dev/kumo/providers"
)

// A Cloud is a cloud provider against its emulator, and what the harness
// can see of the cloud's group resources there (key pairs, security
// groups) and of its nodes.
type Cloud struct {
	// New is a new provider value, as another kumo process would have.
	New  func() providers.Provider
	Spec map[string]any
	// KeyPairs are the cloud's key pairs; OpenPorts and Ingress what a
	// security group opens (its ports; its rules, "tcp 22", "from
	// itself"); AuthorizedKeys what a node lets in.
	KeyPairs       func() []string
	OpenPorts      func(group string) []int
	Ingress        func(group string) []string
	AuthorizedKeys func(id string) (string, error)
}

// RunCloud checks what every cloud provider does for a unit group as a
// whole: one key pair and one security group per group, kept right as
// the group changes and cleaned up with it.
func RunCloud(t *testing.T, c Cloud) {
	t.Run("AGroupMadeAgainGetsItsNewKey", func(t *testing.T) { c.checkNewKey(t) })
	t.Run("EveryUnitOpensItsPorts", func(t *testing.T) { c.checkPorts(t) })
}

// A unit group deleted and made again has a new key. Its old key pair
// may still be there (a destroy cut short): the new nodes must get the
// new key, and the group's cleanup removes both key pairs.
func (c Cloud) checkNewKey(t *testing.T) {
	ctx := context.Background()
	keyA, keyB := AuthorizedKey(t), AuthorizedKey(t)
	make := func(p providers.Provider, token, key string) providers.Instance {
		inst, err := p.Create(ctx, providers.NodeRequest{Token: token, Run: "again", Group: "g", Unit: "u", Name: "u-1", Index: 1, Spec: c.Spec, AuthorizedKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return inst
	}
	a := make(c.New(), "tok-a", keyA)
	if err := c.New().Delete(ctx, providers.Ref{ID: a.ID, Spec: c.Spec}); err != nil {
		t.Fatal(err)
	}
	p := c.New() // another kumo process, after the group was deleted but not its key pair
	b := make(p, "tok-b", keyB)
	if got, err := c.AuthorizedKeys(b.ID); err != nil || strings.TrimSpace(got) != keyB {
		t.Fatalf("the new node accepts %q (%v), want the group's new key", got, err)
	}
	if n := len(c.KeyPairs()); n != 2 {
		t.Errorf("key pairs %v, want the old and the new", c.KeyPairs())
	}
	p.Delete(ctx, providers.Ref{ID: b.ID, Spec: c.Spec})
	gc, ok := p.(providers.GroupCleaner)
	if !ok {
		t.Fatalf("%s does not clean up its groups", p.Name())
	}
	if err := gc.DeleteGroup(ctx, "again", "g", []map[string]any{c.Spec}); err != nil {
		t.Fatal(err)
	}
	if left := c.KeyPairs(); len(left) != 0 {
		t.Errorf("key pairs left after the group's cleanup: %v", left)
	}
}

// Units of one group may open different ports; each is opened once, and
// a later kumo process finds them open.
func (c Cloud) checkPorts(t *testing.T) {
	ctx := context.Background()
	key := AuthorizedKey(t)
	create := func(p providers.Provider, token, unit string, ports ...any) {
		s := maps.Clone(c.Spec)
		s["ports"] = ports
		inst, err := p.Create(ctx, providers.NodeRequest{Token: token, Run: "ports", Group: "g", Unit: unit, Name: unit + "-1", Index: 1, Spec: s, AuthorizedKey: key})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Delete(context.Background(), providers.Ref{ID: inst.ID, Spec: s}) })
	}
	p := c.New()
	create(p, "tok-web", "web", 8080)
	create(p, "tok-db", "db", 5432)
	create(c.New(), "tok-web-2", "web", 8080)
	group := providers.GroupName("ports", "g")
	if got := c.OpenPorts(group); !slices.Equal(got, []int{22, 5432, 8080}) {
		t.Errorf("open ports %v, want 22, 5432 and 8080", got)
	}
	// Besides: the mesh's port, and the group's own nodes on every port.
	want := []string{"from itself", "tcp 22", "tcp 5432", "tcp 8080", "udp 51820"}
	if got := c.Ingress(group); !slices.Equal(got, want) {
		t.Errorf("rules %v, want %v", got, want)
	}
}

// OwnLoopback reports whether ip is a loopback address other than
// 127.0.0.1: every local node (and emulated instance) has its own.
func OwnLoopback(ip string) bool {
	a := net.ParseIP(ip)
	return a != nil && a.IsLoopback() && a.To4() != nil && ip != "127.0.0.1"
}
