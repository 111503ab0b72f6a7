// Package providertest is the conformance harness every provider passes,
// after Nomad's drivers/testutils: one Run over the Provider interface
// (idempotent creates, finding by token, power, listing a run, concurrent
// work, deletes that delete), counting nodes from outside kumo through
// the harness's Count. A provider's own tests add what only it does.
package providertest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kumo-dev/kumo/providers"
)

// A Harness is a provider under test and a way to see its world.
type Harness struct {
	Provider providers.Provider
	Flavor   string
	Spec     map[string]any // a spec the provider can make nodes of
	// Count tells how many nodes exist in the provider's world, seen from
	// outside kumo: an emulator's instances, processes, Nova's servers,
	// the pool's allocations. Only nodes of this harness may exist.
	Count func(t *testing.T) int
	// Power: the provider's nodes power off and on.
	Power bool
	// SSH: a node answers SSH at IP:Port once Create returns.
	SSH bool
	// Timeout bounds each step (default 2 minutes: real clouds are slow).
	Timeout time.Duration
}

// Run checks the provider against the interface's contract.
func Run(t *testing.T, h Harness) {
	if h.Timeout == 0 {
		h.Timeout = 2 * time.Minute
	}
	key := AuthorizedKey(t)
	// What a provider makes for a unit group as a whole (key pairs,
	// security groups, networks) goes once the harness's nodes are gone.
	if gc, ok := h.Provider.(providers.GroupCleaner); ok {
		t.Cleanup(func() {
			for _, run := range []string{"conformance", "conformance-a", "conformance-b"} {
				if err := gc.DeleteGroup(context.Background(), run, "g", []map[string]any{h.Spec}); err != nil {
					t.Errorf("DeleteGroup(%s): %v", run, err)
				}
			}
		})
	}
	t.Run("Spec", func(t *testing.T) { h.checkSpec(t) })
	t.Run("CreateIsIdempotent", func(t *testing.T) { h.checkIdempotent(t, key) })
	if h.Power {
		t.Run("Power", func(t *testing.T) { h.checkPower(t, key) })
	}
	t.Run("ListHoldsARunsNodes", func(t *testing.T) { h.checkList(t, key) })
	t.Run("Concurrent", func(t *testing.T) { h.checkConcurrent(t, key) })
}

func (h Harness) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// request asks for node i of unit u of run.
func (h Harness) request(run, token string, i int, key string) providers.NodeRequest {
	return providers.NodeRequest{Token: token, Run: run, Group: "g", Unit: "u", Name: "u-" + strconv.Itoa(i), Index: i,
		Flavor: h.Flavor, Spec: h.Spec, AuthorizedKey: key}
}

func (h Harness) ref(inst providers.Instance, token string) providers.Ref {
	return providers.Ref{ID: inst.ID, Token: token, Spec: h.Spec}
}

