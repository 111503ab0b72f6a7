// Command fanout benchmarks running `true` on N OpenSSH hosts (default
// 50): kumo (cold: new connections; warm: a second ssh_run in the same
// run) side by side with ansible (-m raw), parallel-ssh, parallel OpenSSH
// clients, and those clients over open ControlMaster connections, all
// with the same parallelism. The OpenSSH-based peers run twice: with
// OpenSSH's default key exchange (sntrup761x25519-sha512, post-quantum)
// and with KexAlgorithms=curve25519-sha256, the exchange kumo's SSH
// library uses, for a like-for-like comparison.
//
//	make bench-deps && go run ./bench/fanout [-hosts 50] [-parallel 64] [-rounds 5] [-kumo bin/kumo]
//
// It starts the sshd servers itself on 127.0.0.1 (as the kumotest user
// when run as root, see builtins/ssh/sshdtest), accepting only Debian's
// default environment (AcceptEnv LANG LC_*), so that kumo's env= takes
// its way for a stock sshd: the "kumo env4" row is a warm ssh_run with
// four variables, beside "kumo warm" with none. It ends with one line:
// RESULT kumo_cold_s=… kumo_warm_s=… kumo_env4_s=… pssh_s=… ansible_s=… openssh_s=… controlmaster_s=… (…_kex25519_s=…) kumo_peak_rss_mb=…
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kumo-dev/kumo/bench/benchkit"
	"github.com/kumo-dev/kumo/builtins/ssh/sshdtest"
)

func main() {
	hosts := flag.Int("hosts", 50, "number of sshd hosts")
	rounds := flag.Int("rounds", 5, "rounds per tool")
	parallel := flag.Int("parallel", 64, "connections at once, for every tool (kumo's ssh_run default)")
	kumo := flag.String("kumo", "bin/kumo", "the kumo binary")
	flag.Parse()
	if err := run(*hosts, *rounds, *parallel, *kumo); err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
}

type bench struct {
	dir, home, key string
	servers        []*sshdtest.Server
	kumo           string
	parallel       int
	peakRSS        int64
}

// sshConfigs are the OpenSSH client settings the peers run with: the
// default key exchange, and kumo's.
var sshConfigs = []struct{ suffix, file, extra string }{
	{"", "ssh_config", ""},
	{" kex25519", "ssh_config_kex25519", "  KexAlgorithms curve25519-sha256\n"},
}

