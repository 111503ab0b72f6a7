package container

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kumo-dev/kumo/providers/providertest"
)

// A test binary started with KUMO_TEST_CHECK_HOST set prints what
// checkHost says and exits: the refusal, as another user sees it.
func TestMain(m *testing.M) {
	if os.Getenv("KUMO_TEST_CHECK_HOST") != "" {
		fmt.Print(checkHost())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Without root (or systemd-nspawn), a container spec is refused before
// anything is made, saying what is missing and that local needs neither.
func TestRefusedWithoutRoot(t *testing.T) {
	var out string
	if os.Geteuid() != 0 {
		err := New(t.TempDir()).Validate(context.Background(), "small", map[string]any{})
		out = fmt.Sprint(err)
	} else {
		// Run this test binary as nobody: it must be where nobody can read it.
		dir, err := os.MkdirTemp("", "kumo-refusal-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755)
		exe := filepath.Join(dir, "container.test")
		src, _ := os.Open(os.Args[0])
		dst, _ := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY, 0o755)
		io.Copy(dst, src)
		src.Close()
		dst.Close()
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), "KUMO_TEST_CHECK_HOST=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		out = string(b)
	}
	for _, want := range []string{"this host cannot run container nodes: it needs root (kumo runs as uid", `The local provider needs neither root nor these (spec("local", ...))`} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal %q lacks %q", out, want)
		}
	}
}

func TestValidateRefusesWhatCannotWork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("run as root: the other checks are reached only past the host's")
	}
	p := New(t.TempDir())
	p.Images = Images{Dir: t.TempDir()} // nothing built there
	for spec, want := range map[string]map[string]any{
		"image debian-bookworm is not built on this machine: run kumo image build debian-bookworm": {},
		`no image "windows" (kumo builds: debian-bookworm)`:                                        {"image": "windows"},
	} {
		if err := p.Validate(context.Background(), "small", want); err == nil || !strings.Contains(err.Error(), spec) {
			t.Errorf("Validate(%v) = %v, want %q", want, err, spec)
		}
	}
	p.Images = Images{Dir: DefaultImagesDir()}
	if err := p.Validate(context.Background(), "small", map[string]any{"network_range": "lots"}); err == nil || !strings.Contains(err.Error(), `network range "lots"`) {
		t.Errorf("a bad range: %v", err)
	}
	if err := p.Validate(context.Background(), "small", map[string]any{"shared": map[string]any{"home": ""}}); err == nil || !strings.Contains(err.Error(), `"home" is not an absolute path`) {
		t.Errorf("a bad shared path: %v", err)
	}
}

// Group networks take /24s that neither another network nor the host
// uses; node addresses follow node numbers where they can.
func TestSubnetsAndAddresses(t *testing.T) {
	rng := netip.MustParsePrefix("198.18.0.0/22")
	taken := map[string]*network{"a": {Subnet: netip.MustParsePrefix("198.18.0.0/24")}}
	host := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.18.1.128/25")}
	got, err := freeSubnet(rng, taken, host)
	if err != nil || got.String() != "198.18.2.0/24" {
		t.Fatalf("freeSubnet = %v, %v; want the first /24 clear of networks and the host's 198.18.1.128/25", got, err)
	}
	taken["b"] = &network{Subnet: got}
	taken["c"] = &network{Subnet: netip.MustParsePrefix("198.18.3.0/24")}
	if _, err := freeSubnet(rng, taken, host); err == nil || !strings.Contains(err.Error(), "no free /24 left in 198.18.0.0/22") {
		t.Errorf("a full range: %v", err)
	}
	n := &network{Subnet: netip.MustParsePrefix("198.18.5.0/24"), Nodes: map[string]string{}}
	a2, _ := n.address("t2", 2)
	a1, _ := n.address("t1", 1)
	again, _ := n.address("t1", 1)
	other, _ := n.address("t9", 2) // 2 is taken: the first free
	if a1.String() != "198.18.5.2" || a2.String() != "198.18.5.3" || again != a1 || other.String() != "198.18.5.4" {
		t.Errorf("addresses %v %v %v %v", a1, a2, again, other)
	}
	if n.gateway().String() != "198.18.5.1" {
		t.Errorf("gateway %v", n.gateway())
	}
}

