// Command drift benchmarks finding configuration drift on N OpenSSH hosts
// (default 50): `kumo check` side by side with `ansible-playbook --check`
// of the same job, and with the floor, one OpenSSH client per host
// running the same comparisons in one command. It also times repairing
// the drift: `kumo run --verify` against a plain `ansible-playbook` re-run.
//
//	make bench-deps build && go run ./bench/drift [-hosts 50] [-rounds 3] [-parallel 64] [-drifted 10] [-kumo bin/kumo]
//
// Needs root: each sshd runs in a mount namespace of its own with a tmpfs
// on one folder, so the hosts (all 127.0.0.1, one login user) have files
// of their own at the same path and drift one by one. The job, per host:
// three config files (files.install / copy), a folder (files.directory /
// file), a link (files.link / file), a block of lines (files.block /
// blockinfile), without sudo. Each round changes -drifted of the hosts by
// hand, and every tool must name exactly those. Ansible runs with its
// best settings: pipelining, no facts, its own ControlPersist
// connections (warm after the first round), forks = -parallel. kumo
// opens new connections in every round (a new process). Ends with
// RESULT kumo_check_s=… ansible_check_s=… floor_s=… kumo_verify_s=… ansible_rerun_s=…
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kumo-dev/kumo/bench/benchkit"
	"github.com/kumo-dev/kumo/builtins/ssh/sshdtest"
)

func main() {
	hosts := flag.Int("hosts", 50, "number of sshd hosts")
	rounds := flag.Int("rounds", 3, "rounds per tool")
	parallel := flag.Int("parallel", 64, "hosts at once, for every tool (kumo's ssh_run default)")
	drifted := flag.Int("drifted", 10, "hosts changed by hand before each round")
	kumo := flag.String("kumo", "bin/kumo", "the kumo binary")
	flag.Parse()
	if err := run(*hosts, *rounds, *parallel, *drifted, *kumo); err != nil {
		fmt.Fprintln(os.Stderr, "drift:", err)
		os.Exit(1)
	}
}

type bench struct {
	dir, home, key, data string
	servers              []*sshdtest.Server
	kumo                 string
	parallel, drifted    int
}

