// Package container is kumo's provider of real Linux machines on one
// host: each node is a systemd-nspawn container booting a Debian image
// with systemd as PID 1, its own cgroups (the flavor's limits), its own
// private address on its unit group's network, and SSH. Recipes written
// for clouds (apt, systemd units, users, services, node-to-node traffic)
// run on it unchanged; it needs root and systemd-nspawn, no cloud and no
// hardware virtualization.
//
// A node lives in <dir>/nodes/<token>/: meta.json, upper/ and work/ (its
// overlay layer on the shared image, a few MB), root/ (the overlay's
// mount point, what the node boots), console.log and nspawn.pid. Like
// every provider it is idempotent by the intent token, and the folder is
// built beside its final name, so a kill -9 of kumo at any point leaves
// nothing destroy cannot find.
package container

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kumo-dev/kumo/providers"
)

// Provider makes container nodes.
type Provider struct {
	Dir    string // where nodes live (beside the state)
	Images Images
	NetDir string // the host's network records (DefaultNetDir)
}

// New returns the provider keeping nodes under dir.
func New(dir string) *Provider {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return &Provider{Dir: dir, Images: Images{Dir: DefaultImagesDir()}, NetDir: DefaultNetDir}
}

func (p *Provider) Name() string { return "container" }

// Spec is a container spec's fields. cpus, memory_gb and pids are
// enforced by the node's cgroups; disk_gb is recorded (nodes share the
// host's disk).
type Spec struct {
	Image    string  `json:"image"` // a built image (kumo image list), default debian-bookworm
	CPUs     float64 `json:"cpus"`  // a CPU quota: 0.5 is half a CPU
	MemoryGB float64 `json:"memory_gb"`
	DiskGB   int     `json:"disk_gb"`
	Pids     int     `json:"pids"` // default 4096
	// Shared maps paths in the node to host folders ("" for a folder the
	// unit group shares).
	Shared       map[string]string `json:"shared"`
	Network      string            `json:"network"`       // join another unit group's network
	NetworkRange string            `json:"network_range"` // where group networks take their /24 from
	User         string            `json:"user"`          // the login user, default root; made at first boot if the image lacks it
	// Public gives the node an address on the sites' internet, mapped
	// 1:1 to its private one: where other sites reach it.
	Public bool `json:"public"`
	// NAT is how the group's site router maps its nodes' traffic to the
	// internet: "" keeps the source port where it is free, "symmetric"
	// takes a new one for every destination (AWS NAT gateways, carrier
	// NAT), which defeats direct paths between two sites behind NAT.
	NAT string `json:"nat"`
	// Ports are all open on the group's network and from the host:
	// recorded, so that a recipe written for a cloud runs unchanged.
	Ports []int `json:"ports"`
}

func (p *Provider) NewSpec() any { return &Spec{} }

// specOf reads and checks a container spec.
func specOf(fields map[string]any) (Spec, error) {
	s, err := providers.ReadSpec[Spec]("container", fields)
	if err != nil {
		return s, err
	}
	if _, err := s.networkRange(); err != nil {
		return s, err
	}
	if s.NAT != NATPortPreserving && s.NAT != NATSymmetric {
		return s, fmt.Errorf("container: nat %q: want \"\" (the source port kept where free) or %q (a new port per destination)", s.NAT, NATSymmetric)
	}
	if s.User != "" && !loginName.MatchString(s.User) {
		return s, fmt.Errorf("container: user %q: want a login name (lower-case letters, digits, _ and -, not starting with a digit or -)", s.User)
	}
	for inNode := range s.Shared {
		if !filepath.IsAbs(inNode) {
			return s, fmt.Errorf("container: shared: %q is not an absolute path in the node", inNode)
		}
	}
	return s, nil
}

