// Command mesh measures mesh() over three sites on this host: on-prem
// container nodes, and the EC2 and OpenStack emulators' instances as
// container nodes on sites of their own. It reports
//   - the mesh cell's wall time for 3, 9 and 30 nodes (a third on each
//     site) and wall(30)/wall(3);
//   - TCP throughput (iperf3, 5 s) and round-trip time (ping) between an
//     on-prem node and an EC2 node over the mesh (kumo-wg), over Debian's
//     wireguard-go 0.0.20220316 between the same two nodes, and on the
//     underlay between two nodes of one site;
//   - memory (resident) and CPU of an idle agent per node.
//
// It needs root, systemd-nspawn, the image and the apt cache (make
// test-deps), and bin/kumo and bin/kumo-wg (make build).
//
//	go run ./bench/mesh [-sizes 3,9,30] [-kumo bin/kumo]
//
// It ends with one line: RESULT mesh_3_s=… mesh_9_s=… mesh_30_s=… ratio_30_3=…
// mesh_mbit=… wggo_mbit=… underlay_mbit=… mesh_rtt_ms=… wggo_rtt_ms=… underlay_rtt_ms=…
// agent_rss_kib=… agent_cpu_ticks_per_10s=… (ticks of 10 ms)
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kumo-dev/kumo/bench/benchkit"
	"github.com/kumo-dev/kumo/providers"
)

const recipe = `# %% [parameters]
per_site = 1

# %% Nodes
ug = unit_group("bench%d" % (3 * per_site))
c = ug.create_unit("c", spec("container", "small"), nodes = per_site).nodes()
a = ug.create_unit("a", spec("aws", "small"), nodes = per_site).nodes()
o = ug.create_unit("o", spec("openstack", "small"), nodes = per_site).nodes()

# %% Mesh
net = mesh("bench", ug.nodes())
print("RESULT nodes=%d direct=%d relayed=%d" % (len(net.addresses), len(net.direct), len(net.relayed)))
`

const measure = `# %% Tools
load("@stdlib//pkg.star", "pkg")
ug = unit_group("bench9", create = False)
units = {u.name: u for u in ug.units()}
c1, c2 = units["c"].nodes()[0], units["c"].nodes()[1]
a1 = units["a"].nodes()[0]
pair = [c1, c2, a1]
pkg.install(pair, ["iperf3", "iputils-ping", "wireguard-go", "wireguard-tools"], recommends = False)
ssh_run(pair, "systemctl stop iperf3 2>/dev/null; (iperf3 -s -D >/dev/null 2>&1 || true)", sudo = True)

# %% Debian's wireguard-go between c1 and a1, beside kumo-wg
def deb_wg(n, addr):
    r = ssh_run(n, """set -e
[ -f /root/wgdeb.key ] || (umask 077; wg genkey > /root/wgdeb.key)
ip link show wgdeb >/dev/null 2>&1 || WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go wgdeb
wg set wgdeb private-key /root/wgdeb.key listen-port 50820
ip address replace %s/24 dev wgdeb
ip link set wgdeb up
wg pubkey < /root/wgdeb.key""" % addr, sudo = True)
    return r.stdout.strip()
kc, ka = deb_wg(c1, "198.19.250.1"), deb_wg(a1, "198.19.250.2")
ssh_run(c1, "wg set wgdeb peer %s endpoint %s:50820 allowed-ips 198.19.250.2/32 persistent-keepalive 25" % (ka, a1.ip), sudo = True)
ssh_run(a1, "wg set wgdeb peer %s allowed-ips 198.19.250.1/32" % kc, sudo = True)
ssh_run(c1, "for i in $(seq 50); do ping -c1 -W1 198.19.250.2 >/dev/null && exit 0; done; exit 1")

# %% Measure
def iperf(src, dst):
    r = ssh_run(src, "iperf3 -c %s -t 5 -f m | grep receiver" % dst)
    return float(r.stdout.split()[-3])
def rtt(src, dst):
    r = ssh_run(src, "ping -c 20 -i 0.2 -q %s | tail -1" % dst)
    return r.stdout.split("=")[1].split("/")[1]
for name, src, dst in [("mesh", c1, a1.private_ip), ("wggo", c1, "198.19.250.2"), ("underlay", c1, c2.site_ip)]:
    print("RESULT %s_mbit=%d %s_rtt_ms=%s" % (name, int(iperf(src, dst)), name, rtt(src, dst)))

# %% The agents at rest
ssh_run(ug.nodes(), "sleep 10")
r = ssh_run(ug.nodes(), "p=$(pgrep -x kumo-wg); t0=$(awk '{print $14+$15}' /proc/$p/stat); sleep 10; t1=$(awk '{print $14+$15}' /proc/$p/stat); echo $(awk '/VmRSS/ {print $2}' /proc/$p/status) $((t1 - t0))", sudo = True)
rss = sorted([int(x.stdout.split()[0]) for x in r])
ticks = sorted([int(x.stdout.split()[1]) for x in r])
print("RESULT agent_rss_kib=%d agent_cpu_ticks_per_10s=%d" % (rss[len(rss) // 2], ticks[len(ticks) // 2]))
`

