package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kumo-dev/kumo/builtins/ssh/sshdtest"
	"github.com/kumo-dev/kumo/internal/loopback"
	"github.com/kumo-dev/kumo/providers/container"
	"github.com/kumo-dev/kumo/providers/emulate"
	"github.com/kumo-dev/kumo/providers/openstack/realstack"
	"github.com/kumo-dev/kumo/session"
	"github.com/kumo-dev/kumo/state"
	"github.com/kumo-dev/kumo/state/pgtest"
	"github.com/rogpeppe/go-internal/testscript"

	"golang.org/x/crypto/ssh"
)

// The test binary is also kumo: scripts run it as `kumo`, and the local
// provider starts it as `kumo node-server` for every node.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) != "kumo" { // not a script's kumo command
		// Short scripts wait more than they work (nodes, servers, ticks):
		// run twice as many at once as there are CPUs, unless -parallel
		// says. The long ones boot machines: as many as CPUs.
		flag.Parse()
		given := false
		flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
		if !given && testing.Short() {
			flag.Set("test.parallel", strconv.Itoa(2*runtime.GOMAXPROCS(0)))
		}
	}
	testscript.Main(m, map[string]func(){
		"kumo": func() { os.Exit(Main()) },
	})
}

// TestScripts runs the end-to-end sessions in testdata/script: each reads
// like a user's terminal session against the local provider.
func TestScripts(t *testing.T) {
	t.Parallel()
	testscript.Run(t, scriptParams(t, "testdata/script"))
}

// Scripts that run again with their state in a PostgreSQL environment
// of their own (KUMO_STATE): what works on SQLite works there, REPL, TUI,
// plan, export and logs included. The scripts about the state file
// itself, and the long container and cloud ones, run on SQLite only.
var postgresScripts = []string{"builtins", "cli", "deleted", "doc-repl", "family", "hello", "hostkey",
	"interrupt", "lock", "nosftp", "notebook", "onprem", "plan", "progress", "quoting", "rerun",
	"resume", "secrets", "tui", "watch", "world"}

func TestScriptsOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("the scripts on PostgreSQL run in make test")
	}
	t.Parallel() // beside TestScripts: most scripts wait more than they work
	p := scriptParams(t, "")
	for _, name := range postgresScripts {
		p.Files = append(p.Files, filepath.Join("testdata/script", name+".txtar"))
	}
	setup := p.Setup
	p.Setup = func(env *testscript.Env) error {
		if err := setup(env); err != nil {
			return err
		}
		env.Setenv("KUMO_STATE", pgtest.URL(env.T()))
		return nil
	}
	condition := p.Condition
	p.Condition = func(cond string) (bool, error) {
		if cond == "pg" {
			return true, nil
		}
		return condition(cond)
	}
	testscript.Run(t, p)
}

// Scripts against a real OpenStack (Debian's Keystone, Glance, Placement,
// Nova with the fake driver and Neutron; realstack), started once for
// them: make test-openstack runs them (KUMO_REAL_OPENSTACK=1), and
// KUMO_REALSTACK_DIR names a cloud kept up by hand instead.
func TestScriptsOnRealOpenStack(t *testing.T) {
	if os.Getenv("KUMO_REAL_OPENSTACK") == "" {
		t.Skip("a real OpenStack starts in make test-openstack (KUMO_REAL_OPENSTACK=1)")
	}
	var cloud *realstack.Cloud
	var err error
	if dir := os.Getenv("KUMO_REALSTACK_DIR"); dir != "" {
		cloud, err = realstack.Attach(dir)
	} else {
		// Its processes end with this one's (see realstack's lifeline).
		cloud, err = realstack.Start(context.Background(), realstack.Options{Dir: t.TempDir(), Log: os.Stderr})
	}
	if err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("KUMO_REALSTACK_DIR"); dir == "" {
		t.Cleanup(func() {
			cloud.Stop()
			if left := cloud.Leftovers(); len(left) > 0 {
				t.Errorf("the cloud's processes outlived Stop:\n%s", strings.Join(left, "\n"))
			}
		})
	}
	p := scriptParams(t, "testdata/realstack")
	setup := p.Setup
	p.Setup = func(env *testscript.Env) error {
		if err := setup(env); err != nil {
			return err
		}
		for _, kv := range cloud.Env() {
			k, v, _ := strings.Cut(kv, "=")
			env.Setenv(k, v)
		}
		return nil
	}
	testscript.Run(t, p)
}

