package ssh

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
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
	"golang.org/x/crypto/ssh/agent"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/ssh/sshdtest"
	"github.com/kumo-dev/kumo/state"
	_ "github.com/kumo-dev/kumo/state/sqlite" // the state files are SQLite
)

// These tests drive Debian's OpenSSH sshd, started on 127.0.0.1 by the
// test itself as an unprivileged user (see sshdtest).

// The tests run in parallel: one HOME for the process, whose
// known_hosts pins each test's servers (sshdtest.RunWithHome). The agent
// test sets SSH_AUTH_SOCK and runs alone.
func TestMain(m *testing.M) { os.Exit(sshdtest.RunWithHome(m)) }

type fixture struct {
	t    testing.TB
	key  string // a client key file
	pub  string
	pool *Pool
	env  *builtins.Env
}

func newFixture(t testing.TB) *fixture {
	dir := t.TempDir()
	key := filepath.Join(dir, "id_test")
	pub, err := sshdtest.ClientKey(key)
	if err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	env := &builtins.Env{Run: "t", Store: store, Secrets: &builtins.Masker{}}
	f := &fixture{t: t, key: key, pub: pub, env: env, pool: PoolOf(env)}
	t.Cleanup(func() { env.Close(); store.Close() })
	return f
}

// server starts sshd accepting the fixture's key; known pins its host
// key in ~/.ssh/known_hosts.
func (f *fixture) server(cfg sshdtest.Config, known bool) *sshdtest.Server {
	f.t.Helper()
	cfg.AuthorizedKeys = append(cfg.AuthorizedKeys, f.pub)
	s, err := sshdtest.Start(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(s.Stop)
	if known {
		sshdtest.KnowHost(f.t, s.KnownHostsLine())
	}
	return s
}

func endpoint(s *sshdtest.Server, key string) builtins.Endpoint {
	return builtins.Endpoint{Label: "h" + strconv.Itoa(s.Port), Host: "127.0.0.1", Port: s.Port, User: s.User, KeyFile: key,
		PinTarget: "addr:" + s.Addr}
}

func (f *fixture) run(ep builtins.Endpoint, cmd string) (Outcome, error) {
	return f.pool.Exec(context.Background(), ep, Command{Cmd: cmd, Timeout: 30 * time.Second})
}

func TestOpenSSHKeyAuthAndReuse(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.server(sshdtest.Config{}, true)
	ep := endpoint(s, f.key)
	out, err := f.run(ep, "id -un; echo $SHELL")
	if err != nil || out.Stdout != s.User+"\n/bin/sh\n" || out.ExitCode != 0 {
		t.Fatalf("got %+v, %v", out, err)
	}
	c1, _ := f.pool.Client(context.Background(), ep)
	f.run(ep, "true")
	c2, _ := f.pool.Client(context.Background(), ep)
	if c1 != c2 {
		t.Error("a second call opened a second connection")
	}
	// Many sessions at once share the one connection.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if o, err := f.run(ep, "echo ok"); err != nil || o.Stdout != "ok\n" {
				errs <- errors.Join(err, errors.New(o.Stdout))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A wrong key is refused with a clear error.
	other := filepath.Join(t.TempDir(), "other")
	sshdtest.ClientKey(other)
	if _, err := f.run(endpoint(s, other), "true"); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("wrong key: %v", err)
	}
}

func TestOpenSSHAgentAuth(t *testing.T) {
	f := newFixture(t)
	s := f.server(sshdtest.Config{}, true)
	// Without a key file, agent or ~/.ssh key, there is nothing to log in with.
	if _, err := f.run(endpoint(s, ""), "true"); err == nil || !strings.Contains(err.Error(), "no SSH key to log in with") {
		t.Fatalf("no key anywhere: %v", err)
	}

	keyring := agent.NewKeyring()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	keyring.Add(agent.AddedKey{PrivateKey: priv})
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go agent.ServeAgent(keyring, c)
		}
	}()
	signer, _ := ssh.NewSignerFromKey(priv)
	s2 := f.server(sshdtest.Config{AuthorizedKeys: []string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))}}, true)
	t.Setenv("SSH_AUTH_SOCK", sock)
	f2 := &fixture{t: t, env: &builtins.Env{Run: "t", Store: f.env.Store}}
	f2.pool = PoolOf(f2.env)
	defer f2.env.Close()
	out, err := f2.run(endpoint(s2, ""), "id -un")
	if err != nil || out.Stdout != s2.User+"\n" {
		t.Fatalf("agent auth: %+v, %v", out, err)
	}
}

func TestOpenSSHHostKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.server(sshdtest.Config{}, false)
	ep := endpoint(s, f.key)
	// An unknown host kumo did not create is refused, not learnt.
	_, err := f.run(ep, "true")
	var hk *HostKeyError
	if !errors.As(err, &hk) || hk.Want != "" || !strings.Contains(err.Error(), "is unknown") {
		t.Fatalf("unknown host: %v", err)
	}
	// known_hosts with another key for it: refused with both fingerprints.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	impostor, _ := ssh.NewSignerFromKey(priv)
	sshdtest.KnowHost(t, "[127.0.0.1]:"+strconv.Itoa(s.Port)+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(impostor.PublicKey()))))
	_, err = f.run(ep, "true")
	if !errors.As(err, &hk) || hk.Want != ssh.FingerprintSHA256(impostor.PublicKey()) || hk.Got != ssh.FingerprintSHA256(s.HostKey) {
		t.Fatalf("known_hosts mismatch: %v", err)
	}
	if !strings.Contains(err.Error(), "HOST KEY CHANGED") {
		t.Errorf("message %q", err)
	}
	// A node kumo created is pinned on first contact, and held to it.
	node := ep
	node.PinTarget, node.PinOnFirstUse = "node:1", true
	if _, err := f.run(node, "true"); err != nil {
		t.Fatalf("first contact with a created node: %v", err)
	}
	if pin, _ := f.env.Store.PinnedKey("node:1"); !strings.Contains(pin, strings.Fields(string(ssh.MarshalAuthorizedKey(s.HostKey)))[1]) {
		t.Errorf("pin = %q", pin)
	}
	f.env.Store.DB.Exec(`UPDATE host_keys SET public_key=? WHERE target='node:1'`, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(impostor.PublicKey()))))
	f.pool.Drop(node)
	if _, err := f.run(node, "true"); !errors.As(err, &hk) {
		t.Errorf("changed key of a pinned node: %v", err)
	}
}

func TestOpenSSHJumpHost(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bastion := f.server(sshdtest.Config{}, true)
	target := f.server(sshdtest.Config{}, true)
	ep := endpoint(target, f.key)
	jump := endpoint(bastion, f.key)
	ep.Jump = &jump
	out, err := f.run(ep, "echo $SSH_CONNECTION")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.TrimSpace(out.Stdout), " "+strconv.Itoa(target.Port)) {
		t.Errorf("SSH_CONNECTION = %q", out.Stdout)
	}
	// The path really goes through the bastion: one that forbids
	// forwarding stops it, with an error naming the jump host.
	closed := f.server(sshdtest.Config{Extra: "AllowTcpForwarding no"}, true)
	noFwd := endpoint(closed, f.key)
	ep2 := endpoint(target, f.key)
	ep2.Jump = &noFwd
	_, err = f.run(ep2, "true")
	if err == nil || !strings.Contains(err.Error(), "through jump host "+noFwd.Label) {
		t.Errorf("through a bastion that forbids forwarding: %v", err)
	}
}

func TestOpenSSHSudo(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Fatal("this test needs root to run sshd as kumotest and kumotest2 (make test runs as root in CI)")
	}
	f := newFixture(t)
	ok := f.server(sshdtest.Config{User: "kumotest"}, true)
	out, err := f.run(endpoint(ok, f.key), SudoWrap("id -u"))
	if err != nil || out.Stdout != "0\n" {
		t.Errorf("passwordless sudo: %+v, %v", out, err)
	}
	// Variables reach the command through sudo, which resets the rest:
	// the stdlib passes everything this way on clouds' login users.
	out, err = f.pool.Exec(context.Background(), endpoint(ok, f.key), Command{
		Cmd: SudoWrap(`echo "$(id -u) $KUMO_A|$KUMO_B"`, "KUMO_A", "KUMO_B"), Env: map[string]string{"KUMO_A": "one", "KUMO_B": "two words\n"}})
	if err != nil || out.Stdout != "0 one|two words\n\n" {
		t.Errorf("variables through sudo: %+v, %v", out, err)
	}
	// Where sudo wants a password it fails at once instead of waiting.
	pw := f.server(sshdtest.Config{User: "kumotest2"}, true)
	start := time.Now()
	out, err = f.run(endpoint(pw, f.key), SudoWrap("id -u"))
	if err != nil || out.ExitCode == 0 || !strings.Contains(out.Stderr, "a password is required") || time.Since(start) > 10*time.Second {
		t.Errorf("sudo needing a password: %+v, %v", out, err)
	}
	if msg := failure("kumotest2", "h", out, true); !strings.Contains(msg, "h: sudo needs a password for kumotest2 there") {
		t.Errorf("failure message %q", msg)
	}
}