func main() {
	kumo := flag.String("kumo", "bin/kumo", "the kumo binary (bin/kumo-wg beside it)")
	sizes := flag.String("sizes", "3,9,30", "mesh sizes: a third of the nodes on each site (9 is kept for the measurements)")
	flag.Parse()
	if err := run(*kumo, *sizes); err != nil {
		fmt.Fprintln(os.Stderr, "mesh:", err)
		os.Exit(1)
	}
}

// endpointOf is the EC2 emulator's URL in env.
func endpointOf(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "AWS_ENDPOINT_URL_EC2="); ok {
			return v
		}
	}
	return ""
}

func run(kumo, sizes string) error {
	kumo, err := filepath.Abs(kumo)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "kumo-mesh-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	env, stop, err := emulators(kumo, dir)
	if err != nil {
		return err
	}
	defer stop()
	if err := os.WriteFile(filepath.Join(dir, "mesh.star"), []byte(recipe), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "measure.star"), []byte(measure), 0o644); err != nil {
		return err
	}
	defer benchkit.Kumo(kumo, dir, env, "destroy", "--all", "--yes")
	var result []string
	walls := map[int]float64{}
	var order []int
	fmt.Printf("| %5s | %12s | %10s | %s\n|-------|--------------|------------|------------------\n", "nodes", "mesh cell s", "ratio to 3", "NAT-to-NAT pairs")
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 3 || n%3 != 0 {
			return fmt.Errorf("-sizes: %q is not a multiple of 3", s)
		}
		// A fresh mesh each time; the one of 9 stays for the measurements.
		name := fmt.Sprintf("mesh%d", n)
		out, err := benchkit.Kumo(kumo, dir, env, "run", "mesh.star", "--name", name, "-p", fmt.Sprintf("per_site=%d", n/3), "--json")
		if err != nil {
			return err
		}
		logs, err := benchkit.Kumo(kumo, dir, env, "logs", name)
		if err != nil {
			return err
		}
		paths := ""
		if i := bytes.Index(logs, []byte("RESULT nodes=")); i >= 0 {
			line, _, _ := strings.Cut(string(logs[i+len("RESULT "):]), "\n")
			paths = strings.TrimSpace(line)
		}
		if n != 9 {
			if _, err := benchkit.Kumo(kumo, dir, env, "destroy", "--name", name, "--yes"); err != nil {
				return err
			}
		}
		wall, ok := benchkit.RanCells(out)["Mesh"]
		if !ok {
			return fmt.Errorf("%d nodes: the Mesh cell did not run", n)
		}
		walls[n] = wall.Seconds()
		order = append(order, n)
		fmt.Printf("| %5d | %12.2f | %10.2f | %s\n", n, wall.Seconds(), wall.Seconds()/walls[order[0]], paths)
		result = append(result, fmt.Sprintf("mesh_%d_s=%.2f", n, wall.Seconds()))
	}
	if len(order) > 1 {
		result = append(result, fmt.Sprintf("ratio_%d_%d=%.2f", order[len(order)-1], order[0], walls[order[len(order)-1]]/walls[order[0]]))
	}
	// Debian's wireguard-go listens on a port of its own, which the EC2
	// node's security group must let in, as on EC2.
	authorize := exec.Command("aws", "--endpoint-url", endpointOf(env), "--region", "us-east-1", "ec2", "authorize-security-group-ingress", "--group-name", providers.GroupName("mesh9", "bench9"),
		"--protocol", "udp", "--port", "50820", "--cidr", "0.0.0.0/0")
	authorize.Env = append(os.Environ(), env...)
	if b, err := authorize.CombinedOutput(); err != nil && !bytes.Contains(b, []byte("Duplicate")) {
		return fmt.Errorf("opening UDP 50820 for Debian's wireguard-go: %v: %s", err, b)
	}
	out, err := benchkit.Kumo(kumo, dir, env, "run", "measure.star")
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if r, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "RESULT "); ok {
			fmt.Println(r)
			result = append(result, r)
		}
	}
	fmt.Println("RESULT " + strings.Join(result, " "))
	return nil
}

// emulators starts kumo's EC2 and OpenStack emulators (their instances
// container nodes) and returns the variables that point kumo at them.
func emulators(kumo, dir string) (env []string, stop func(), err error) {
	var procs []*exec.Cmd
	stop = func() {
		for _, p := range procs {
			p.Process.Signal(os.Interrupt)
			p.Wait()
		}
	}
	urls := map[string]string{}
	for _, cloud := range []string{"aws", "openstack"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, stop, err
		}
		addr := l.Addr().String()
		l.Close()
		cmd := exec.Command(kumo, "emulate", cloud, "--backing", "container", "--addr", addr)
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			return nil, stop, err
		}
		procs = append(procs, cmd)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return nil, stop, fmt.Errorf("kumo emulate %s did not listen on %s", cloud, addr)
			}
			time.Sleep(50 * time.Millisecond)
		}
		urls[cloud] = "http://" + addr
	}
	env = []string{
		"AWS_ENDPOINT_URL_EC2=" + urls["aws"], "AWS_ACCESS_KEY_ID=kumo-emulator", "AWS_SECRET_ACCESS_KEY=kumo-emulator",
		"AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true",
		"OS_AUTH_URL=" + urls["openstack"] + "/identity/v3", "OS_USERNAME=kumo", "OS_PASSWORD=kumo-emulator",
		"OS_PROJECT_NAME=kumo", "OS_DOMAIN_NAME=Default", "OS_REGION_NAME=RegionOne",
	}
	return env, stop, nil
}
