package local

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kumo-dev/kumo/providers"
)

// The test binary doubles as the node server: the provider starts
// `<test binary> node-server --dir DIR`.
func TestMain(m *testing.M) {
	ServeIfAsked()
	os.Exit(m.Run())
}

func newProvider(t *testing.T) *Provider {
	p := New(t.TempDir())
	p.ServerCommand = []string{os.Args[0], "node-server"}
	t.Cleanup(func() {
		list, _ := p.List(context.Background(), "r", nil)
		for _, inst := range list {
			p.Delete(context.Background(), providers.Ref{ID: inst.ID})
		}
	})
	return p
}

func clientKey(t *testing.T) (ssh.Signer, string) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

func dial(t *testing.T, inst providers.Instance, signer ssh.Signer) (*ssh.Client, error) {
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(inst.HostKey))
	if err != nil {
		t.Fatal(err)
	}
	return ssh.Dial("tcp", inst.IP+":"+strconv.Itoa(inst.Port), &ssh.ClientConfig{
		User: "tester", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: 5 * time.Second,
	})
}

func run(t *testing.T, c *ssh.Client, cmd string) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	var out, errOut bytes.Buffer // one buffer each: they are filled concurrently
	s.Stdout, s.Stderr = &out, &errOut
	err = s.Run(cmd)
	return out.String() + errOut.String(), err
}

func TestNodeLifecycle(t *testing.T) {
	ctx := context.Background()
	p := newProvider(t)
	signer, pub := clientKey(t)
	req := providers.NodeRequest{Token: "tok1", Run: "r", Group: "g", Unit: "u", Name: "u-1", AuthorizedKey: pub, Spec: map[string]any{}}
	inst, err := p.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if inst.State != providers.Running || !ownLoopback(inst.IP) || inst.Port == 0 || inst.HostKey == "" {
		t.Fatalf("instance = %+v", inst)
	}

	// Commands run with /bin/sh inside the node's folder, marked as the node's.
	c, err := dial(t, inst, signer)
	if err != nil {
		t.Fatal(err)
	}
	out, err := run(t, c, `pwd; echo "$KUMO_NODE"; echo hi > f.txt; exit 3`)
	if ee, ok := err.(*ssh.ExitError); !ok || ee.ExitStatus() != 3 {
		t.Errorf("exit = %v, want status 3", err)
	}
	root := filepath.Join(p.Dir, "tok1", "root")
	if out != root+"\nu-1\n" {
		t.Errorf("output %q, want the node folder and name", out)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "f.txt")); string(b) != "hi\n" {
		t.Errorf("file written on the node: %q", b)
	}
	// A background process of the node, to be stopped with it.
	if _, err := run(t, c, "nohup sleep 300 </dev/null >/dev/null 2>&1 &"); err != nil {
		t.Fatal(err)
	}
	c.Close()

	// Creating again with the same token adopts the node: same port and key.
	again, err := p.Create(ctx, req)
	if err != nil || again.Port != inst.Port || again.HostKey != inst.HostKey {
		t.Errorf("second Create = %+v, %v; want the same node", again, err)
	}
	if found, ok, err := p.Find(ctx, providers.Ref{Token: "tok1"}); !ok || err != nil || found.ID != inst.ID {
		t.Errorf("Find = %+v %v %v", found, ok, err)
	}
	if _, ok, _ := p.Find(ctx, providers.Ref{Token: "nope"}); ok {
		t.Error("Find of an unknown token found something")
	}

	// A wrong client key is refused.
	other, _ := clientKey(t)
	if _, err := dial(t, inst, other); err == nil {
		t.Error("unauthorized key accepted")
	}

	// Power off stops the server and every process of the node.
	if err := p.PowerOff(ctx, providers.Ref{ID: inst.ID}); err != nil {
		t.Fatal(err)
	}
	if n := nodeProcesses([]byte(nodeIDVar+"=tok1\x00"), 0); len(n) != 0 {
		t.Errorf("processes left after power off: %v", n)
	}
	if f, _, _ := p.Find(ctx, providers.Ref{Token: "tok1"}); f.State != providers.PowerOff {
		t.Errorf("state after power off = %s", f.State)
	}
	if _, err := dial(t, inst, signer); err == nil {
		t.Error("a powered-off node answers SSH")
	}
	on, err := p.PowerOn(ctx, providers.Ref{ID: inst.ID})
	if err != nil || on.State != providers.Running || on.Port != inst.Port {
		t.Fatalf("PowerOn = %+v, %v; want running on the same port", on, err)
	}
	c, err = dial(t, on, signer)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := run(t, c, "cat f.txt"); out != "hi\n" {
		t.Errorf("the node's files did not survive power off: %q", out)
	}
	c.Close()

	if err := p.Delete(ctx, providers.Ref{ID: inst.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p.Dir, "tok1")); !os.IsNotExist(err) {
		t.Errorf("node folder left after delete: %v", err)
	}
	if list, _ := p.List(ctx, "r", nil); len(list) != 0 {
		t.Errorf("List after delete = %v", list)
	}
	if err := p.Delete(ctx, providers.Ref{ID: inst.ID}); err != nil {
		t.Errorf("deleting a deleted node: %v", err)
	}
}