func run(n, rounds, parallel, drifted int, kumo string) error {
	if os.Getuid() != 0 {
		return fmt.Errorf("needs root: each host gets a folder of its own in a mount namespace")
	}
	kumo, err := filepath.Abs(kumo)
	if err != nil {
		return err
	}
	for _, tool := range []string{kumo, "ssh", "ansible-playbook", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (make bench-deps installs ansible; make build builds kumo)", tool)
		}
	}
	dir, err := os.MkdirTemp("", "kumo-drift-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	b := &bench{dir: dir, home: filepath.Join(dir, "home"), key: filepath.Join(dir, "id_ed25519"), data: filepath.Join(dir, "etc"),
		kumo: kumo, parallel: parallel, drifted: min(drifted, n)}
	os.MkdirAll(filepath.Join(b.home, ".ssh"), 0o700)
	os.MkdirAll(b.data, 0o755)
	pub, err := sshdtest.ClientKey(b.key)
	if err != nil {
		return err
	}
	fmt.Printf("starting %d sshd on 127.0.0.1, each with its own %s...\n", n, b.data)
	for i := 0; i < n; i++ {
		s, err := sshdtest.Start(sshdtest.Config{AuthorizedKeys: []string{pub}, PrivateMounts: true})
		if err != nil {
			return err
		}
		defer s.Stop()
		if err := s.MountTmpfs(b.data); err != nil {
			return err
		}
		b.servers = append(b.servers, s)
	}
	if err := b.writeFiles(); err != nil {
		return err
	}
	// Ansible's ControlPersist masters outlive it by a minute: end them.
	defer exec.Command("pkill", "-f", filepath.Join(b.dir, "cp")+"/").Run()
	var logins []time.Duration
	for i := 0; i < 5; i++ {
		start := time.Now()
		if _, err := b.eachHost("true", b.servers[0]); err != nil {
			return err
		}
		logins = append(logins, time.Since(start))
	}
	fmt.Printf("one OpenSSH login and command: %s (median of 5)\n", median(logins).Round(time.Millisecond))
	if _, err := b.kumoCmd("run", "drift.star", "-q"); err != nil {
		return err
	}
	defer b.kumoCmd("destroy", "--yes")
	if found, err := b.kumoCheck(); err != nil || len(found) != 0 {
		return fmt.Errorf("kumo check right after the run: drift on %v, %v", found, err)
	}
	if found, err := b.ansibleCheck(); err != nil || len(found) != 0 {
		return fmt.Errorf("ansible --check right after kumo's run: changes on %v, %v (the two jobs differ)", found, err)
	}

	want := map[string]bool{}
	for i := 0; i < b.drifted; i++ {
		want[fmt.Sprintf("h%d", i+1)] = true
	}
	results := map[string][]time.Duration{}
	timed := func(name string, f func() (map[string]bool, error), expect map[string]bool) error {
		start := time.Now()
		found, err := f()
		results[name] = append(results[name], time.Since(start))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if expect != nil && !sameSet(found, expect) {
			return fmt.Errorf("%s found drift on %v, want %v", name, slices.Sorted(maps.Keys(found)), slices.Sorted(maps.Keys(expect)))
		}
		return nil
	}
	for r := 0; r < rounds; r++ {
		if err := b.tamper(); err != nil {
			return err
		}
		for _, t := range []struct {
			name string
			f    func() (map[string]bool, error)
		}{{"kumo check", b.kumoCheck}, {"ansible --check", b.ansibleCheck}, {"floor", b.floor}} {
			if err := timed(t.name, t.f, want); err != nil {
				return err
			}
		}
		// Repairs: each must leave no drift behind.
		if err := timed("kumo run --verify", b.kumoVerify, nil); err != nil {
			return err
		}
		if found, err := b.floor(); err != nil || len(found) != 0 {
			return fmt.Errorf("after kumo run --verify: drift on %v, %v", slices.Sorted(maps.Keys(found)), err)
		}
		if err := b.tamper(); err != nil {
			return err
		}
		if err := timed("ansible-playbook", b.ansibleRun, nil); err != nil {
			return err
		}
		if found, err := b.floor(); err != nil || len(found) != 0 {
			return fmt.Errorf("after ansible-playbook: drift on %v, %v", slices.Sorted(maps.Keys(found)), err)
		}
	}

	med := map[string]float64{}
	for k, v := range results {
		med[k] = median(v).Seconds()
	}
	fmt.Printf("\nfinding drift on %d of %d OpenSSH hosts (6 steps each), %d at once, median of %d rounds\n\n", b.drifted, n, parallel, rounds)
	fmt.Printf("| %-20s | %9s | %-26s |\n", "tool", "median s", "ratio")
	fmt.Printf("|%s|%s|%s|\n", strings.Repeat("-", 22), strings.Repeat("-", 11), strings.Repeat("-", 28))
	row := func(name, base string) {
		fmt.Printf("| %-20s | %9.3f | %-26s |\n", name, med[name], fmt.Sprintf("%.2f× %s", med[name]/med[base], base))
	}
	row("kumo check", "kumo check")
	row("ansible --check", "kumo check")
	row("floor", "kumo check")
	row("kumo run --verify", "kumo run --verify")
	row("ansible-playbook", "kumo run --verify")
	fmt.Printf("\nRESULT hosts=%d kumo_check_s=%.3f ansible_check_s=%.3f floor_s=%.3f kumo_verify_s=%.3f ansible_rerun_s=%.3f\n",
		n, med["kumo check"], med["ansible --check"], med["floor"], med["kumo run --verify"], med["ansible-playbook"])
	return nil
}

const content = "port = 80\n"

