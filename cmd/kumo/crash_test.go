package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kumo-dev/kumo/providers/aws/ec2emu"
	"github.com/kumo-dev/kumo/providers/container"
	"github.com/kumo-dev/kumo/providers/emulate"
	"github.com/kumo-dev/kumo/providers/openstack/osemu"
	"github.com/kumo-dev/kumo/state/pgtest"
)

// The crash harness: kumo is killed with SIGKILL at random instants
// (seeded; the seed is printed) while it creates nodes, adds and deletes
// some, powers them off and on, and destroys them, on the local provider
// and through the EC2 and OpenStack emulators (which throttle and fail
// calls now and then, as clouds do). After each kill the same command
// runs again, and what exists is counted from outside kumo: node folders
// and node server processes, the emulators' own instances. It must be
// exactly what the recipe asks for: nothing lost, nothing made twice,
// nothing left after destroy.
//
// KUMO_CRASH_POINTS sets the number of kills (make test: 10; make
// test-long: 200), KUMO_CRASH_SEED replays a sequence.

const crashRecipe = `# %% [parameters]
provider = "local"
nodes = 3
power = "on"

# %% Nodes
u = unit_group("crash").create_unit("w", spec(provider, "small"), nodes = nodes)

# %% Power
if power == "off":
    u.power_off()
else:
    u.power_on()
print("nodes:", len(u.nodes()))
`

// A crashPhase is one command of the sequence and what must exist, and
// run, once it has completed.
type crashPhase struct {
	what            string
	args            []string
	exist, running  int
	destroysTheRun  bool
	typicalDuration time.Duration
}

func crashPhases(provider string) []*crashPhase {
	run := func(nodes int, power string) []string {
		return []string{"run", "crash.star", "-q", "-p", "provider=" + provider, "-p", "nodes=" + strconv.Itoa(nodes), "-p", "power=" + power}
	}
	return []*crashPhase{
		{what: "create 3", args: run(3, "on"), exist: 3, running: 3},
		{what: "add 2", args: run(5, "on"), exist: 5, running: 5},
		{what: "delete 3", args: run(2, "on"), exist: 2, running: 2},
		{what: "power off", args: run(2, "off"), exist: 2, running: 0},
		{what: "power on", args: run(2, "on"), exist: 2, running: 2},
		{what: "destroy", args: []string{"destroy", "--name", "crash", "--yes"}, destroysTheRun: true},
	}
}

// A crashWorld is a provider with what kumo needs to reach it and a way
// to count its nodes without asking kumo.
type crashWorld struct {
	provider string // as it shows in the log; crashPhases takes its first word

	dir    string
	env    []string
	count  func() (exist, running int)
	storm  func(kind emulate.StormKind, d time.Duration) // emulators only
	phases []*crashPhase
	next   int
}

func TestCrashAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash harness boots nodes")
	}
	points := 10
	if s := os.Getenv("KUMO_CRASH_POINTS"); s != "" {
		points, _ = strconv.Atoi(s)
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("KUMO_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("crash harness: %d kill points, seed %d (KUMO_CRASH_SEED=%d replays it)", points, seed, seed)
	rng := rand.New(rand.NewSource(seed))
	kumo, err := exec.LookPath("kumo")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	worlds := []*crashWorld{localWorld(t), awsWorld(t, ctx, kumo), openstackWorld(t, ctx, kumo), localPostgresWorld(t)}
	if w := containerWorld(t); w != nil {
		worlds = append(worlds, w)
	}
	for _, w := range worlds {
		os.WriteFile(filepath.Join(w.dir, "crash.star"), []byte(crashRecipe), 0o644)
		w.phases = crashPhases(strings.Fields(w.provider)[0])
		t.Cleanup(func() { kumoIn(w, "destroy", "--all", "--yes") })
	}
	// One pass of each world's sequence, not killed, learns how long each
	// command takes, so that kills land within the commands.
	for _, w := range worlds {
		for _, p := range w.phases {
			start := time.Now()
			if out, err := kumoIn(w, p.args...); err != nil {
				t.Fatalf("%s, %s: %v\n%s", w.provider, p.what, err, out)
			}
			p.typicalDuration = time.Since(start)
			if exist, running := w.waitCount(p.exist, p.running); exist != p.exist || running != p.running {
				t.Fatalf("%s, %s: %d nodes exist and %d run; want %d and %d", w.provider, p.what, exist, running, p.exist, p.running)
			}
		}
	}
	stats := map[string]int{}
	for i := 0; i < points; i++ {
		w := worlds[i%len(worlds)]
		p := w.phases[w.next%len(w.phases)]
		w.next++
		// Kill somewhere within how long the command takes left alone.
		delay := time.Duration(rng.Int63n(int64(p.typicalDuration)))
		start := time.Now()
		out, killed, err := runKilled(w, delay, p.args...)
		took := time.Since(start)
		if !killed {
			if err != nil {
				t.Fatalf("%s, %s (not killed): %v\n%s", w.provider, p.what, err, out)
			}
			stats["finished before the kill"]++
		} else {
			stats["killed"]++
		}
		// Resume: the same command, left alone this time.
		out, err = kumoIn(w, p.args...)
		if err != nil && !(p.destroysTheRun && strings.Contains(out, "no run")) {
			t.Fatalf("%s, %s: resuming after a kill at %s failed: %v\n%s", w.provider, p.what, delay, err, out)
		}
		exist, running := w.waitCount(p.exist, p.running)
		if exist != p.exist || running != p.running {
			t.Fatalf("%s, %s, killed at %s (seed %d): %d nodes exist and %d run; want %d and %d\n%s",
				w.provider, p.what, delay, seed, exist, running, p.exist, p.running, out)
		}
		how := fmt.Sprintf("killed at %5dms", delay.Milliseconds())
		if !killed {
			how = fmt.Sprintf("done in %5dms", took.Milliseconds())
		}
		t.Logf("%-9s %-9s %s: resumed, %d exist, %d running", w.provider, p.what, how, exist, running)
	}
	// Whatever phase each world stopped at, destroy leaves nothing.
	for _, w := range worlds {
		if out, err := kumoIn(w, "destroy", "--all", "--yes"); err != nil {
			t.Fatalf("%s: destroy: %v\n%s", w.provider, err, out)
		}
		if exist, running := w.waitCount(0, 0); exist != 0 || running != 0 {
			t.Fatalf("%s: after destroy %d nodes exist and %d run", w.provider, exist, running)
		}
	}
	t.Logf("crash harness: %d kill points (%d killed mid-command, %d finished first), nothing lost, duplicated or left", points, stats["killed"], stats["finished before the kill"])
}

// waitCount counts the world's nodes, giving transitions in flight (an
// emulator's instances shutting down) a moment to settle.
func (w *crashWorld) waitCount(exist, running int) (int, int) {
	var e, r int
	for i := 0; i < 100; i++ {
		if e, r = w.count(); e == exist && r == running {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return e, r
}

// kumoIn runs kumo in the world's folder.
func kumoIn(w *crashWorld, args ...string) (string, error) {
	out, _, err := runKilled(w, 0, args...)
	return out, err
}

// runKilled runs kumo and, with a delay, kills it with SIGKILL then
// unless it finished first.
func runKilled(w *crashWorld, delay time.Duration, args ...string) (out string, killed bool, err error) {
	cmd := exec.Command("kumo", args...)
	cmd.Dir = w.dir
	// A home of the world's own; no real cloud or its metadata service.
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(w.dir, "home"), "XDG_CONFIG_HOME=", "KUMO_SECRET_KEY_FILE=", "KUMO_FLAVORS=",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "NO_COLOR=1")
	cmd.Env = append(cmd.Env, w.env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return "", false, err
	}
	if delay > 0 {
		timer := time.AfterFunc(delay, func() { cmd.Process.Kill() })
		err = cmd.Wait()
		killed = !timer.Stop()
		return buf.String(), killed, err
	}
	err = cmd.Wait()
	return buf.String(), false, err
}

// localWorld counts local nodes by their folders and running node
// server processes.
func localWorld(t *testing.T) *crashWorld {
	dir := t.TempDir()
	nodes := filepath.Join(dir, ".kumo", "local")
	return &crashWorld{provider: "local", dir: dir, count: func() (int, int) { return countLocalNodes(nodes) }}
}

// localPostgresWorld is local nodes with their state on PostgreSQL: the
// journal, intents and locks of a team's state under kill -9.
func localPostgresWorld(t *testing.T) *crashWorld {
	w := localWorld(t)
	w.provider = "local (state on PostgreSQL)"
	w.env = append(w.env, "KUMO_STATE="+pgtest.URL(t))
	return w
}

// countLocalNodes counts node folders under dir and the node server
// processes serving them.
func countLocalNodes(dir string) (exist, running int) {
	metas, _ := filepath.Glob(filepath.Join(dir, "*", "meta.json"))
	for _, pid := range processesUnder(dir) {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if bytes.Contains(cmdline, []byte("node-server")) {
			running++
		}
	}
	return len(metas), running
}

// containerWorld boots real machines (systemd-nspawn, root and the
// cached image needed: make test-deps builds it); it counts their node
// folders and nspawn processes.
func containerWorld(t *testing.T) *crashWorld {
	images := container.DefaultImagesDir()
	if _, err := os.Stat(filepath.Join(images, "debian-bookworm")); err != nil || os.Getuid() != 0 {
		t.Logf("no container nodes in the crash harness: it needs root and the image make test-deps builds")
		return nil
	}
	dir := t.TempDir()
	nodes := filepath.Join(dir, ".kumo", "container", "nodes")
	t.Cleanup(func() { container.Cleanup(filepath.Join(dir, ".kumo", "container")) })
	return &crashWorld{provider: "container", dir: dir, env: []string{"KUMO_IMAGES=" + images},
		count: func() (int, int) {
			metas, _ := filepath.Glob(filepath.Join(nodes, "*", "meta.json"))
			nspawns := 0
			for _, pid := range processesUnder(dir) {
				if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); strings.TrimSpace(string(comm)) == "systemd-nspawn" {
					nspawns++
				}
			}
			return len(metas), nspawns
		}}
}

func emulatorDir(t *testing.T) (dir, emu string) {
	dir = t.TempDir()
	return dir, filepath.Join(dir, "emulator")
}

// awsWorld serves the EC2 emulator in this process, throttling every 7th
// call and failing every 11th; its instances are counted as it holds
// them, and their backing nodes as processes.
func awsWorld(t *testing.T, ctx context.Context, kumo string) *crashWorld {
	dir, emuDir := emulatorDir(t)
	emu := ec2emu.New(ec2emu.Options{Dir: emuDir, LocalServer: []string{kumo, "node-server"}, Faults: emulate.Faults{ThrottleEvery: 7, FailEvery: 11}})
	url, err := emu.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Shutdown)
	return &crashWorld{provider: "aws", dir: dir, storm: emu.Storm,
		env:   []string{"AWS_ENDPOINT_URL_EC2=" + url, "AWS_ACCESS_KEY_ID=kumo-emulator", "AWS_SECRET_ACCESS_KEY=kumo-emulator", "AWS_REGION=us-east-1"},
		count: func() (int, int) { return emulatedCount(emu.States(), "terminated", "running", emuDir) }}
}