func TestHalfMadeNodeIsFoundRebuiltAndDeleted(t *testing.T) {
	ctx := context.Background()
	p := newProvider(t)
	_, pub := clientKey(t)
	// A crash inside Create leaves a partial folder.
	partial := filepath.Join(p.Dir, "tok2"+partialSuffix)
	os.MkdirAll(filepath.Join(partial, "root"), 0o700)
	if inst, ok, _ := p.Find(ctx, providers.Ref{Token: "tok2"}); !ok || inst.State != providers.Starting {
		t.Errorf("Find of a half-made node = %+v, %v; want it found as starting", inst, ok)
	}
	inst, err := p.Create(ctx, providers.NodeRequest{Token: "tok2", Run: "r", Name: "n", AuthorizedKey: pub})
	if err != nil || inst.State != providers.Running {
		t.Fatalf("Create over a half-made folder = %+v, %v", inst, err)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Errorf("partial folder left after Create: %v", err)
	}
	// Deleting an interrupted creation removes what it left.
	os.MkdirAll(filepath.Join(p.Dir, "tok3"+partialSuffix), 0o700)
	if err := p.Delete(ctx, providers.Ref{ID: "tok3"}); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(p.Dir); len(entries) != 1 {
		t.Errorf("left in the provider folder: %v", entries)
	}
}