func run(n, rounds, parallel int, kumo string) error {
	kumo, err := filepath.Abs(kumo)
	if err != nil {
		return err
	}
	for _, tool := range []string{kumo, "ssh", "parallel-ssh", "ansible"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (make bench-deps installs ansible and pssh; make build builds kumo)", tool)
		}
	}
	dir, err := os.MkdirTemp("", "kumo-fanout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &bench{dir: dir, home: filepath.Join(dir, "home"), key: filepath.Join(dir, "id_ed25519"), kumo: kumo, parallel: parallel}
	os.MkdirAll(filepath.Join(b.home, ".ssh"), 0o700)
	pub, err := sshdtest.ClientKey(b.key)
	if err != nil {
		return err
	}
	fmt.Printf("starting %d sshd on 127.0.0.1...\n", n)
	for i := 0; i < n; i++ {
		s, err := sshdtest.Start(sshdtest.Config{AuthorizedKeys: []string{pub}, AcceptEnv: "LANG LC_*"})
		if err != nil {
			return err
		}
		defer s.Stop()
		b.servers = append(b.servers, s)
	}
	if err := b.writeFiles(); err != nil {
		return err
	}

	results := map[string][]time.Duration{}
	cold, warm, env4, err := b.kumoRounds(rounds)
	if err != nil {
		return fmt.Errorf("kumo: %w", err)
	}
	results["kumo cold"], results["kumo warm"], results["kumo env4"] = cold, warm, env4
	for _, conf := range sshConfigs {
		config := filepath.Join(b.dir, conf.file)
		for _, peer := range []struct {
			name string
			f    func(config string) error
		}{
			{"pssh", b.pssh}, {"ansible", b.ansible}, {"openssh", b.openssh},
		} {
			for r := 0; r < rounds; r++ {
				start := time.Now()
				if err := peer.f(config); err != nil {
					return fmt.Errorf("%s: %w", peer.name+conf.suffix, err)
				}
				results[peer.name+conf.suffix] = append(results[peer.name+conf.suffix], time.Since(start))
			}
		}
		cm, err := b.controlMasterRounds(rounds, config)
		if err != nil {
			return fmt.Errorf("controlmaster: %w", err)
		}
		results["controlmaster"+conf.suffix] = cm
	}

	med := map[string]float64{}
	for k, v := range results {
		med[k] = median(v).Seconds()
	}
	fmt.Printf("\n`true` on %d OpenSSH hosts, %d at once, median of %d rounds (2-core machine)\n\n", n, parallel, rounds)
	fmt.Printf("| %-22s | %9s | %-15s |\n", "tool", "median s", "ratio to kumo")
	fmt.Printf("|%s|%s|%s|\n", strings.Repeat("-", 24), strings.Repeat("-", 11), strings.Repeat("-", 17))
	row := func(name string, base string) {
		fmt.Printf("| %-22s | %9.3f | %-15s |\n", name, med[name], fmt.Sprintf("%.1f× %s", med[name]/med[base], base))
	}
	row("kumo cold", "kumo cold")
	for _, conf := range sshConfigs {
		row("pssh"+conf.suffix, "kumo cold")
		row("ansible"+conf.suffix, "kumo cold")
		row("openssh"+conf.suffix, "kumo cold")
	}
	row("kumo warm", "kumo warm")
	row("kumo env4", "kumo warm")
	for _, conf := range sshConfigs {
		row("controlmaster"+conf.suffix, "kumo warm")
	}
	fmt.Printf("\nkumo's peak RSS: %d MB\n", b.peakRSS>>20)
	var result []string
	for _, name := range []string{"kumo cold", "kumo warm", "kumo env4", "pssh", "ansible", "openssh", "controlmaster",
		"pssh kex25519", "ansible kex25519", "openssh kex25519", "controlmaster kex25519"} {
		result = append(result, fmt.Sprintf("%s_s=%.3f", strings.ReplaceAll(name, " ", "_"), med[name]))
	}
	fmt.Printf("\nRESULT %s kumo_peak_rss_mb=%d\n", strings.Join(result, " "), b.peakRSS>>20)
	return nil
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// writeFiles writes what each tool needs: known_hosts, an onprem
// inventory, a pssh host list, an ansible inventory and an ssh_config.
func (b *bench) writeFiles() error {
	var known, inv, pssh, ans strings.Builder
	inv.WriteString("hosts:\n")
	ans.WriteString("[farm]\n")
	for i, s := range b.servers {
		known.WriteString(s.KnownHostsLine() + "\n")
		fmt.Fprintf(&inv, "  - {name: h%d, address: 127.0.0.1, port: %d, user: %s, key: %s, labels: {flavor: small}}\n", i+1, s.Port, s.User, b.key)
		fmt.Fprintf(&pssh, "%s@127.0.0.1:%d\n", s.User, s.Port)
		fmt.Fprintf(&ans, "h%d ansible_host=127.0.0.1 ansible_port=%d ansible_user=%s\n", i+1, s.Port, s.User)
	}
	files := map[string]string{
		filepath.Join(b.home, ".ssh", "known_hosts"): known.String(),
		filepath.Join(b.dir, "inventory.yaml"):       inv.String(),
		filepath.Join(b.dir, "pssh-hosts"):           pssh.String(),
		filepath.Join(b.dir, "ansible-hosts"):        ans.String(),

		filepath.Join(b.dir, "fanout.star"): `# %% Allocate
nodes = unit_group("fanout").create_unit("f", spec("onprem", "small"), nodes = ` + fmt.Sprint(len(b.servers)) + `).nodes()
# %% Cold
ssh_run(nodes, "true", parallel = ` + fmt.Sprint(b.parallel) + `)
# %% Warm
ssh_run(nodes, "true", parallel = ` + fmt.Sprint(b.parallel) + `)
# %% Env4
ssh_run(nodes, "true", parallel = ` + fmt.Sprint(b.parallel) + `, env = {"A": "1", "B": "two words", "C": "it's", "D": "$(not run)"})
`,
	}
	for _, conf := range sshConfigs {
		files[filepath.Join(b.dir, conf.file)] = fmt.Sprintf("Host *\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n  BatchMode yes\n  ControlMaster no\n%s",
			b.key, filepath.Join(b.home, ".ssh", "known_hosts"), conf.extra)
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

// kumoRounds allocates the hosts once, then runs the recipe from its
// "Cold" cell in a new kumo process per round: the cold cell opens 50 new
// connections, the warm cell reuses them. Cell times come from --json.
func (b *bench) kumoRounds(rounds int) (cold, warm, env4 []time.Duration, err error) {
	kumo := func(args ...string) ([]byte, error) {
		out, rss, err := benchkit.KumoRSS(b.kumo, b.dir, b.vars(), args...)
		b.peakRSS = max(b.peakRSS, rss)
		return out, err
	}
	if _, err := kumo("run", "fanout.star"); err != nil {
		return nil, nil, nil, err
	}
	defer kumo("destroy", "--yes")
	for r := 0; r < rounds; r++ {
		out, err := kumo("run", "fanout.star", "--from", "Cold", "--json")
		if err != nil {
			return nil, nil, nil, err
		}
		times := benchkit.RanCells(out)
		c, okC := times["Cold"]
		w, okW := times["Warm"]
		e, okE := times["Env4"]
		if !okC || !okW || !okE {
			return nil, nil, nil, fmt.Errorf("no cold, warm and env4 timings in: %s", out)
		}
		cold, warm, env4 = append(cold, c), append(warm, w), append(env4, e)
	}
	return cold, warm, env4, nil
}

func (b *bench) pssh(config string) error {
	cmd := exec.Command("parallel-ssh", "-p", fmt.Sprint(b.parallel), "-t", "120", "-h", filepath.Join(b.dir, "pssh-hosts"),
		"-x", "-F "+config, "true")
	cmd.Env = b.env()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

func (b *bench) ansible(config string) error {
	cmd := exec.Command("ansible", "all", "-i", filepath.Join(b.dir, "ansible-hosts"), "-m", "raw", "-a", "true", "-f", fmt.Sprint(b.parallel))
	cmd.Env = append(b.env(),
		"ANSIBLE_SSH_ARGS=-F "+config, // ControlMaster no: every round connects anew
		"ANSIBLE_SSH_USETTY=False",    // raw asks for a tty by default; an unprivileged sshd cannot make one
		"ANSIBLE_PRIVATE_KEY_FILE="+b.key, "ANSIBLE_LOCAL_TEMP="+filepath.Join(b.dir, "ansible-tmp"),
		"ANSIBLE_HOME="+filepath.Join(b.dir, "ansible-home"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// parallelSSH runs one ssh client per host, b.parallel at once, with
// the config file and extra options.
func (b *bench) parallelSSH(config string, extra func(i int) []string) error {
	var wg sync.WaitGroup
	errs := make([]error, len(b.servers))
	slots := make(chan struct{}, b.parallel)
	for i, s := range b.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			args := append([]string{"-F", config, "-p", fmt.Sprint(s.Port)}, extra(i)...)
			args = append(args, s.User+"@127.0.0.1", "true")
			cmd := exec.Command("ssh", args...)
			cmd.Env = b.env()
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("%v: %s", err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) openssh(config string) error {
	return b.parallelSSH(config, func(int) []string { return nil })
}

// controlMasterRounds opens one master connection per host, then times
// rounds of clients that multiplex over them (the warm OpenSSH peer).
func (b *bench) controlMasterRounds(rounds int, config string) ([]time.Duration, error) {
	sock := func(i int) string { return filepath.Join(b.dir, fmt.Sprintf("cm-%d", i)) }
	err := b.parallelSSH(config, func(i int) []string {
		return []string{"-o", "ControlMaster=yes", "-o", "ControlPersist=300", "-o", "ControlPath=" + sock(i)}
	})
	if err != nil {
		return nil, err
	}
	defer b.parallelSSH(config, func(i int) []string { return []string{"-o", "ControlPath=" + sock(i), "-O", "exit"} })
	var out []time.Duration
	for r := 0; r < rounds; r++ {
		start := time.Now()
		if err := b.parallelSSH(config, func(i int) []string { return []string{"-o", "ControlPath=" + sock(i)} }); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}