// scriptParams are the settings and commands of kumo's scripts in dir.
func scriptParams(t *testing.T, dir string) testscript.Params {
	recipes, err := filepath.Abs("../../recipes")
	if err != nil {
		t.Fatal(err)
	}
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	// Scripts get a HOME of their own; container images stay in the
	// machine's cache (built once, by make test-deps).
	images := container.DefaultImagesDir()
	// Building the WireGuard agent costs a link (a second here): the
	// scripts that make a mesh all skip under -short.
	agent := ""
	if !testing.Short() {
		agent = wgAgent(t)
	}
	return testscript.Params{
		Dir: dir,
		Setup: func(env *testscript.Env) error {
			env.Setenv("RECIPES", recipes)
			env.Setenv("TESTDATA", testdata)
			env.Setenv("PORT", strconv.Itoa(freePort(env.T())))
			env.Setenv("EMUPORT", strconv.Itoa(freePort(env.T())))
			// No test may reach a real cloud or its metadata service.
			env.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			env.Setenv("AWS_CONFIG_FILE", "/nonexistent")
			env.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
			env.Setenv("KUMO_FLAVORS", "")
			env.Setenv("KUMO_IMAGES", images)
			env.Setenv("KUMO_WG_AGENT", agent)
			home := filepath.Join(env.WorkDir, "home")
			if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
				return err
			}
			env.Setenv("HOME", home)
			// The key that seals generated secrets lives in HOME too.
			env.Setenv("XDG_CONFIG_HOME", "")
			env.Setenv("KUMO_SECRET_KEY_FILE", "")
			work := env.WorkDir
			// A tmux server of the script's own (tui.txtar), ended with
			// the script whatever happens; its socket is outside $WORK so
			// that procs does not count the server.
			sock := filepath.Join(os.TempDir(), "kumo-tui-"+strconv.Itoa(freePort(env.T()))+".sock")
			env.Setenv("TMUXSOCK", sock)
			env.Defer(func() {
				if _, err := os.Stat(sock); err == nil { // most scripts never start one
					exec.Command("tmux", "-S", sock, "kill-server").Run()
					os.Remove(sock)
				}
			})
			// Should a script fail half-way, stop its nodes anyway:
			// container nodes cleanly (killing nspawn would orphan them).
			env.Defer(func() {
				filepath.WalkDir(work, func(path string, d fs.DirEntry, err error) error {
					if err == nil && d.IsDir() && d.Name() == "container" && filepath.Base(filepath.Dir(path)) == ".kumo" {
						container.Cleanup(path)
						return filepath.SkipDir
					}
					return nil
				})
				killUnder(work)
			})
			return nil
		},
		Condition: func(cond string) (bool, error) {
			// [pg]: the script's state is on PostgreSQL (TestScriptsOnPostgres).
			if cond == "pg" {
				return false, nil
			}
			// [root]: kumo runs as root (sshd can log in as the test users).
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			if cond != "postgres" {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
			return len(found) > 0 || os.Getenv("KUMO_REQUIRE_POSTGRES") != "", nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfile": cmdWaitFile,
			"pgstate":  cmdPGState,
			"pgrestart": func(ts *testscript.TestScript, neg bool, args []string) {
				ts.Check(pgtest.Restart()) // stopped as in a crash, started again
			},
			"procs":      cmdProcs,
			"rekey":      cmdRekey,
			"sshd":       cmdSSHD,
			"killpid":    cmdKillPID,
			"waitport":   cmdWaitPort,
			"apicalls":   cmdAPICalls,
			"containers": cmdContainers,
			"waitpane":   cmdWaitPane,
			"exit2":      cmdExit2,
			"nothing":    cmdNothing,
			"nosecret":   cmdNoSecret,
		},
	}
}