// meta is a node's own record.
type meta struct {
	Token, Run, Group, Unit, Name string
	User                          string
	Image, ImageRoot              string // name, and the extracted tree it boots
	Machine                       string // systemd-nspawn's machine name: unique on the host
	NetKey, Bridge                string
	IP                            string
	Public                        string `json:",omitempty"` // its address on the sites' internet
	Limits                        limits
	Shared                        map[string]string // path in the node -> host folder
	HostKey                       string            // its SSH host key, authorized_keys format
	AptCache                      string            `json:",omitempty"` // the package cache its apt uses
	PoweredOff                    bool              `json:",omitempty"`
}

const partialSuffix = ".partial"

func (p *Provider) nodeDir(token string) (string, error) {
	if token == "" || strings.ContainsAny(token, "/\\.") {
		return "", fmt.Errorf("container: bad node id %q", token)
	}
	return filepath.Join(p.Dir, "nodes", token), nil
}

// checkHost says what this host lacks to run container nodes.
func checkHost() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, fmt.Sprintf("root (kumo runs as uid %d)", os.Geteuid()))
	}
	for cmd, pkg := range map[string]string{"systemd-nspawn": "systemd-container", "nft": "nftables", "ip": "iproute2"} {
		if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, fmt.Sprintf("%s (apt-get install %s)", cmd, pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("container: this host cannot run container nodes: it needs %s. The local provider needs neither root nor these (spec(\"local\", ...))", strings.Join(missing, ", "))
	}
	return nil
}

// Validate refuses, before anything is made, a host that cannot run
// nodes, an image that is not built and a range that is not private.
func (p *Provider) Validate(ctx context.Context, flavor string, fields map[string]any) error {
	if err := checkHost(); err != nil {
		return err
	}
	s, err := specOf(fields)
	if err != nil {
		return err
	}
	_, err = p.Images.Current(s.image())
	return err
}

func (s Spec) image() string {
	if s.Image != "" {
		return s.Image
	}
	return DefaultImage
}

// networkRange is where the group's network takes its /24 from:
// network_range=, else $KUMO_CONTAINER_RANGE, else 198.18.0.0/15.
func (s Spec) networkRange() (netip.Prefix, error) {
	r := s.NetworkRange
	if r == "" {
		r = os.Getenv("KUMO_CONTAINER_RANGE")
	}
	if r == "" {
		return DefaultRange, nil
	}
	prefix, err := netip.ParsePrefix(r)
	if err != nil || !prefix.Addr().Is4() {
		return prefix, fmt.Errorf("container: network range %q: want an IPv4 prefix such as 198.18.0.0/15", r)
	}
	return prefix, nil
}

// envRange is $KUMO_CONTAINER_RANGE when it is a good one, else the
// default range.
func envRange() netip.Prefix {
	r, err := Spec{}.networkRange()
	if err != nil {
		return DefaultRange
	}
	return r
}

func (s Spec) limits() limits {
	l := limits{Pids: s.Pids, MemoryBytes: int64(s.MemoryGB * (1 << 30)), CPUs: s.CPUs}
	if l.Pids == 0 {
		l.Pids = 4096
	}
	return l
}

// Create makes the node and boots it, or returns the one made under
// req.Token.
func (p *Provider) Create(ctx context.Context, req providers.NodeRequest) (providers.Instance, error) {
	if err := checkHost(); err != nil {
		return providers.Instance{}, err
	}
	dir, err := p.nodeDir(req.Token)
	if err != nil {
		return providers.Instance{}, err
	}
	m, err := readMeta(dir)
	if err != nil {
		partial := dir + partialSuffix
		os.RemoveAll(partial)
		// The folder first: a network's prune takes an address whose
		// node has no folder for one given up.
		if err := os.MkdirAll(partial, 0o755); err != nil {
			return providers.Instance{}, err
		}
		if m, err = p.makeNode(partial, req); err != nil {
			os.RemoveAll(partial)
			return providers.Instance{}, err
		}
		if err := os.Rename(partial, dir); err != nil {
			return providers.Instance{}, err
		}
	}
	if !m.PoweredOff {
		if err := p.start(ctx, dir, m); err != nil {
			return providers.Instance{}, err
		}
	}
	return p.instance(dir, m), nil
}