// writeFiles writes the inventories, the ssh config, kumo's recipe,
// Ansible's playbook and the floor's script: one job, three ways.
func (b *bench) writeFiles() error {
	var known, inv, ans strings.Builder
	inv.WriteString("hosts:\n")
	ans.WriteString("[farm]\n")
	for i, s := range b.servers {
		known.WriteString(s.KnownHostsLine() + "\n")
		fmt.Fprintf(&inv, "  - {name: h%d, address: 127.0.0.1, port: %d, user: %s, key: %s, labels: {flavor: small}}\n", i+1, s.Port, s.User, b.key)
		fmt.Fprintf(&ans, "h%d ansible_host=127.0.0.1 ansible_port=%d ansible_user=%s ansible_python_interpreter=/usr/bin/python3\n", i+1, s.Port, s.User)
	}
	d := b.data
	files := map[string]string{
		filepath.Join(b.home, ".ssh", "known_hosts"): known.String(),
		filepath.Join(b.dir, "inventory.yaml"):       inv.String(),
		filepath.Join(b.dir, "ansible-hosts"):        ans.String(),
		filepath.Join(b.dir, "ssh_config"): fmt.Sprintf("Host *\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
			b.key, filepath.Join(b.home, ".ssh", "known_hosts")),
		filepath.Join(b.dir, "drift.star"): fmt.Sprintf(`# %%%% Hosts
load("@stdlib//files.star", "files")
nodes = unit_group("drift").create_unit("h", spec("onprem", "small"), nodes = %d).nodes()

# %%%% Configure
d = %q
for f in ["a", "b", "c"]:
    files.install(nodes, d + "/" + f + ".conf", %q, mode = 0o644, sudo = False)
files.directory(nodes, d + "/data", mode = 0o755, sudo = False)
files.link(nodes, d + "/current", d + "/data", sudo = False)
files.block(nodes, d + "/hosts", "lab", "198.18.0.2 ctl-1", sudo = False)
`, len(b.servers), d, content),
		filepath.Join(b.dir, "playbook.yml"): fmt.Sprintf(`- hosts: all
  gather_facts: false
  tasks:
    - copy: {dest: "%[1]s/a.conf", content: "port = 80\n", mode: "0644"}
    - copy: {dest: "%[1]s/b.conf", content: "port = 80\n", mode: "0644"}
    - copy: {dest: "%[1]s/c.conf", content: "port = 80\n", mode: "0644"}
    - file: {path: "%[1]s/data", state: directory, mode: "0755"}
    - file: {src: "%[1]s/data", dest: "%[1]s/current", state: link}
    - blockinfile: {path: "%[1]s/hosts", marker: "# {mark} kumo lab", block: "198.18.0.2 ctl-1", create: true}
`, d),
		// The floor: the same six comparisons in one command per host.
		filepath.Join(b.dir, "floor.sh"): fmt.Sprintf(`d=%s
want=$(printf 'port = 80\n' | sha256sum)
for f in a b c; do
  [ "$(sha256sum < $d/$f.conf)" = "$want" ] && [ "$(stat -c %%a $d/$f.conf)" = 644 ] || echo "$f.conf"
done
[ -d $d/data ] && [ "$(stat -c %%a $d/data)" = 755 ] || echo data
[ "$(readlink $d/current)" = "$d/data" ] || echo current
[ "$(sed -n '/^# BEGIN kumo lab$/,/^# END kumo lab$/p' $d/hosts)" = "$(printf '# BEGIN kumo lab\n198.18.0.2 ctl-1\n# END kumo lab')" ] || echo hosts
`, d),
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// vars are the environment settings every tool runs with.
func (b *bench) vars() []string {
	return []string{"HOME=" + b.home, "SSH_AUTH_SOCK=", "KUMO_ONPREM_INVENTORY=" + filepath.Join(b.dir, "inventory.yaml")}
}

func (b *bench) env() []string { return append(os.Environ(), b.vars()...) }

func (b *bench) kumoCmd(args ...string) ([]byte, error) {
	return benchkit.Kumo(b.kumo, b.dir, b.vars(), args...)
}

// kumoCheck runs kumo check --json: the hosts it found drift on. Its
// exit status 3 (drift) is what it is for, not a failure.
func (b *bench) kumoCheck() (map[string]bool, error) {
	cmd := exec.Command(b.kumo, "check", "drift.star", "--json")
	cmd.Dir, cmd.Env = b.dir, b.env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if exit, ok := err.(*exec.ExitError); err != nil && (!ok || exit.ExitCode() != 3) {
		return nil, fmt.Errorf("kumo check: %v: %s", err, stderr.String())
	}
	var report struct {
		Drift []struct {
			Node      string `json:"node"`
			Unchecked bool   `json:"unchecked"`
			What      string `json:"what"`
		} `json:"drift"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		return nil, fmt.Errorf("kumo check --json: %v: %s", err, out)
	}
	found := map[string]bool{}
	for _, d := range report.Drift {
		if d.Unchecked {
			return nil, fmt.Errorf("kumo could not check %s: %s", d.Node, d.What)
		}
		found[strings.SplitN(d.Node, " ", 2)[0]] = true
	}
	return onpremNames(found, b), nil
}

// onpremNames maps kumo's node names (h-1, ...) to the inventory's (h1,
// ...), which the other tools use.
func onpremNames(found map[string]bool, b *bench) map[string]bool {
	out, _ := b.kumoCmd("status", "--name", "drift", "--json", "--cached")
	var st struct {
		Runs []struct {
			Nodes []struct {
				Name     string `json:"name"`
				HostName string `json:"host_name"`
			} `json:"nodes"`
		} `json:"runs"`
	}
	json.Unmarshal(out, &st)
	host := map[string]string{}
	for _, r := range st.Runs {
		for _, n := range r.Nodes {
			host[n.Name] = n.HostName
		}
	}
	mapped := map[string]bool{}
	for n := range found {
		if h := host[n]; h != "" {
			n = h
		}
		mapped[n] = true
	}
	return mapped
}

func (b *bench) kumoVerify() (map[string]bool, error) {
	_, err := b.kumoCmd("run", "drift.star", "--verify", "-q")
	return nil, err
}

func (b *bench) ansible(check bool) ([]byte, error) {
	args := []string{"-i", filepath.Join(b.dir, "ansible-hosts"), "-f", strconv.Itoa(b.parallel), filepath.Join(b.dir, "playbook.yml")}
	if check {
		args = append(args, "--check")
	}
	cmd := exec.Command("ansible-playbook", args...)
	cmd.Env = append(b.env(),
		// Ansible's own connection reuse, as it ships, over kumo's ssh config.
		"ANSIBLE_SSH_ARGS=-F "+filepath.Join(b.dir, "ssh_config")+" -o ControlMaster=auto -o ControlPersist=60s",
		"ANSIBLE_PIPELINING=True", "ANSIBLE_PRIVATE_KEY_FILE="+b.key,
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(b.dir, "ansible-tmp"), "ANSIBLE_HOME="+filepath.Join(b.dir, "ansible-home"),
		"ANSIBLE_CONTROL_PATH_DIR="+filepath.Join(b.dir, "cp"), "ANSIBLE_NOCOLOR=1", "ANSIBLE_RETRY_FILES_ENABLED=False")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%v: %s", err, tailOf(out))
	}
	return out, nil
}

var recapLine = regexp.MustCompile(`(?m)^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)`)

// ansibleCheck runs the playbook with --check: the hosts where it would
// change something.
func (b *bench) ansibleCheck() (map[string]bool, error) {
	out, err := b.ansible(true)
	if err != nil {
		return nil, err
	}
	found := map[string]bool{}
	for _, m := range recapLine.FindAllStringSubmatch(string(out), -1) {
		if m[3] != "0" || m[4] != "0" {
			return nil, fmt.Errorf("ansible: %s unreachable or failed: %s", m[1], tailOf(out))
		}
		if m[2] != "0" {
			found[m[1]] = true
		}
	}
	return found, nil
}

func (b *bench) ansibleRun() (map[string]bool, error) {
	_, err := b.ansible(false)
	return nil, err
}

// floor runs floor.sh on every host with one OpenSSH client each,
// b.parallel at once: the hosts where it printed something.
func (b *bench) floor() (map[string]bool, error) {
	script, err := os.ReadFile(filepath.Join(b.dir, "floor.sh"))
	if err != nil {
		return nil, err
	}
	outs, err := b.eachHost(string(script))
	found := map[string]bool{}
	for i, out := range outs {
		if strings.TrimSpace(out) != "" {
			found[fmt.Sprintf("h%d", i+1)] = true
		}
	}
	return found, err
}

// tamper changes the first b.drifted hosts by hand: one file's text and
// the folder's mode.
func (b *bench) tamper() error {
	cmd := fmt.Sprintf("echo 'port = 8080' > %[1]s/a.conf && chmod 700 %[1]s/data", b.data)
	_, err := b.eachHost(cmd, b.servers[:b.drifted]...)
	return err
}

// eachHost runs command on the given servers (all by default) with one
// OpenSSH client each, b.parallel at once, and returns their outputs.
func (b *bench) eachHost(command string, servers ...*sshdtest.Server) ([]string, error) {
	if servers == nil {
		servers = b.servers
	}
	outs := make([]string, len(servers))
	errs := make([]error, len(servers))
	slots := make(chan struct{}, b.parallel)
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			cmd := exec.Command("ssh", "-F", filepath.Join(b.dir, "ssh_config"), "-p", strconv.Itoa(s.Port), s.User+"@127.0.0.1", command)
			cmd.Env = b.env()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			outs[i] = string(out)
			if err != nil {
				errs[i] = fmt.Errorf("ssh %s: %v: %s", s.Addr, err, stderr.String())
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return outs, err
		}
	}
	return outs, nil
}

func tailOf(out []byte) string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