var wgAgentOnce = sync.OnceValues(func() (string, error) {
	// A folder per test process, so that two suites running at once (two
	// checkouts) never swap the agent under each other; those of
	// processes that are gone are removed, so nothing piles up.
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), "kumo-wg-test-*"))
	for _, d := range old {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "kumo-wg-test-"))
		if err == nil && syscall.Kill(pid, 0) != nil {
			os.RemoveAll(d)
		}
	}
	os.RemoveAll(filepath.Join(os.TempDir(), "kumo-wg-test")) // where earlier suites built it
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("kumo-wg-test-%d", os.Getpid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kumo-wg")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", path, "../kumo-wg")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building kumo-wg: %v: %s", err, out)
	}
	return path, nil
})

// wgAgent is the WireGuard agent mesh() installs on nodes, built static
// once per test binary (the test binary is kumo, not beside it).
func wgAgent(t *testing.T) string {
	path, err := wgAgentOnce()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func freePort(t testscript.T) int {
	port, err := loopback.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// waitfile FILE waits up to 30s for FILE to exist.
// pgstate VAR sets VAR to the URL of a new environment of the test
// PostgreSQL server (state/pgtest), started on first use.
func cmdPGState(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: pgstate VAR")
	}
	ts.Setenv(args[0], pgtest.URL(scriptT{ts}))
}

// scriptT fails a script where a test would skip or fail: scripts that
// need PostgreSQL say [!postgres] skip.
type scriptT struct{ ts *testscript.TestScript }

func (s scriptT) Skip(args ...any)  { s.ts.Fatalf("%s", fmt.Sprint(args...)) }
func (s scriptT) Fatal(args ...any) { s.ts.Fatalf("%s", fmt.Sprint(args...)) }

func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: waitfile FILE")
	}
	path := ts.MkAbs(args[0])
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("%s did not appear in 30s", args[0])
}