// makeNode builds a node's folder: its record, and in its overlay layer
// what makes it this node: hostname, address, SSH host key, the group's
// key for root, and the host's resolver, apt proxy and /etc/hosts pins.
func (p *Provider) makeNode(dir string, req providers.NodeRequest) (meta, error) {
	s, err := specOf(req.Spec)
	if err != nil {
		return meta{}, err
	}
	img, err := p.Images.Current(s.image())
	if err != nil {
		return meta{}, err
	}
	rng, _ := s.networkRange() // checked by specOf
	netGroup := req.Group
	if s.Network != "" {
		netGroup = s.Network // join another group's network
	}
	stateDir := filepath.Dir(p.Dir)
	key := netKey(stateDir, req.Run, netGroup)
	nw, addr, public, err := p.attach(key, stateDir+" "+req.Run+"/"+netGroup, req.Token, req.Index, rng, s.Public, s.NAT)
	if err != nil {
		return meta{}, err
	}
	user := s.User
	if user == "" {
		user = "root"
	}
	m := meta{Token: req.Token, Run: req.Run, Group: req.Group, Unit: req.Unit, Name: req.Name, User: user,
		Image: img.Name, ImageRoot: img.Root, Machine: "k" + req.Token[:min(len(req.Token), 11)],
		NetKey: key, Bridge: nw.Bridge, IP: addr.String(), Limits: s.limits(), Shared: map[string]string{}}
	if public.IsValid() {
		m.Public = public.String()
	}
	for inNode, host := range s.Shared {
		if host == "" { // the group's own shared folder for that path
			host = filepath.Join(p.Dir, "shared", req.Run, req.Group, strings.ReplaceAll(strings.Trim(inNode, "/"), "/", "_"))
		}
		if err := os.MkdirAll(host, 0o755); err != nil {
			return meta{}, fmt.Errorf("container: shared folder %s: %w", host, err)
		}
		m.Shared[inNode] = host
	}
	upper := filepath.Join(dir, "upper")
	for _, d := range []string{upper, filepath.Join(dir, "work"), filepath.Join(dir, "root"),
		filepath.Join(upper, "etc", "ssh"), filepath.Join(upper, "etc", "systemd", "network"), filepath.Join(upper, "root", ".ssh")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return meta{}, err
		}
	}
	os.Chmod(filepath.Join(upper, "root", ".ssh"), 0o700)
	hostKey, pub, err := newHostKey(req.Name)
	if err != nil {
		return meta{}, err
	}
	m.HostKey = pub
	network := fmt.Sprintf("# kumo: the node's address on its group's network\n[Match]\nName=host0\n\n[Network]\nAddress=%s\nGateway=%s\n",
		netip.PrefixFrom(addr, nw.Subnet.Bits()), nw.gateway())
	files := []nodeFile{
		{"etc/hostname", []byte(req.Name + "\n"), 0o644, ""},
		// 10-: before the image's own 80-container-host0.network (DHCP).
		{"etc/systemd/network/10-kumo.network", []byte(network), 0o644, ""},
		{"etc/ssh/ssh_host_ed25519_key", hostKey, 0o600, ""},
		{"etc/ssh/ssh_host_ed25519_key.pub", []byte(pub + "\n"), 0o644, ""},
		{"root/.ssh/authorized_keys", []byte(req.AuthorizedKey + "\n"), 0o600, ""},
		{"etc/resolv.conf", hostFile("/etc/resolv.conf"), 0o644, ""},
		{"etc/hosts", nodeHosts(req.Name, string(hostFile("/etc/hosts"))), 0o644, ""},
	}
	if user != "root" {
		files = append(files, loginUserFiles(user, req.AuthorizedKey)...)
	}
	for _, f := range hostAptProxies() {
		files = append(files, nodeFile{strings.TrimPrefix(f, "/"), hostFile(f), 0o644, ""})
	}
	if url := aptCache(nw.hostAddress()); url != "" {
		m.AptCache = url
		files = append(files, nodeFile{"etc/apt/apt.conf.d/99kumo-apt-cache", aptCacheConf(url), 0o644, ""})
	}
	for _, f := range files {
		path := filepath.Join(upper, f.path)
		os.MkdirAll(filepath.Dir(path), 0o755)
		if f.link != "" {
			if err := os.Symlink(f.link, path); err != nil {
				return meta{}, err
			}
			continue
		}
		if err := os.WriteFile(path, f.data, f.mode); err != nil {
			return meta{}, err
		}
	}
	// meta.json last: its presence means the folder is complete.
	return m, writeMeta(dir, m)
}