func TestServerStopsWhenItsFolderIsRemoved(t *testing.T) {
	t.Parallel() // waits more than it works; tokens of its own
	p := newProvider(t)
	_, pub := clientKey(t)
	inst, err := p.Create(context.Background(), providers.NodeRequest{Token: "tok3", Run: "r", Name: "n", AuthorizedKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(p.Dir, inst.ID)
	pid, alive := serverPID(dir)
	if !alive {
		t.Fatal("server not running")
	}
	os.RemoveAll(dir)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/cmdline"); os.IsNotExist(err) || isZombie(pid) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("node server %d still runs after its folder was removed", pid)
}

// ownLoopback reports whether ip is a loopback address other than
// 127.0.0.1: every local node (and emulated instance) has its own.
func ownLoopback(ip string) bool {
	a := net.ParseIP(ip)
	return a != nil && a.IsLoopback() && a.To4() != nil && ip != "127.0.0.1"
}

// One node has one server, however many callers start it at once (two
// kumo processes, or a run resumed after kill -9 while the server it
// started was still starting): the server holds a lock on its node.
func TestOneServerPerNode(t *testing.T) {
	t.Parallel() // waits more than it works; tokens of its own
	ctx := context.Background()
	p := newProvider(t)
	_, pub := clientKey(t)
	req := providers.NodeRequest{Token: "tok-one", Run: "r", Group: "g", Unit: "u", Name: "u-1", AuthorizedKey: pub, Spec: map[string]any{}}
	if _, err := p.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(p.Dir, "tok-one")
	// Stop it, then start it from eight callers at once.
	if err := p.PowerOff(ctx, providers.Ref{ID: "tok-one"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = p.PowerOn(ctx, providers.Ref{ID: "tok-one"})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(serversOf(dir)); n != 1 {
		t.Fatalf("%d servers for one node, want 1", n)
	}
	// A server started by hand for a served node refuses to serve it.
	out, err := exec.Command(os.Args[0], "node-server", "--dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another server already serves this node") {
		t.Errorf("a second server: %v, %s", err, out)
	}
	if n := len(serversOf(dir)); n != 1 {
		t.Errorf("%d servers after the refused one, want 1", n)
	}
}

// serversOf lists the live processes serving dir.
func serversOf(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if bytes.Contains(cmdline, []byte("node-server")) && bytes.Contains(cmdline, []byte(dir)) && !isZombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestNodeServerExposure checks from outside the server what a node
// exposes: it listens on loopback only (the kernel's socket table says
// so, and the host's other addresses refuse connections), and it lets in
// its own group's key only: not another group's, not a password, not
// "none".
func TestNodeServerExposure(t *testing.T) {
	ctx := context.Background()
	p := newProvider(t)
	signer1, pub1 := clientKey(t)
	signer2, pub2 := clientKey(t)
	n1, err := p.Create(ctx, providers.NodeRequest{Token: "exp1", Run: "r", Group: "g1", Unit: "u", Name: "u-1", AuthorizedKey: pub1, Spec: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	n2, err := p.Create(ctx, providers.NodeRequest{Token: "exp2", Run: "r", Group: "g2", Unit: "u", Name: "u-1", AuthorizedKey: pub2, Spec: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []providers.Instance{n1, n2} {
		addrs := listeners(t, n.Port)
		if len(addrs) == 0 {
			t.Fatalf("nothing listens on port %d", n.Port)
		}
		for _, a := range addrs {
			if !a.IsLoopback() {
				t.Errorf("node %s listens on %s:%d", n.ID, a, n.Port)
			}
		}
		ifaddrs, _ := net.InterfaceAddrs()
		for _, ia := range ifaddrs {
			ip, _, _ := net.ParseCIDR(ia.String())
			if ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
				continue
			}
			if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(n.Port)), time.Second); err == nil {
				c.Close()
				t.Errorf("node %s answers on %s", n.ID, ip)
			}
		}
	}
	if c, err := dial(t, n1, signer1); err != nil {
		t.Fatalf("the node's own key: %v", err)
	} else {
		c.Close()
	}
	if _, err := dial(t, n1, signer2); err == nil {
		t.Error("node 1 let in group 2's key")
	}
	if _, err := dial(t, n2, signer1); err == nil {
		t.Error("node 2 let in group 1's key")
	}
	hostKey, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(n1.HostKey))
	for name, auth := range map[string][]ssh.AuthMethod{
		"none":     nil,
		"password": {ssh.Password("")},
		"keyboard": {ssh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) { return nil, nil })},
	} {
		_, err := ssh.Dial("tcp", n1.IP+":"+strconv.Itoa(n1.Port), &ssh.ClientConfig{User: "tester", Auth: auth, HostKeyCallback: ssh.FixedHostKey(hostKey), Timeout: 5 * time.Second})
		if err == nil {
			t.Errorf("%s authentication let in", name)
		}
	}
}

// listeners lists the local addresses of TCP sockets listening on port,
// from the kernel's tables (/proc/net/tcp and tcp6).
func listeners(t *testing.T, port int) []net.IP {
	var out []net.IP
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			host, p, _ := strings.Cut(f[1], ":")
			if n, _ := strconv.ParseInt(p, 16, 32); int(n) != port {
				continue
			}
			raw, _ := hex.DecodeString(host)
			// The kernel writes each 32-bit word in host (little-endian) order.
			for i := 0; i+4 <= len(raw); i += 4 {
				raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
			}
			out = append(out, net.IP(raw))
		}
	}
	return out
}