// waitpane TEXT waits up to 30s for the tmux pane "kumo" of the
// script's tmux server (tmux -S $TMUXSOCK) to show TEXT; ! waitpane TEXT
// checks that it does not show it now.
func cmdWaitPane(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitpane TEXT")
	}
	capture := func() string {
		out, err := exec.Command("tmux", "-S", ts.Getenv("TMUXSOCK"), "capture-pane", "-p", "-t", "kumo").CombinedOutput()
		if err != nil {
			ts.Fatalf("tmux capture-pane: %v: %s", err, out)
		}
		return string(out)
	}
	if neg {
		if pane := capture(); strings.Contains(pane, args[0]) {
			ts.Fatalf("the pane shows %q:\n%s", args[0], pane)
		}
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pane := capture()
		if strings.Contains(pane, args[0]) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("the pane never showed %q; it shows:\n%s", args[0], pane)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procs N checks that exactly N live processes belong to the script's
// work folder: node servers and what nodes started.
func cmdProcs(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: procs N")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("procs: %v", err)
	}
	// Processes may still be exiting: allow them a moment.
	var got []int
	for i := 0; i < 100; i++ {
		got = processesUnder(ts.Getenv("WORK"))
		if len(got) == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("%d processes under $WORK (%v), want %d", len(got), got, want)
}

// processesUnder lists live processes whose command line or environment
// mentions dir (node servers name their folder; node commands carry it
// in KUMO_NODE_ID's folder-less form, so the command line is checked too).
func processesUnder(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		cwd, _ := os.Readlink("/proc/" + e.Name() + "/cwd")
		if bytes.Contains(cmdline, []byte(dir+"/")) || strings.HasPrefix(cwd, dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

func killUnder(dir string) {
	for _, pid := range processesUnder(dir) {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	}
}

// rekey DIR gives the local node in DIR a new host key, as a rebuilt or
// impersonated host would have.
func cmdRekey(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: rekey NODEDIR")
	}
	matches, _ := filepath.Glob(ts.MkAbs(args[0]))
	if len(matches) != 1 {
		ts.Fatalf("rekey: %s matches %d folders", args[0], len(matches))
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	ts.Check(err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	ts.Check(err)
	ts.Check(os.WriteFile(filepath.Join(matches[0], "hostkey"), pem.EncodeToMemory(block), 0o600))
}

// sshd N starts N OpenSSH servers on 127.0.0.1 (see sshdtest) and writes
// an onprem inventory for them to $WORK/inventory.yaml: hosts h1..hN with
// the flavor label small, and a bastion that hN is reached through. Their
// host keys go into ~/.ssh/known_hosts; $KUMO_ONPREM_INVENTORY points at
// the inventory. The servers stop when the script ends. With -nosftp
// they have no SFTP subsystem, as many hardened hosts.
func cmdSSHD(ts *testscript.TestScript, neg bool, args []string) {
	var noSFTP bool
	var login string // -user NAME: log in as another test user
	var rest []string
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "-nosftp":
			noSFTP = true
		case args[i] == "-user" && i+1 < len(args):
			login = args[i+1]
			i++
		default:
			rest = append(rest, args[i])
		}
	}
	args = rest
	if len(args) != 1 || neg {
		ts.Fatalf("usage: sshd N [-nosftp] [-user NAME]")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	key := ts.MkAbs("id_ed25519")
	pub, err := sshdtest.ClientKey(key)
	ts.Check(err)
	var inv, known strings.Builder
	inv.WriteString("hosts:\n")
	start := func(name, labels, jump string) {
		s, err := sshdtest.Start(sshdtest.Config{AuthorizedKeys: []string{pub}, NoSFTP: noSFTP, User: login})
		ts.Check(err)
		ts.Defer(s.Stop)
		fmt.Fprintf(&inv, "  - name: %s\n    address: 127.0.0.1\n    port: %d\n    user: %s\n    key: %s\n", name, s.Port, s.User, key)
		if labels != "" {
			fmt.Fprintf(&inv, "    labels: {%s}\n", labels)
		}
		if jump != "" {
			fmt.Fprintf(&inv, "    jump: %s\n", jump)
		}
		known.WriteString(s.KnownHostsLine() + "\n")
	}
	start("bastion", "role: login", "")
	for i := 1; i <= n; i++ {
		jump := ""
		if i == n {
			jump = "bastion"
		}
		start(fmt.Sprintf("h%d", i), "flavor: small, rack: a", jump)
	}
	ts.Check(os.WriteFile(ts.MkAbs("inventory.yaml"), []byte(inv.String()), 0o644))
	f, err := os.OpenFile(filepath.Join(ts.Getenv("HOME"), ".ssh", "known_hosts"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	ts.Check(err)
	f.WriteString(known.String())
	f.Close()
	ts.Setenv("KUMO_ONPREM_INVENTORY", ts.MkAbs("inventory.yaml"))
}

// killpid FILE kills -9 the process whose pid FILE holds.
func cmdKillPID(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: killpid FILE")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	ts.Check(err)
	p, err := os.FindProcess(pid)
	ts.Check(err)
	ts.Check(p.Kill())
}

// waitport PORT waits up to 30s for something to listen on 127.0.0.1:PORT.
func cmdWaitPort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: waitport PORT")
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+args[0]); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("nothing listens on port %s after 30s", args[0])
}

// apicalls PORT prints how many API calls the emulator on PORT has
// answered: "total N", then a line per call ("RunInstances N").
func cmdAPICalls(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: apicalls PORT")
	}
	resp, err := http.Get("http://127.0.0.1:" + args[0] + emulate.CallsPath)
	ts.Check(err)
	defer resp.Body.Close()
	var calls map[string]int64
	ts.Check(json.NewDecoder(resp.Body).Decode(&calls))
	var total int64
	for _, n := range calls {
		total += n
	}
	fmt.Fprintf(ts.Stdout(), "total %d\n", total)
	for _, k := range slices.Sorted(maps.Keys(calls)) {
		fmt.Fprintf(ts.Stdout(), "%s %d\n", k, calls[k])
	}
}

// containers N checks, from outside kumo, that exactly N container nodes
// of the script's state exist: systemd-nspawn processes, overlay mounts
// and node cgroups; with N = 0, also that no bridge, site router or
// nftables rule of its networks is left. Node and bridge names seen are remembered in
// $WORK/.containers-seen, so that leftovers of deleted nodes count.
func cmdContainers(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: containers N")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	work := ts.Getenv("WORK")
	seenFile := filepath.Join(work, ".containers-seen")
	seen := map[string]bool{}
	if b, err := os.ReadFile(seenFile); err == nil {
		for _, l := range strings.Fields(string(b)) {
			seen[l] = true
		}
	}
	metas, _ := filepath.Glob(filepath.Join(work, "*", ".kumo", "container", "nodes", "*", "meta.json"))
	more, _ := filepath.Glob(filepath.Join(work, ".kumo", "container", "nodes", "*", "meta.json"))
	emulated, _ := filepath.Glob(filepath.Join(work, ".kumo", "emulators", "*", "nodes", "*", "meta.json"))
	for _, m := range append(append(metas, more...), emulated...) {
		var meta struct{ Machine, Bridge string }
		if b, err := os.ReadFile(m); err == nil && json.Unmarshal(b, &meta) == nil {
			seen["machine:"+meta.Machine], seen["bridge:"+meta.Bridge] = true, true
		}
	}
	var list []string
	for k := range seen {
		list = append(list, k)
	}
	os.WriteFile(seenFile, []byte(strings.Join(list, "\n")), 0o644)

	var nspawns, mounts, cgroups, bridges, routers, rules int
	deadline := time.Now().Add(10 * time.Second)
	for {
		nspawns, mounts, cgroups, bridges, routers, rules = 0, 0, 0, 0, 0, 0
		for _, pid := range processesUnder(work) {
			if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(cmd)) == "systemd-nspawn" {
				nspawns++
			}
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		for _, line := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], work+"/") {
				mounts++
			}
		}
		ruleset, _ := exec.Command("nft", "list", "table", "ip", container.NftTable).Output()
		for k := range seen {
			name, isMachine := strings.CutPrefix(k, "machine:")
			if isMachine {
				if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory/kumo", name)); err == nil {
					cgroups++
				} else if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/kumo", name)); err == nil {
					cgroups++
				}
			} else if br, ok := strings.CutPrefix(k, "bridge:"); ok {
				if _, err := net.InterfaceByName(br); err == nil {
					bridges++
				}
				if _, err := os.Stat("/run/netns/kr" + strings.TrimPrefix(br, "kb")); err == nil {
					routers++
				}
				if bytes.Contains(ruleset, []byte(br)) {
					rules++
				}
			}
		}
		ok := nspawns == want && mounts == want && cgroups == want && (want > 0 || bridges+routers+rules == 0)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("containers: %d nspawn, %d mounts, %d cgroups, %d bridges, %d site routers, %d nft rules; want %d nodes", nspawns, mounts, cgroups, bridges, routers, rules, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A run that works on another run's unit group holds that run too: two
// processes never change one run's resources at once.
// On PostgreSQL both are advisory locks on the store's one session.
func TestJoiningARunTakesItsLock(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		store, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		testJoiningARunTakesItsLock(t, store)
	})
	t.Run("postgres", func(t *testing.T) {
		store, err := state.OpenPostgres(pgtest.URL(t), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		testJoiningARunTakesItsLock(t, store)
	})
}

func testJoiningARunTakesItsLock(t *testing.T, store *state.Store) {
	build, err := session.Hold(store, "build")
	if err != nil {
		t.Fatal(err)
	}
	grow, err := session.Hold(store, "grow")
	if err != nil {
		t.Fatal(err)
	}
	var locked *state.LockedError
	if err := grow.Env.Join("build"); !errors.As(err, &locked) || locked.Run != "build" {
		t.Fatalf("joining a held run: %v, want it refused", err)
	}
	build.Release()
	if err := grow.Env.Join("build"); err != nil {
		t.Fatalf("joining a free run: %v", err)
	}
	if _, err := session.Hold(store, "build"); !errors.As(err, &locked) {
		t.Errorf("a joined run could be held by another: %v", err)
	}
	grow.Release()
	again, err := session.Hold(store, "build")
	if err != nil {
		t.Fatalf("after Release, the joined run is still held: %v", err)
	}
	again.Release()
}