// A nodeFile is written into a new node's overlay layer (a symlink to
// link when link is set).
type nodeFile struct {
	path string
	data []byte
	mode os.FileMode
	link string
}

var loginName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// loginUserFiles make the login user at first boot, before sshd starts,
// as cloud-init does on a cloud image: an account with the group's key
// that may sudo without a password.
func loginUserFiles(user, authorizedKey string) []nodeFile {
	script := fmt.Sprintf(`set -e
u=%s
id -u "$u" >/dev/null 2>&1 || useradd -m -s /bin/bash -G sudo "$u"
home=$(getent passwd "$u" | cut -d: -f6)
install -d -m 700 -o "$u" -g "$u" "$home/.ssh"
cat > "$home/.ssh/authorized_keys" <<'KEY'
%s
KEY
chown "$u:$u" "$home/.ssh/authorized_keys"
chmod 600 "$home/.ssh/authorized_keys"
echo "$u ALL=(ALL) NOPASSWD:ALL" > /etc/sudoers.d/90-kumo-login
chmod 440 /etc/sudoers.d/90-kumo-login
mkdir -p /var/lib/kumo
touch /var/lib/kumo/login-user
`, user, strings.TrimSpace(authorizedKey))
	unit := `[Unit]
Description=kumo: the login user, as cloud-init makes it
Before=ssh.service
ConditionPathExists=!/var/lib/kumo/login-user

[Service]
Type=oneshot
ExecStart=/bin/sh /usr/local/lib/kumo/login-user

[Install]
WantedBy=multi-user.target
`
	return []nodeFile{
		{path: "usr/local/lib/kumo/login-user", data: []byte(script), mode: 0o700},
		{path: "etc/systemd/system/kumo-login-user.service", data: []byte(unit), mode: 0o644},
		{path: "etc/systemd/system/multi-user.target.wants/kumo-login-user.service", link: "/etc/systemd/system/kumo-login-user.service"},
	}
}

// newHostKey makes the node's SSH host key, so that kumo knows it (and
// pins it) before first contact.
func newHostKey(name string) (private []byte, public string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "kumo node "+name)
	if err != nil {
		return nil, "", err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, "", err
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))), nil
}

func hostFile(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// nodeHosts is the node's /etc/hosts: its own name, and the pins of other
// names in the host's (hosts, its text): a mirror pinned to an address.
func nodeHosts(name, hosts string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n", name)
	for _, line := range strings.Split(hosts, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], "127.") || f[0] == "::1" || strings.HasPrefix(f[0], "ff0") || strings.HasPrefix(f[0], "fe00") {
			continue
		}
		b.WriteString(line + "\n")
	}
	return []byte(b.String())
}

// hostAptProxies are the host's apt files that set a proxy: nodes fetch
// packages the way the host does.
func hostAptProxies() []string {
	files, _ := filepath.Glob("/etc/apt/apt.conf.d/*")
	var out []string
	for _, f := range files {
		if strings.Contains(strings.ToLower(string(hostFile(f))), "proxy") {
			out = append(out, f)
		}
	}
	return out
}

// aptCache is the package cache a node fetches through: $KUMO_APT_CACHE
// (a proxy URL; "off" for none), else apt-cacher-ng on this host when it
// listens on its port 3142, reached at the host's address on the group's
// bridge. Nodes then download each package from the mirror once between
// them.
func aptCache(host netip.Addr) string {
	switch v := os.Getenv("KUMO_APT_CACHE"); v {
	case "off", "none":
		return ""
	case "":
		c, err := net.DialTimeout("tcp", "127.0.0.1:3142", 300*time.Millisecond)
		if err != nil {
			return ""
		}
		c.Close()
		return "http://" + net.JoinHostPort(host.String(), "3142")
	default:
		return v
	}
}