func TestMirrorAndHostsFromTheHost(t *testing.T) {
	dir := t.TempDir()
	deb822 := filepath.Join(dir, "debian.sources")
	os.WriteFile(deb822, []byte("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://security.example/debian-security\n"), 0o644)
	if got := mirrorIn(deb822, true); got != "http://mirror.example/debian" {
		t.Errorf("deb822 mirror = %q", got)
	}
	list := filepath.Join(dir, "sources.list")
	os.WriteFile(list, []byte("# comment\ndeb [arch=amd64] http://one.example/debian bookworm main\n"), 0o644)
	if got := mirrorIn(list, false); got != "http://one.example/debian" {
		t.Errorf("one-line mirror = %q", got)
	}
	hosts := string(nodeHosts("web-1", "127.0.0.1 localhost\n127.0.1.1 builder\n# a comment\n203.0.113.80 deb.debian.org\n::1 localhost\n"))
	if hosts != "127.0.0.1\tlocalhost\n127.0.1.1\tweb-1\n::1\tlocalhost ip6-localhost ip6-loopback\n203.0.113.80 deb.debian.org\n" {
		t.Errorf("hosts:\n%s", hosts)
	}
}

func TestLimitsFromTheSpec(t *testing.T) {
	s, err := specOf(map[string]any{"memory_gb": 0.5, "cpus": 2, "pids": 100})
	if err != nil {
		t.Fatal(err)
	}
	l := s.limits()
	if l.MemoryBytes != 1<<29 || l.CPUs != 2 || l.Pids != 100 {
		t.Errorf("limits %+v", l)
	}
	if d := (Spec{}).limits(); d.Pids != 4096 || d.MemoryBytes != 0 {
		t.Errorf("defaults %+v", d)
	}
}

// A boot that failed for want of memory is a lack of room, as a cloud's
// capacity answer; any other failed boot is not.
func TestOutOfMemoryIsCapacity(t *testing.T) {
	for console, want := range map[string]bool{
		"[  OK  ] Started ssh.service / Failed to fork: Cannot allocate memory":       true,
		"systemd[1]: Freezing execution. / Out of memory: Killed process 1 (systemd)": true,
		"Failed to mount /proc: Permission denied":                                    false,
		"": false,
	} {
		if got := outOfMemory(console); got != want {
			t.Errorf("outOfMemory(%q) = %v, want %v", console, got, want)
		}
	}
}

// TestConformance: the harness every provider passes, with nodes that
// are machines: a node is a folder with its systemd-nspawn, and none of
// their processes, bridges or routers is left after.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("boots eight machines (about a minute); make test runs it")
	}
	if os.Geteuid() != 0 {
		t.Skip("container nodes need root")
	}
	p := New(t.TempDir())
	if err := p.Validate(context.Background(), "small", map[string]any{}); err != nil {
		t.Skipf("this host cannot run container nodes: %v", err)
	}
	nodes := filepath.Join(p.Dir, "nodes")
	providertest.Run(t, providertest.Harness{
		Provider: p, Flavor: "small", Spec: map[string]any{}, Power: true, SSH: true,
		Count: func(t *testing.T) int {
			entries, _ := os.ReadDir(nodes)
			return len(entries)
		},
	})
	if left := nspawnsUnder(p.Dir); len(left) > 0 {
		t.Errorf("systemd-nspawn processes left: %v", left)
	}
}

// nspawnsUnder lists the pids of systemd-nspawn processes whose command
// line names dir.
func nspawnsUnder(dir string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.HasPrefix(cmd, "systemd-nspawn ") && strings.Contains(cmd, dir) {
			out = append(out, filepath.Base(filepath.Dir(f)))
		}
	}
	return out
}