func TestOpenSSHTimeoutKillsTheCommand(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.server(sshdtest.Config{}, true)
	ep := endpoint(s, f.key)
	marker := "kumo-timeout-" + strconv.Itoa(s.Port)
	start := time.Now()
	_, err := f.pool.Exec(context.Background(), ep, Command{Cmd: "sleep 30; echo " + marker, Timeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "timed out after 300ms") || time.Since(start) > 5*time.Second {
		t.Fatalf("timeout: %v after %s", err, time.Since(start))
	}
	// The remote command is gone, not left running.
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := exec.Command("pgrep", "-u", s.User, "-f", "sleep 30; echo "+marker).Output()
		if len(out) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote command still running: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The connection is still good for the next call.
	if out, err := f.run(ep, "echo again"); err != nil || out.Stdout != "again\n" {
		t.Errorf("after a timeout: %+v, %v", out, err)
	}
}

func TestOpenSSHConnectionKilledMidCommand(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.server(sshdtest.Config{}, true)
	ep := endpoint(s, f.key)
	pidFile := filepath.Join(s.Dir, "session.pid")
	done := make(chan error, 1)
	go func() {
		_, err := f.pool.Exec(context.Background(), ep, Command{Cmd: "echo $PPID > " + pidFile + "; sleep 5", Timeout: time.Minute})
		done <- err
	}()
	var pid int
	for i := 0; i < 200 && pid == 0; i++ {
		b, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(20 * time.Millisecond)
	}
	if pid == 0 {
		t.Fatal("no session pid")
	}
	// Kill the sshd process serving this connection.
	p, _ := os.FindProcess(pid)
	p.Kill()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "connection was lost") || !strings.Contains(err.Error(), ep.Label) {
			t.Errorf("killed connection: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exec hung after its connection was killed")
	}
	// The next call re-dials.
	if out, err := f.run(ep, "echo back"); err != nil || out.Stdout != "back\n" {
		t.Errorf("after the kill: %+v, %v", out, err)
	}
}

func TestOpenSSHEnvWithoutAcceptEnv(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.server(sshdtest.Config{AcceptEnv: "LANG LC_*"}, true) // as Debian ships it
	value := "multi\nline 'quoted' $value\n"
	// Values a shell would act on, and a line like the block's end.
	other := "$(touch /tmp/kumo-env-ran) `id` \\ \"\nkumo-env-end-0123\n\n"
	out, err := f.pool.Exec(context.Background(), endpoint(s, f.key), Command{
		Cmd: `printf %s "$SECRET_VALUE"; printf '[%s]' "$OTHER"; printf '{%s}' "$EMPTY"; cat`,
		Env: map[string]string{"SECRET_VALUE": value, "OTHER": other, "EMPTY": ""}, Stdin: strings.NewReader("stdin too"), Timeout: 30 * time.Second,
	})
	if want := value + "[" + other + "]{}stdin too"; err != nil || out.Stdout != want {
		t.Errorf("env through stdin: %q, %v; want %q", out.Stdout, err, want)
	}
	if _, err := os.Stat("/tmp/kumo-env-ran"); err == nil {
		os.Remove("/tmp/kumo-env-ran")
		t.Error("a value was run as a command")
	}
}

// BenchmarkOpenSSHEnv: one command on a stock sshd (AcceptEnv LANG LC_*,
// as Debian ships it) with 0 and 4 variables, which then go through stdin.
func BenchmarkOpenSSHEnv(b *testing.B) {
	f := newFixture(b)
	s := f.server(sshdtest.Config{AcceptEnv: "LANG LC_*"}, true)
	ep := endpoint(s, f.key)
	for _, n := range []int{0, 4} {
		vars := map[string]string{}
		for i := range n {
			vars[fmt.Sprintf("VAR%d", i)] = fmt.Sprintf("value %d with 'quotes' and\na newline", i)
		}
		b.Run(fmt.Sprintf("vars=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := f.pool.Exec(context.Background(), ep, Command{Cmd: "true", Env: vars, Timeout: 30 * time.Second}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