// aptCacheConf points apt's HTTP downloads at the cache; HTTPS sources go
// direct, since apt-cacher-ng does not tunnel them unless told to.
func aptCacheConf(url string) []byte {
	return []byte(fmt.Sprintf("# kumo: packages through the host's cache\nAcquire::http::Proxy %q;\nAcquire::https::Proxy \"DIRECT\";\n", url))
}

// running reports whether the node's systemd-nspawn runs, and its pid.
// The pid is trusted only if that process is nspawn for this node.
func running(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "nspawn.pid"))
	if err != nil {
		return 0, false
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	if pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), filepath.Join(dir, "root")) {
		return 0, false
	}
	stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if i := strings.LastIndexByte(string(stat), ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
		return 0, false
	}
	return pid, true
}

// mounted reports whether the node's overlay is mounted.
func mounted(root string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == root {
			return true
		}
	}
	return false
}

// start mounts the node's overlay, makes its cgroups and boots it with
// systemd-nspawn in its own session (the node outlives kumo).
func (p *Provider) start(ctx context.Context, dir string, m meta) error {
	if _, ok := running(dir); ok {
		return nil
	}
	root := filepath.Join(dir, "root")
	if !mounted(root) {
		opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", m.ImageRoot, filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
		if err := syscall.Mount("overlay", root, "overlay", 0, opts); err != nil {
			return fmt.Errorf("container: mounting %s's overlay: %w", m.Name, err)
		}
	}
	// Leftovers of a node killed with kumo (a crash): nothing may stay in
	// its cgroups when it boots again.
	killCgroups(m.Machine)
	procs, err := makeCgroups(m.Machine, m.Limits)
	if err != nil {
		return err
	}
	args := []string{"systemd-nspawn", "--quiet", "-D", root, "-M", m.Machine, "-b", "--register=no", "--keep-unit",
		"--network-bridge=" + m.Bridge, "--resolv-conf=off", "--link-journal=no", "--console=read-only"}
	for inNode, host := range m.Shared {
		args = append(args, "--bind="+host+":"+inNode)
	}
	// FUSE lets nodes mount each other's folders (sshfs): this kernel
	// has no NFS, and nspawn does not give containers /dev/fuse.
	if _, err := os.Stat("/dev/fuse"); err == nil {
		args = append(args, "--bind=/dev/fuse")
	}
	// TUN lets nodes run a userspace WireGuard (kumo-wg): the kernel
	// they share may have no WireGuard module.
	if _, err := os.Stat("/dev/net/tun"); err == nil {
		args = append(args, "--bind=/dev/net/tun")
	}
	// The shell puts itself in the node's cgroups and becomes nspawn.
	script := `for f in "$@"; do case "$f" in --) break;; esac; echo $$ > "$f" || exit 1; done; while [ "$1" != -- ]; do shift; done; shift; exec "$@"`
	shArgs := append([]string{"-c", script, "sh"}, procs...)
	shArgs = append(shArgs, "--")
	shArgs = append(shArgs, args...)
	cmd := exec.Command("/bin/sh", shArgs...)
	logf, err := os.OpenFile(filepath.Join(dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		err = fmt.Errorf("container: starting systemd-nspawn for %s: %w", m.Name, err)
		if errors.Is(err, syscall.ENOMEM) {
			return &providers.CapacityError{Err: fmt.Errorf("%w: the container host is out of memory", err)}
		}
		return err
	}
	if err := providers.WriteFileAtomic(filepath.Join(dir, "nspawn.pid"), []byte(fmt.Sprintf("%d\n", cmd.Process.Pid)), 0o600); err != nil {
		return err
	}
	go cmd.Wait() // reaped if it exits while kumo runs
	// Up when the node's systemd has finished booting (as a VM is ready
	// after boot); SSH readiness is the engine's to wait for.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		pid, ok := running(dir)
		if ok && initPID(pid) > 0 {
			return waitBooted(ctx, dir, m, pid)
		}
		if !ok && cmd.ProcessState != nil {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("container: %s did not boot; see %s", m.Name, filepath.Join(dir, "console.log"))
}

// waitBooted waits, inside the node, until its systemd has finished
// starting up. A node whose boot ends "degraded" (a unit failed) is
// booted all the same: the recipe sees it, as on any machine. The node's
// PID 1 is looked up on every try: nspawn's first child early on is an
// intermediate process that soon exits.
func waitBooted(ctx context.Context, dir string, m meta, nspawn int) error {
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	last := ""
	for {
		var out []byte
		if init := initPID(nspawn); init > 0 {
			// Asked again and again rather than with --wait: a boot that
			// never ends must not hold kumo with it. nsenter forks for the
			// PID namespace; WaitDelay keeps an orphaned systemctl from
			// holding the pipe open after a kill.
			cmd := exec.CommandContext(ctx, "nsenter", "-t", fmt.Sprint(init), "-m", "-u", "-i", "-n", "-p",
				"systemctl", "is-system-running")
			cmd.WaitDelay = time.Second
			out, _ = cmd.Output()
		}
		// "offline" (or nothing) until the node's manager answers, then
		// "starting" until it is done.
		if last = strings.TrimSpace(string(out)); last == "running" || last == "degraded" {
			return nil
		}
		if _, ok := running(dir); !ok {
			tail := consoleTail(dir)
			err := fmt.Errorf("container: %s stopped while booting: %s", m.Name, tail)
			if outOfMemory(tail) {
				// As a cloud without room: a placement tries the next candidate.
				return &providers.CapacityError{Err: fmt.Errorf("%w: the container host is out of memory", err)}
			}
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("container: %s did not finish booting in %s (systemd says %q); see %s", m.Name, bootTimeout, last, "console.log")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// consoleTail is the end of a node's console, where systemd says why it
// did not boot.
func consoleTail(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "console.log"))
	lines := strings.Split(strings.TrimSpace(ansi.ReplaceAllString(string(b), "")), "\n")
	if len(lines) > 4 {
		lines = lines[len(lines)-4:]
	}
	return strings.Join(lines, " / ") + " (" + filepath.Join(dir, "console.log") + ")"
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// outOfMemory reports whether a node's console says its boot failed for
// want of memory on the host (the kernel's or systemd's words for it).
func outOfMemory(console string) bool {
	lower := strings.ToLower(console)
	for _, sign := range []string{"cannot allocate memory", "out of memory", "oom-kill", "failed to fork"} {
		if strings.Contains(lower, sign) {
			return true
		}
	}
	return false
}

// bootTimeout is how long a node's systemd may take to boot: many nodes
// booting at once on two cores take minutes.
const bootTimeout = 5 * time.Minute

// initPID is the node's PID 1 (nspawn's child), or 0.
func initPID(nspawn int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", nspawn, nspawn))
	if err != nil {
		return 0
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	return pid
}

// stop shuts the node down: SIGTERM to nspawn, which asks the node's
// systemd to halt (SIGRTMIN+3), for up to grace; then its PID 1 and
// nspawn are killed (killing nspawn alone would leave the node running,
// orphaned). Whatever is left in its cgroups is killed, the cgroups
// removed and the overlay unmounted; the upper layer stays. A node being
// deleted gets no grace: its disk goes with it, and a service slow to
// stop (a hub with users' servers) kept a delete waiting half a minute.
func (p *Provider) stop(dir string, m meta, grace time.Duration) error {
	if pid, ok := running(dir); ok {
		if grace > 0 {
			syscall.Kill(pid, syscall.SIGTERM)
		}
		if grace == 0 || !waitGone(dir, grace) {
			if init := initPID(pid); init > 0 {
				syscall.Kill(init, syscall.SIGKILL)
			}
			syscall.Kill(pid, syscall.SIGKILL)
			waitGone(dir, 5*time.Second)
		}
	}
	var errs []error
	errs = append(errs, killCgroups(m.Machine))
	root := filepath.Join(dir, "root")
	if mounted(root) {
		if err := syscall.Unmount(root, 0); err != nil {
			errs = append(errs, syscall.Unmount(root, syscall.MNT_DETACH))
		}
	}
	os.Remove(filepath.Join(dir, "nspawn.pid"))
	return errors.Join(errs...)
}

func waitGone(dir string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, ok := running(dir); !ok {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func (p *Provider) instance(dir string, m meta) providers.Instance {
	st := providers.Running
	if _, ok := running(dir); !ok {
		st = providers.Error // stopped though not powered off: it crashed or was killed
		if m.PoweredOff {
			st = providers.PowerOff
		}
	}
	ip := m.IP
	if m.Public != "" {
		ip = m.Public // as a cloud's node with a public address is reached
	}
	return providers.Instance{ID: m.Token, Token: m.Token, State: st, IP: ip, PrivateIP: m.IP, Port: 22, User: m.User, HostKey: m.HostKey}
}

// Find returns the node made under token; a folder still being made
// counts, so that destroy removes it.
func (p *Provider) Find(ctx context.Context, ref providers.Ref) (providers.Instance, bool, error) {
	dir, err := p.nodeDir(ref.Token)
	if err != nil {
		return providers.Instance{}, false, err
	}
	m, err := readMeta(dir)
	if err != nil {
		if _, err := os.Stat(dir + partialSuffix); err == nil {
			return providers.Instance{ID: ref.Token, Token: ref.Token, State: providers.Starting}, true, nil
		}
		return providers.Instance{}, false, nil
	}
	return p.instance(dir, m), true, nil
}

// Delete stops the node and removes it: container, mount, cgroups, its
// address and, with the last node of a network, the bridge and its rules.
// Deleting a node that is gone is not an error.
func (p *Provider) Delete(ctx context.Context, ref providers.Ref) error {
	id := ref.ID
	if id == "" {
		id = ref.Token
	}
	dir, err := p.nodeDir(id)
	if err != nil {
		return err
	}
	for _, d := range []string{dir, dir + partialSuffix} {
		m, err := readMeta(d)
		if err != nil {
			if _, serr := os.Stat(d); serr == nil {
				// Made but never recorded (kumo died while making it): its
				// address may be taken; find it through the networks.
				p.forgetAddress(id)
				os.RemoveAll(d)
			}
			continue
		}
		if err := p.stop(d, m, 0); err != nil {
			return err
		}
		if err := p.detach(m.NetKey, m.Token); err != nil {
			return err
		}
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return nil
}

// forgetAddress releases token's address in whichever network has it.
func (p *Provider) forgetAddress(token string) {
	all, err := readNetworks(p.NetDir)
	if err != nil {
		return
	}
	for key, n := range all {
		if _, ok := n.Nodes[token]; ok {
			p.detach(key, token)
		}
	}
}

// PowerOff shuts the node down; its disk (the upper layer) is kept.
func (p *Provider) PowerOff(ctx context.Context, ref providers.Ref) error {
	dir, m, err := p.node(ref)
	if err != nil {
		return err
	}
	if err := p.stop(dir, m, 30*time.Second); err != nil {
		return err
	}
	m.PoweredOff = true
	return writeMeta(dir, m)
}

// PowerOn boots the node again on the same disk.
func (p *Provider) PowerOn(ctx context.Context, ref providers.Ref) (providers.Instance, error) {
	dir, m, err := p.node(ref)
	if err != nil {
		return providers.Instance{}, err
	}
	if m.PoweredOff {
		m.PoweredOff = false
		if err := writeMeta(dir, m); err != nil {
			return providers.Instance{}, err
		}
	}
	if err := p.start(ctx, dir, m); err != nil {
		return providers.Instance{}, err
	}
	return p.instance(dir, m), nil
}

func (p *Provider) node(ref providers.Ref) (string, meta, error) {
	id := ref.ID
	if id == "" {
		id = ref.Token
	}
	dir, err := p.nodeDir(id)
	if err != nil {
		return "", meta{}, err
	}
	m, err := readMeta(dir)
	if err != nil {
		return "", meta{}, fmt.Errorf("container: node %s: %w", id, err)
	}
	return dir, m, nil
}

// List returns the nodes of run, including ones still being made.
func (p *Provider) List(ctx context.Context, run string, _ []map[string]any) ([]providers.Instance, error) {
	entries, err := os.ReadDir(filepath.Join(p.Dir, "nodes"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []providers.Instance
	for _, e := range entries {
		dir := filepath.Join(p.Dir, "nodes", e.Name())
		if token, ok := strings.CutSuffix(e.Name(), partialSuffix); ok {
			// Only this run's: a partial folder has no record yet, but its
			// address is in its network, keyed with the run.
			if p.partialOf(run, token) {
				out = append(out, providers.Instance{ID: token, Token: token, State: providers.Starting})
			}
			continue
		}
		m, err := readMeta(dir)
		if err != nil || m.Run != run {
			continue
		}
		out = append(out, p.instance(dir, m))
	}
	return out, nil
}

// partialOf reports whether the half-made node token belongs to run: its
// meta.json is written last but the folder holds it already when the
// crash came after; without it, the node is nobody's yet and any destroy
// of this state may take it.
func (p *Provider) partialOf(run, token string) bool {
	m, err := readMeta(filepath.Join(p.Dir, "nodes", token+partialSuffix))
	return err != nil || m.Run == run
}

// DeleteGroup removes what is left of the group's network once its nodes
// are gone (their deletion removes it with the last of them).
func (p *Provider) DeleteGroup(ctx context.Context, run, group string, specs []map[string]any) error {
	key := netKey(filepath.Dir(p.Dir), run, group)
	unlock, err := netLock(p.NetDir)
	if err != nil {
		return err
	}
	all, err := readNetworks(p.NetDir)
	unlock()
	if err != nil || all[key] == nil || len(all[key].Nodes) > 0 {
		return err
	}
	return p.detach(key, "")
}

// GroupData lists the group's own shared folders (never a host folder
// a spec named: that is the user's).
func (p *Provider) GroupData(run, group string) []string {
	pattern := filepath.Join(p.Dir, "shared", run, group, "*")
	if group == "" {
		pattern = filepath.Join(p.Dir, "shared", run, "*", "*")
	}
	found, _ := filepath.Glob(pattern)
	return found
}

// DeleteGroupData removes the group's shared folders.
func (p *Provider) DeleteGroupData(run, group string) error {
	if run == "" {
		return fmt.Errorf("container: deleting shared folders: no run named")
	}
	dir := filepath.Join(p.Dir, "shared", run, group)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("container: deleting the shared folders %s: %w", dir, err)
	}
	os.Remove(filepath.Join(p.Dir, "shared", run)) // if now empty
	os.Remove(filepath.Join(p.Dir, "shared"))
	return nil
}

// Describe gives the sizes the spec enforces.
func (p *Provider) Describe(fields map[string]any) providers.Size {
	s, _ := specOf(fields)
	return providers.Size{VCPUs: int(s.CPUs), MemoryGB: s.MemoryGB, DiskGB: s.DiskGB}
}

func readMeta(dir string) (meta, error) {
	var m meta
	return m, providers.ReadJSON(filepath.Join(dir, "meta.json"), &m)
}

func writeMeta(dir string, m meta) error {
	return providers.WriteJSON(filepath.Join(dir, "meta.json"), m)
}

// Cleanup stops and removes every container node under dir (a state's
// container folder) whatever its run, with its addresses and networks:
// for tests that end half-way, which must not leave nodes running.
func Cleanup(dir string) error {
	p := New(dir)
	entries, _ := os.ReadDir(filepath.Join(p.Dir, "nodes"))
	var errs []error
	for _, e := range entries {
		token := strings.TrimSuffix(e.Name(), partialSuffix)
		errs = append(errs, p.Delete(context.Background(), providers.Ref{ID: token, Token: token}))
	}
	return errors.Join(errs...)
}