func (h Harness) count(t *testing.T, want int, when string) {
	t.Helper()
	if h.Count == nil {
		return
	}
	// A cloud may take a moment to show a change it acknowledged.
	deadline := time.Now().Add(h.Timeout)
	for {
		got := h.Count(t)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d nodes exist, want %d", when, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// create makes a node and deletes it when the test ends, whatever happens.
func (h Harness) create(t *testing.T, req providers.NodeRequest) providers.Instance {
	t.Helper()
	inst, err := h.Provider.Create(h.ctx(t), req)
	if err != nil {
		t.Fatalf("Create(%s): %v", req.Token, err)
	}
	t.Cleanup(func() { h.Provider.Delete(context.Background(), h.ref(inst, req.Token)) })
	return inst
}

func (h Harness) checkSpec(t *testing.T) {
	spec := h.Provider.NewSpec()
	v := reflect.ValueOf(spec)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		t.Fatalf("NewSpec() = %T, want a pointer to a struct", spec)
	}
	if err := providers.DecodeSpec(h.Provider.Name(), h.Spec, spec); err != nil {
		t.Errorf("the harness's spec does not decode: %v", err)
	}
	if v, ok := h.Provider.(providers.Validator); ok {
		if err := v.Validate(h.ctx(t), h.Flavor, h.Spec); err != nil {
			t.Errorf("Validate(the harness's spec) = %v", err)
		}
	}
}

func (h Harness) checkIdempotent(t *testing.T, key string) {
	ctx := h.ctx(t)
	p := h.Provider
	req := h.request("conformance", "tok-idem", 1, key)
	inst := h.create(t, req)
	if inst.ID == "" || inst.State != providers.Running {
		t.Fatalf("Create = %+v: want an id, running", inst)
	}
	if h.SSH {
		answersSSH(t, inst)
	}
	again, err := p.Create(ctx, req)
	if err != nil || again.ID != inst.ID {
		t.Fatalf("Create with the same token again = %+v, %v; want %s", again, err, inst.ID)
	}
	h.count(t, 1, "after two Creates with one token")
	// Found by its token alone, as a resumed run finds a node it did not
	// live to record.
	if found, ok, err := p.Find(ctx, providers.Ref{Token: req.Token, Spec: h.Spec}); err != nil || !ok || found.ID != inst.ID {
		t.Errorf("Find(token) = %+v, %v, %v", found, ok, err)
	}
	if _, ok, err := p.Find(ctx, providers.Ref{Token: "tok-never-made", Spec: h.Spec}); ok || err != nil {
		t.Errorf("Find(an unknown token) = %v, %v; want not found, no error", ok, err)
	}
	if err := p.Delete(ctx, h.ref(inst, req.Token)); err != nil {
		t.Fatal(err)
	}
	h.count(t, 0, "after Delete")
	if _, ok, err := p.Find(ctx, h.ref(inst, req.Token)); ok || err != nil {
		t.Errorf("Find after Delete = %v, %v; want not found", ok, err)
	}
	if err := p.Delete(ctx, h.ref(inst, req.Token)); err != nil {
		t.Errorf("deleting a deleted node: %v", err)
	}
}

func (h Harness) checkPower(t *testing.T, key string) {
	ctx := h.ctx(t)
	p := h.Provider
	inst := h.create(t, h.request("conformance", "tok-power", 1, key))
	ref := h.ref(inst, "tok-power")
	if err := p.PowerOff(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if found, ok, err := p.Find(ctx, ref); !ok || err != nil || found.State != providers.PowerOff {
		t.Errorf("after PowerOff: %+v, %v, %v; want %s", found, ok, err, providers.PowerOff)
	}
	on, err := p.PowerOn(ctx, ref)
	if err != nil || on.State != providers.Running || on.ID != inst.ID {
		t.Fatalf("PowerOn = %+v, %v", on, err)
	}
	if h.SSH {
		answersSSH(t, on)
	}
	h.count(t, 1, "after power off and on")
}

func (h Harness) checkList(t *testing.T, key string) {
	ctx := h.ctx(t)
	a1 := h.create(t, h.request("conformance-a", "tok-a1", 1, key))
	a2 := h.create(t, h.request("conformance-a", "tok-a2", 2, key))
	b1 := h.create(t, h.request("conformance-b", "tok-b1", 1, key))
	ids := func(run string) []string {
		list, err := h.Provider.List(ctx, run, []map[string]any{h.Spec})
		if err != nil {
			t.Fatalf("List(%s): %v", run, err)
		}
		var out []string
		for _, inst := range list {
			out = append(out, inst.ID)
		}
		return out
	}
	if got := ids("conformance-a"); !sameSet(got, []string{a1.ID, a2.ID}) {
		t.Errorf("List(run a) = %v, want %s and %s", got, a1.ID, a2.ID)
	}
	if got := ids("conformance-b"); !sameSet(got, []string{b1.ID}) {
		t.Errorf("List(run b) = %v, want %s alone", got, b1.ID)
	}
	for _, d := range []struct {
		inst  providers.Instance
		token string
	}{{a1, "tok-a1"}, {a2, "tok-a2"}, {b1, "tok-b1"}} {
		if err := h.Provider.Delete(ctx, h.ref(d.inst, d.token)); err != nil {
			t.Fatal(err)
		}
	}
	if got := ids("conformance-a"); len(got) != 0 {
		t.Errorf("List after deleting everything = %v", got)
	}
	h.count(t, 0, "after deleting the runs' nodes")
}

func (h Harness) checkConcurrent(t *testing.T, key string) {
	const n = 3
	ctx := h.ctx(t)
	var wg sync.WaitGroup
	insts := make([]providers.Instance, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			insts[i], errs[i] = h.Provider.Create(ctx, h.request("conformance", fmt.Sprintf("tok-c%d", i), i+1, key))
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Create %d: %v", i, err)
		}
		inst := insts[i]
		t.Cleanup(func() { h.Provider.Delete(context.Background(), h.ref(inst, fmt.Sprintf("tok-c%d", i))) })
		if seen[inst.ID] {
			t.Errorf("two nodes share id %s", inst.ID)
		}
		seen[inst.ID] = true
	}
	h.count(t, n, "after concurrent Creates")
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.Provider.Delete(ctx, h.ref(insts[i], fmt.Sprintf("tok-c%d", i)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Delete %d: %v", i, err)
		}
	}
	h.count(t, 0, "after concurrent Deletes")
}

// answersSSH checks that the node speaks SSH where the instance says.
func answersSSH(t *testing.T, inst providers.Instance) {
	t.Helper()
	addr := net.JoinHostPort(inst.IP, strconv.Itoa(inst.Port))
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if conn, err = net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no SSH at %s: %v", addr, err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	banner := make([]byte, 4)
	if _, err := conn.Read(banner); err != nil || string(banner) != "SSH-" {
		t.Errorf("%s answers %q, %v; want an SSH banner", addr, banner, err)
	}
}

// AuthorizedKey is a new ed25519 public key, authorized_keys format.
func AuthorizedKey(t testing.TB) string {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := ssh.NewSignerFromKey(priv)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