// openstackWorld serves the OpenStack emulator in this process,
// throttling every 9th call and failing every 13th.
func openstackWorld(t *testing.T, ctx context.Context, kumo string) *crashWorld {
	dir, emuDir := emulatorDir(t)
	emu := osemu.New(osemu.Options{Dir: emuDir, LocalServer: []string{kumo, "node-server"}, Faults: emulate.Faults{ThrottleEvery: 9, FailEvery: 13}})
	url, err := emu.Listen(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Shutdown)
	return &crashWorld{provider: "openstack", dir: dir, storm: emu.Storm,
		env: []string{"OS_AUTH_URL=" + url, "OS_USERNAME=" + osemu.User, "OS_PASSWORD=" + osemu.Password, "OS_PROJECT_NAME=" + osemu.Project,
			"OS_DOMAIN_NAME=" + osemu.Domain, "OS_REGION_NAME=" + osemu.Region},
		count: func() (int, int) { return emulatedCount(emu.Statuses(), "DELETED", "ACTIVE", emuDir) }}
}

// emulatedCount counts an emulator's instances by state: those not gone,
// and those running, which must be as many as the nodes behind them are
// (else running is negative: never what a phase wants).
func emulatedCount(states map[string]int, gone, running, nodesDir string) (exist, run int) {
	for state, n := range states {
		if state != gone {
			exist += n
		}
	}
	if _, backing := countLocalNodes(nodesDir); backing != states[running] {
		return exist, -backing
	}
	return exist, states[running]
}
