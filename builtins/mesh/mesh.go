// Package mesh holds the builtin that joins nodes of any provider into
// one private network: a WireGuard mesh kumo builds from what the recipe
// already knows, with no coordination server to keep running.
//
// Each node runs kumo-wg (cmd/kumo-wg: userspace WireGuard on a TUN
// device, which needs no kernel module) as a systemd service. Its key is
// made on the node and never leaves it; kumo collects the public keys,
// gives each node an address from the mesh's range, and tells every node
// its peers:
//   - nodes of one site (one provider, location and private /24) talk
//     directly on their private addresses;
//   - hubs, the nodes with a public address, are reached there from every
//     other site; nodes behind NAT keep their mapping to the hubs alive;
//   - two nodes behind NAT on different sites try a direct path: kumo
//     reads from the first hub (the relay) where each one's NAT maps it,
//     tells both to call the other there at once (UDP hole punching),
//     and keeps the path if both ends complete a handshake; otherwise
//     (a symmetric NAT, a firewall) they talk through the relay, which
//     forwards between them. A pair keeps its path on later calls while
//     it works.
//
// Calling mesh() again with other nodes (the cell runs again when its
// unit group changed) changes only the peers that differ, so tunnels
// between the others stay up; a node no longer listed is removed from
// every peer.
package mesh

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/files"
	"github.com/kumo-dev/kumo/builtins/mesh/uapi"
	"github.com/kumo-dev/kumo/builtins/ssh"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/providers"
)

// DefaultRange is where mesh addresses come from by default: the top of
// the benchmarking range, which container sites do not take.
var DefaultRange = netip.MustParsePrefix("198.19.192.0/18")

// DefaultPort is WireGuard's usual port.
const DefaultPort = 51820

// Builtins of this family.
var Builtins = []*builtins.Def{{
	Name: "mesh",
	Doc: `mesh(name, nodes, range="198.19.192.0/18", port=51820)
Joins nodes (a list, of any providers and sites) into one private network,
a WireGuard mesh named name (up to 12 letters, digits and -; the interface
on every node is wg-NAME). Returns a struct with .name, .interface,
.range, .addresses (node name -> mesh address), .hubs, .relay, and
.direct and .relayed: the pairs of nodes behind NAT on different sites
that talk directly, and those that talk through the relay.

Each node's key is made on the node and never leaves it. Nodes of one site
talk directly; nodes with a public address (EC2 public, OpenStack floating,
container public=True) are hubs that every site reaches; two nodes behind
NAT on different sites try a direct path (both call the other where the
first hub, .relay, sees their NATs map them) and talk through the relay
when it fails, as it does behind a symmetric NAT. Hubs listen on UDP port;
nodes behind NAT on a port of their own above it (port+1+n, n from their
mesh address), so that NATs keeping source ports keep them apart. Before it
returns, every node has reached every other over the mesh, or the call
fails naming the pairs that could not. Calling it again with other nodes
changes only the peers that differ: tunnels between the others stay up,
and a node left out is removed from every peer. Addresses stay with their
nodes. From then on nodes() gives each node's mesh address as private_ip
(and the site's as site_ip); node values read before mesh() keep the
site's: read them again after it, or use .addresses.`,
	Fn:        meshFn,
	Effectful: true,
	Plan: func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (builtins.Effect, starlark.Value, error) {
		return builtins.Effect{Kind: builtins.EffectCommand, What: builtins.DescribeCall("mesh", nil, args, kwargs)}, nil, nil
	},
}}

// member is one node of the mesh, as kumo sees it.
type member struct {
	ep                builtins.Endpoint
	name, run         string
	site              string // provider | location | private /24
	public, private   string // addresses in the underlay
	hub               bool
	address           netip.Addr // in the mesh
	key               string     // public key, base64
	agentOK           bool
	setKeys           []string // the peers its last sync set
	wasRunning, wasUp bool     // the agent's service, and its interface up, before this call
	oldAddress        string
	shown             map[string]uapi.Peer // its agent's peers before this call, by public key
	mapped            string               // where its NAT maps it, as the relay sees it
	// triedKeys are the peers a direct path with which was tried and
	// failed (kept on the node), so that a later call leaves them relayed.
	triedKeys map[string]bool
}

// A path is how two nodes behind NAT on different sites reach each
// other.
type path int

const (
	relayed path = iota // through the relay hub
	probing             // both told to call the other directly; allowed still through the relay
	direct              // on their NATs' mapped endpoints
)

// A pair is two members, the one with the lower name first.
type pair [2]*member

func pairOf(a, b *member) pair {
	if b.name < a.name {
		a, b = b, a
	}
	return pair{a, b}
}

func meshFn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name, rng string
	var nodes starlark.Value
	port := DefaultPort
	rng = DefaultRange.String()
	if err := builtins.Unpack(b, args, kwargs, "name", &name, "nodes", &nodes, "range?", &rng, "port?", &port); err != nil {
		return nil, err
	}
	if !validName(name) {
		return nil, builtins.Inputf(b, "name %q: want 1 to 12 letters, digits and - (the interface is wg-NAME)", name)
	}
	prefix, err := netip.ParsePrefix(rng)
	if err != nil || !prefix.Addr().Is4() || prefix.Bits() > 30 {
		return nil, builtins.Inputf(b, "range %q: want an IPv4 prefix of at least 4 addresses, such as %s", rng, DefaultRange)
	}
	prefix = prefix.Masked()
	if port < 1 || port > 65535 {
		return nil, builtins.Inputf(b, "port %d is out of range", port)
	}
	env, err := builtins.FromThread(thread)
	if err != nil {
		return nil, err
	}
	eps, _, err := env.Targets(nodes)
	if err != nil {
		return nil, builtins.TargetError(b, err)
	}
	if err := ssh.RefuseOnHost(eps, "mesh"); err != nil {
		return nil, err
	}
	agent, err := AgentPath()
	if err != nil {
		return nil, builtins.Wrap(b, err)
	}
	m := &mesh{env: env, ctx: starkit.Context(thread), name: name, iface: "wg-" + name, prefix: prefix, port: port, agent: agent}
	if err := m.members(eps); err != nil {
		return nil, builtins.Wrap(b, err)
	}
	if err := m.build(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", b.Name(), name, err)
	}
	if err := m.record(); err != nil {
		return nil, builtins.Wrap(b, err)
	}
	return m.value(), nil
}

// record writes each member's mesh address into its node's record, so
// that nodes() returns it as the node's private_ip from now on, and
// takes it off the nodes of the run that left the mesh.
func (m *mesh) record() error {
	in := map[int64]string{}
	run := ""
	for _, n := range m.nodes {
		in[n.ep.NodeID] = n.address.String()
		run = n.run
	}
	return fleet.SetMesh(m.env.Store, run, m.name, in)
}

func validName(s string) bool {
	if s == "" || len(s) > 12 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// AgentPath is the kumo-wg binary to install: $KUMO_WG_AGENT, else the
// one beside kumo's executable (make build puts it there).
func AgentPath() (string, error) {
	if p := os.Getenv("KUMO_WG_AGENT"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("the WireGuard agent $KUMO_WG_AGENT: %w", err)
		}
		return p, nil
	}
	exe, err := os.Executable()
	if err == nil {
		p := filepath.Join(filepath.Dir(exe), "kumo-wg")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("the WireGuard agent kumo-wg is not beside kumo: build it with make build (or CGO_ENABLED=0 go build -ldflags=\"-s -w\" -o bin/kumo-wg ./cmd/kumo-wg) or name it in $KUMO_WG_AGENT")
}

type mesh struct {
	env         *builtins.Env
	ctx         context.Context
	name, iface string
	prefix      netip.Prefix
	port        int
	agent       string
	nodes       []*member
	relay       *member
	paths       map[pair]path // NAT-to-NAT pairs across sites
	untried     map[pair]bool // relayed this call without a try: the relay never saw where one's NAT maps it
}

// members reads what the state knows of each node: its site and
// addresses.
func (m *mesh) members(eps []builtins.Endpoint) error {
	seen := map[int64]bool{}
	for _, ep := range eps {
		if ep.NodeID == 0 {
			return &starkit.InputError{Err: fmt.Errorf("%s is not a node of this run: a mesh joins nodes kumo made or holds", ep.Label)}
		}
		if seen[ep.NodeID] {
			continue
		}
		seen[ep.NodeID] = true
		r, err := m.env.Reader().Node(ep.NodeID)
		if err != nil {
			return err
		}
		u, err := m.env.Reader().Unit(r.Run, r.Group, r.Unit)
		if err != nil {
			return fmt.Errorf("node %s: its unit: %w", r.Name, err)
		}
		loc, _ := json.Marshal(u.Location)
		private := r.PrivateIP
		if private == "" {
			private = r.IP
		}
		site := r.Provider + "|" + string(loc)
		if a, err := netip.ParseAddr(private); err == nil && a.Is4() {
			site += "|" + netip.PrefixFrom(a, 24).Masked().String()
		}
		mb := &member{ep: ep, name: r.Name, run: r.Run, site: site, private: private, public: r.IP,
			hub: r.IP != "" && r.IP != private}
		m.nodes = append(m.nodes, mb)
	}
	sort.Slice(m.nodes, func(i, j int) bool { return m.nodes[i].name < m.nodes[j].name })
	for _, n := range m.nodes {
		if n.hub {
			m.relay = n
			break
		}
	}
	return nil
}

// build brings the mesh to what the members say, in four steps on all
// nodes at once: look, install and start, sync peers, check.
func (m *mesh) build() error {
	sum, err := providers.FileSHA256(m.agent)
	if err != nil {
		return err
	}
	m.env.Status(fmt.Sprintf("mesh %s: reading %d nodes", m.name, len(m.nodes)))
	defer m.env.Status("")
	if err := m.each(func(n *member) error { return m.look(n, sum) }); err != nil {
		return err
	}
	if err := m.allocate(); err != nil {
		return err
	}
	m.env.Status(fmt.Sprintf("mesh %s: starting the agent on %d nodes", m.name, len(m.nodes)))
	if err := m.each(m.start); err != nil {
		return err
	}
	attempt := m.choosePaths()
	m.env.Status(fmt.Sprintf("mesh %s: telling %d nodes their peers", m.name, len(m.nodes)))
	// Hubs first: nodes behind NAT call them as soon as they know them,
	// and a hub that does not know a caller yet drops its handshake,
	// which WireGuard tries again only 5 s later.
	for _, hubs := range []bool{true, false} {
		if err := m.each(func(n *member) error {
			if n.hub != hubs {
				return nil
			}
			return m.sync(n)
		}); err != nil {
			return err
		}
	}
	if err := m.rejoin(); err != nil {
		return err
	}
	if len(attempt) > 0 {
		m.env.Status(fmt.Sprintf("mesh %s: trying direct paths for %s behind NAT", m.name, plural(len(attempt), "pair")))
		if err := m.tryDirect(attempt); err != nil {
			return err
		}
	}
	if err := m.rememberTries(); err != nil {
		return err
	}
	m.noteChanges()
	m.env.Status(fmt.Sprintf("mesh %s: checking every pair", m.name))
	return m.check()
}

// each runs f on every member at once and joins their errors.
func (m *mesh) each(f func(n *member) error) error {
	errs := make([]error, len(m.nodes))
	var wg sync.WaitGroup
	for i, n := range m.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(n); err != nil {
				errs[i] = fmt.Errorf("%s: %w", n.name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (m *mesh) run(n *member, script string, vars map[string]string, stdin string) (string, error) {
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	out, err := ssh.PoolOf(m.env).Exec(m.ctx, n.ep, ssh.Command{
		Cmd: ssh.SudoWrap(script, names...), Env: vars, Stdin: strings.NewReader(stdin), Timeout: 2 * time.Minute,
		OnLine: func(stream, line string) {
			if stream == "stderr" {
				m.env.Line(n.ep.Label, stream, line)
			}
		},
	})
	if err != nil {
		return "", err
	}
	if out.ExitCode != 0 {
		return out.Stdout, fmt.Errorf("exit code %d: %s", out.ExitCode, strings.TrimSpace(lastLines(out.Stderr, 5)))
	}
	return out.Stdout, nil
}

// look reads whether the node has this agent and the address it had.
func (m *mesh) look(n *member, sum string) error {
	out, err := m.run(n, `
have=$(sha256sum /usr/local/bin/kumo-wg 2>/dev/null | cut -d' ' -f1)
[ "$have" = "$KUMO_WG_SHA" ] && echo agent=ok
[ -r "/var/lib/kumo/mesh/$KUMO_WG_IFACE.addr" ] && echo "addr=$(cat "/var/lib/kumo/mesh/$KUMO_WG_IFACE.addr")"
systemctl is-active -q "kumo-wg-$KUMO_WG_IFACE" && echo running=1
ip link show "$KUMO_WG_IFACE" 2>/dev/null | grep -q "[<,]UP[,>]" && echo up=1
[ -x /usr/local/bin/kumo-wg ] && /usr/local/bin/kumo-wg show "$KUMO_WG_IFACE" 2>/dev/null | sed 's/^/wg./'
sed 's/^/relayed=/' "/var/lib/kumo/mesh/$KUMO_WG_IFACE.relayed" 2>/dev/null
true`, map[string]string{"KUMO_WG_SHA": sum, "KUMO_WG_IFACE": m.iface}, "")
	if err != nil {
		return err
	}
	n.shown = parseShow(out, "wg.")
	for _, line := range strings.Split(out, "\n") {
		switch k, v, _ := strings.Cut(line, "="); k {
		case "agent":
			n.agentOK = true
		case "addr":
			n.oldAddress = strings.TrimSpace(v)
		case "running":
			n.wasRunning = true
		case "up":
			n.wasUp = true
		case "relayed":
			if n.triedKeys == nil {
				n.triedKeys = map[string]bool{}
			}
			n.triedKeys[strings.TrimSpace(v)] = true
		}
	}
	if !n.agentOK {
		// To the login user's home first: it may not write /usr/local/bin.
		open := func() (io.ReadCloser, error) { return os.Open(m.agent) }
		if err := files.Upload(m.ctx, m.env, n.ep, ".kumo-wg.upload", open, 0o755); err != nil {
			return fmt.Errorf("installing the WireGuard agent: %w", err)
		}
	}
	return nil
}

// allocate keeps each node's address when it is in the range and not
// taken, and gives the others the lowest free ones.
func (m *mesh) allocate() error {
	used := map[netip.Addr]bool{m.prefix.Addr(): true}
	last := m.prefix.Addr()
	for a := m.prefix.Addr(); m.prefix.Contains(a); a = a.Next() {
		last = a
	}
	used[last] = true // the broadcast address
	for _, n := range m.nodes {
		if a, err := netip.ParseAddr(n.oldAddress); err == nil && m.prefix.Contains(a) && !used[a] {
			n.address, used[a] = a, true
		}
	}
	next := m.prefix.Addr()
	for _, n := range m.nodes {
		if n.address.IsValid() {
			continue
		}
		for used[next] && m.prefix.Contains(next) {
			next = next.Next()
		}
		if !m.prefix.Contains(next) {
			return fmt.Errorf("range %s is full: give mesh() a larger range=", m.prefix)
		}
		n.address, used[next] = next, true
	}
	return nil
}

// start installs the agent where it is new, and (re)starts its service
// when its settings changed; it prints the node's public key.
func (m *mesh) start(n *member) error {
	args := fmt.Sprintf("up %s --address %s --port %d", m.iface, netip.PrefixFrom(n.address, m.prefix.Bits()), m.listenPort(n))
	if n.hub {
		args += " --forward"
	}
	out, err := m.run(n, `set -e
home=$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)
if [ -f "$home/.kumo-wg.upload" ]; then
    install -m 755 "$home/.kumo-wg.upload" /usr/local/bin/kumo-wg
    rm -f "$home/.kumo-wg.upload"
    changed=1
fi
unit=/etc/systemd/system/kumo-wg-$KUMO_WG_IFACE.service
text="[Unit]
Description=kumo mesh $KUMO_WG_IFACE (WireGuard)
After=network-online.target

[Service]
ExecStart=/usr/local/bin/kumo-wg $KUMO_WG_ARGS
Restart=on-failure

[Install]
WantedBy=multi-user.target"
if [ "$(cat "$unit" 2>/dev/null)" != "$text" ]; then
    printf '%s\n' "$text" > "$unit"
    systemctl daemon-reload
    changed=1
fi
mkdir -p /var/lib/kumo/mesh
echo "$KUMO_WG_ADDR" > "/var/lib/kumo/mesh/$KUMO_WG_IFACE.addr"
systemctl enable -q "kumo-wg-$KUMO_WG_IFACE"
if [ -n "${changed:-}" ] || [ -z "$KUMO_WG_UP" ] || ! systemctl is-active -q "kumo-wg-$KUMO_WG_IFACE"; then
    systemctl restart "kumo-wg-$KUMO_WG_IFACE"
fi
i=0
until [ -S "/var/run/wireguard/$KUMO_WG_IFACE.sock" ] && ip link show "$KUMO_WG_IFACE" >/dev/null 2>&1; do
    i=$((i+1))
    if [ $i -gt 100 ]; then journalctl -u "kumo-wg-$KUMO_WG_IFACE" -n 10 --no-pager >&2; exit 1; fi
    sleep 0.1
done
/usr/local/bin/kumo-wg pubkey "$KUMO_WG_IFACE"`, map[string]string{"KUMO_WG_IFACE": m.iface, "KUMO_WG_ARGS": args, "KUMO_WG_ADDR": n.address.String(), "KUMO_WG_UP": upFlag(n.wasUp)}, "")
	if err != nil {
		return fmt.Errorf("starting the WireGuard agent: %w", err)
	}
	n.key = strings.TrimSpace(out)
	if len(n.key) != 44 {
		return fmt.Errorf("the agent gave %q for a public key", n.key)
	}
	switch {
	case n.oldAddress == "":
		// A new member: nothing to repair.
	case !n.wasRunning:
		m.env.Note(fmt.Sprintf("mesh %s: %s: its agent was not running; started again", m.name, n.name))
	case !n.wasUp:
		m.env.Note(fmt.Sprintf("mesh %s: %s: its interface %s was down; brought up again", m.name, n.name, m.iface))
	}
	return nil
}

func upFlag(up bool) string {
	if up {
		return "1"
	}
	return ""
}

// listenPort is n's WireGuard port: the mesh's port on a hub, where the
// other sites call it; behind NAT one of its own, from its mesh address,
// so that a NAT that keeps source ports keeps each node's apart and
// direct paths between NATs find them.
func (m *mesh) listenPort(n *member) int {
	if n.hub {
		return m.port
	}
	offset := int(n.address.As4()[2])<<8 | int(n.address.As4()[3])
	offset -= int(m.prefix.Addr().As4()[2])<<8 | int(m.prefix.Addr().As4()[3])
	p := m.port + 1 + offset%10000
	if p > 65535 {
		p -= 20000
	}
	return p
}

// peers is what n is told: one line per peer it talks to directly.
func (m *mesh) peers(n *member) string {
	type entry struct {
		endpoint  string
		keepalive int
		allowed   []string
	}
	entries := map[*member]*entry{}
	var relayed []*member
	for _, o := range m.nodes {
		if o == n {
			continue
		}
		e := &entry{endpoint: "-", allowed: []string{o.address.String() + "/32"}}
		switch {
		case o.site == n.site:
			e.endpoint = fmt.Sprintf("%s:%d", o.private, m.listenPort(o))
		case o.hub:
			e.endpoint = fmt.Sprintf("%s:%d", o.public, m.port)
			if !n.hub {
				e.keepalive = 25 // n is behind NAT: keep its mapping open
			}
		case n.hub:
			// o is behind NAT: it calls in.
		default:
			// Both behind NAT on different sites: directly where that
			// works, else through the relay (a hub, which every node talks
			// to directly), if there is one.
			if m.relay == nil {
				continue
			}
			switch m.paths[pairOf(n, o)] {
			case direct:
				e.endpoint, e.keepalive = m.mappedOf(o, n), 25
			case probing:
				e.endpoint, e.keepalive, e.allowed = m.mappedOf(o, n), 25, nil
				relayed = append(relayed, o)
			default:
				relayed = append(relayed, o)
				continue
			}
		}
		entries[o] = e
	}
	if r := entries[m.relay]; r != nil {
		for _, o := range relayed {
			r.allowed = append(r.allowed, o.address.String()+"/32")
		}
	}
	var b strings.Builder
	for _, o := range m.nodes {
		if e := entries[o]; e != nil {
			allowed := strings.Join(e.allowed, ",")
			if allowed == "" {
				allowed = "-" // a path being tried: nothing routed to it yet
			}
			fmt.Fprintf(&b, "peer %s endpoint=%s keepalive=%d allowed=%s\n", o.key, e.endpoint, e.keepalive, allowed)
		}
	}
	return b.String()
}

// sync tells n its peers.
func (m *mesh) sync(n *member) error {
	out, err := m.run(n, `/usr/local/bin/kumo-wg sync "$KUMO_WG_IFACE"`, map[string]string{"KUMO_WG_IFACE": m.iface}, m.peers(n))
	if err != nil {
		return fmt.Errorf("telling it its peers: %w", err)
	}
	for _, line := range strings.Split(out, "\n") {
		if key, ok := strings.CutPrefix(line, "set "); ok {
			n.setKeys = append(n.setKeys, key)
		}
	}
	return nil
}

// noteChanges says, for each member that was there before and whose
// agent kept running, how its peers now differ from what it had: drift
// repaired, or the membership changed.
func (m *mesh) noteChanges() {
	for _, n := range m.nodes {
		if n.oldAddress == "" || !n.wasRunning {
			continue
		}
		set, removed := 0, 0
		want, err := uapi.Wanted(m.peers(n))
		if err != nil {
			continue // kumo's own lines: the sync said so already
		}
		for key, w := range want {
			if had, ok := n.shown[key]; !ok || !uapi.Unchanged(w, had) {
				set++
			}
		}
		for k := range n.shown {
			if _, ok := want[k]; !ok {
				removed++
			}
		}
		if set > 0 || removed > 0 {
			m.env.Note(fmt.Sprintf("mesh %s: %s: %s set, %s removed", m.name, n.name, plural(set, "peer"), plural(removed, "peer")))
		}
	}
}

// rejoin has the nodes behind NAT whose entry on a hub was just set
// again (it had drifted, or the hub's agent restarted) handshake with
// that hub anew: their side still holds a session the hub forgot.
func (m *mesh) rejoin() error {
	byKey := map[string]*member{}
	for _, n := range m.nodes {
		byKey[n.key] = n
	}
	calls := map[*member][]string{}
	for _, h := range m.nodes {
		if !h.hub {
			continue
		}
		for _, k := range h.setKeys {
			if x := byKey[k]; x != nil && !x.hub && x.oldAddress != "" {
				calls[x] = append(calls[x], h.key)
			}
		}
	}
	return m.each(func(n *member) error {
		for _, hub := range calls[n] {
			if _, err := m.run(n, `/usr/local/bin/kumo-wg rejoin "$KUMO_WG_IFACE" "$KUMO_WG_HUB"`,
				map[string]string{"KUMO_WG_IFACE": m.iface, "KUMO_WG_HUB": hub}, ""); err != nil {
				return fmt.Errorf("calling a hub anew: %w", err)
			}
		}
		return nil
	})
}

// parseShow reads kumo-wg show's lines (each after prefix) into peers by
// base64 public key.
func parseShow(out, prefix string) map[string]uapi.Peer {
	var b strings.Builder
	for _, line := range strings.Split(out, "\n") {
		if line, ok := strings.CutPrefix(line, prefix); ok {
			b.WriteString(line + "\n")
		}
	}
	return uapi.Peers(b.String())
}

// freshPath is how recent a handshake shows a direct path still works:
// WireGuard shakes hands again every two minutes while traffic or
// keepalives flow.
const freshPath = 3 * time.Minute

// choosePaths decides how each pair of nodes behind NAT on different
// sites talks on this call: a direct path both ends still use (a fresh
// handshake) stays direct; a pair whose direct try failed before, and
// whose ends still talk through the relay, stays relayed; every other
// pair (new, stale, or a try a killed call never finished) is tried
// (returned), and talks through the relay until the try succeeds.
func (m *mesh) choosePaths() []pair {
	m.paths = map[pair]path{}
	if m.relay == nil {
		return nil
	}
	var attempt []pair
	for i, a := range m.nodes {
		for _, b := range m.nodes[i+1:] {
			if a.hub || b.hub || a.site == b.site {
				continue
			}
			p := pairOf(a, b)
			switch {
			case a.usesDirect(b) && b.usesDirect(a):
				m.paths[p] = direct
			case a.usesRelay(m.relay, b) && b.usesRelay(m.relay, a) && a.triedKeys[b.key] && b.triedKeys[a.key]:
				m.paths[p] = relayed // tried before, and failed
			default:
				m.paths[p] = relayed
				attempt = append(attempt, p)
			}
		}
	}
	return attempt
}

// usesDirect reports whether n's agent talks to o directly, with a
// handshake fresh enough that the path still works.
func (n *member) usesDirect(o *member) bool {
	p, ok := n.shown[o.key]
	return ok && p.Endpoint != "" && time.Since(p.Handshake) < freshPath && slices.Contains(p.Allowed, o.address.String()+"/32")
}

// usesRelay reports whether n's agent sends o's traffic through relay
// and has no direct try with o left over (a call killed while trying).
func (n *member) usesRelay(relay, o *member) bool {
	p, ok := n.shown[relay.key]
	_, trying := n.shown[o.key]
	return ok && !trying && o.oldAddress == o.address.String() && slices.Contains(p.Allowed, o.address.String()+"/32")
}

// mappedOf is where o is reached from n directly: its NAT's mapping as
// the relay saw it, else where n reached it before.
func (m *mesh) mappedOf(o, n *member) string {
	if o.mapped != "" {
		return o.mapped
	}
	if p, ok := n.shown[o.key]; ok && p.Endpoint != "" {
		return p.Endpoint
	}
	return "-"
}

// tryDirect has each pair call each other directly at once, on the
// endpoints where the relay sees their NATs map them; pairs whose ends
// both complete a handshake within a few seconds talk directly from
// then on, the others through the relay.
func (m *mesh) tryDirect(attempt []pair) error {
	involved := map[*member]bool{}
	for _, p := range attempt {
		involved[p[0]], involved[p[1]] = true, true
	}
	if err := m.readMappings(involved); err != nil {
		return err
	}
	var tried []pair
	m.untried = map[pair]bool{}
	for _, p := range attempt {
		if p[0].mapped != "" && p[1].mapped != "" {
			m.paths[p] = probing
			tried = append(tried, p)
		} else {
			m.untried[p] = true
		}
	}
	syncSome := func() error {
		return m.each(func(n *member) error {
			if !involved[n] {
				return nil
			}
			return m.sync(n)
		})
	}
	if err := syncSome(); err != nil {
		return err
	}
	// Each node waits for handshakes with the peers it was told to try.
	shook := make(map[*member]map[string]bool)
	var mu sync.Mutex
	if err := m.each(func(n *member) error {
		var keys []string
		for _, p := range tried {
			if o := p.other(n); o != nil {
				keys = append(keys, o.key)
			}
		}
		got, err := m.handshakes(n, keys)
		mu.Lock()
		shook[n] = got
		mu.Unlock()
		return err
	}); err != nil {
		return err
	}
	var made, failed []string
	for _, p := range attempt {
		if m.paths[p] == probing && shook[p[0]][p[1].key] && shook[p[1]][p[0].key] {
			m.paths[p] = direct
			made = append(made, p[0].name+"–"+p[1].name)
		} else {
			m.paths[p] = relayed
			failed = append(failed, p[0].name+"–"+p[1].name)
		}
	}
	if err := syncSome(); err != nil {
		return err
	}
	switch {
	case len(failed) == 0:
		m.env.Note(fmt.Sprintf("mesh %s: direct paths between NATs: %s", m.name, strings.Join(made, ", ")))
	case len(made) == 0:
		m.env.Note(fmt.Sprintf("mesh %s: no direct path between NATs (%s): through the relay %s", m.name, strings.Join(failed, ", "), m.relay.name))
	default:
		m.env.Note(fmt.Sprintf("mesh %s: direct paths between NATs: %s; through the relay %s: %s", m.name, strings.Join(made, ", "), m.relay.name, strings.Join(failed, ", ")))
	}
	return nil
}

// rememberTries keeps on each node behind NAT the peers its direct path
// with failed, where that changed: the next call leaves those relayed
// instead of trying again.
func (m *mesh) rememberTries() error {
	return m.each(func(n *member) error {
		want := map[string]bool{}
		for p, path := range m.paths {
			if o := p.other(n); o != nil && path == relayed && !m.untried[p] {
				want[o.key] = true
			}
		}
		if maps.Equal(want, n.triedKeys) {
			return nil
		}
		keys := make([]string, 0, len(want))
		for k := range want {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		_, err := m.run(n, `mkdir -p /var/lib/kumo/mesh && cat > "/var/lib/kumo/mesh/$KUMO_WG_IFACE.relayed.tmp" && mv "/var/lib/kumo/mesh/$KUMO_WG_IFACE.relayed.tmp" "/var/lib/kumo/mesh/$KUMO_WG_IFACE.relayed"`,
			map[string]string{"KUMO_WG_IFACE": m.iface}, strings.Join(keys, "\n")+"\n")
		return err
	})
}

func (p pair) other(n *member) *member {
	switch n {
	case p[0]:
		return p[1]
	case p[1]:
		return p[0]
	}
	return nil
}

// readMappings reads from the relay where the NATs of the nodes in want
// map them: the endpoints it sees them at, once each has called in.
func (m *mesh) readMappings(want map[*member]bool) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := m.run(m.relay, `/usr/local/bin/kumo-wg show "$KUMO_WG_IFACE"`, map[string]string{"KUMO_WG_IFACE": m.iface}, "")
		if err != nil {
			return fmt.Errorf("reading where NATs map their nodes: %w", err)
		}
		seen := parseShow(out, "")
		missing := 0
		for n := range want {
			if p := seen[n.key]; p.Endpoint != "" && !p.Handshake.IsZero() {
				n.mapped = p.Endpoint
			} else {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-m.ctx.Done():
			return m.ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// handshakes waits a few seconds on n for a handshake with each of keys
// and returns those that came: a first handshake lost to a NAT that had
// not opened yet is tried again by WireGuard after 5 s.
func (m *mesh) handshakes(n *member, keys []string) (map[string]bool, error) {
	got := map[string]bool{}
	if len(keys) == 0 {
		return got, nil
	}
	var hexKeys []string
	for _, k := range keys {
		b, _ := base64.StdEncoding.DecodeString(k)
		hexKeys = append(hexKeys, hex.EncodeToString(b))
	}
	out, err := m.run(n, `i=0
while :; do
    all=1
    for k in $KUMO_WG_KEYS; do
        /usr/local/bin/kumo-wg show "$KUMO_WG_IFACE" | awk -v k="public_key=$k" '$0 == k { p = 1; next } /^public_key=/ { p = 0 } p && /^last_handshake_time_sec=/ && $0 != "last_handshake_time_sec=0" { f = 1 } END { exit !f }' || all=
    done
    [ -n "$all" ] && break
    i=$((i+1)); [ $i -ge 70 ] && break
    sleep 0.1
done
/usr/local/bin/kumo-wg show "$KUMO_WG_IFACE"`, map[string]string{"KUMO_WG_IFACE": m.iface, "KUMO_WG_KEYS": strings.Join(hexKeys, " ")}, "")
	if err != nil {
		return got, fmt.Errorf("waiting for direct handshakes: %w", err)
	}
	seen := parseShow(out, "")
	for _, k := range keys {
		if !seen[k].Handshake.IsZero() {
			got[k] = true
		}
	}
	return got, nil
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// check has every node reach every other's SSH port over the mesh, and
// names the pairs that could not, with their sites.
func (m *mesh) check() error {
	failed := make([][]string, len(m.nodes))
	// Each pair is tried from its first node (by name) before the second:
	// two first handshakes crossing each other can lose one, which costs
	// WireGuard's 5 s before it tries again.
	for _, earlier := range []bool{false, true} {
		if err := m.each(func(n *member) error {
			var addrs []string
			for _, o := range m.nodes {
				if o != n && (o.name < n.name) == earlier {
					addrs = append(addrs, o.address.String())
				}
			}
			return m.probe(n, addrs, &failed[indexOf(m.nodes, n)])
		}); err != nil {
			return err
		}
	}
	return m.unreachable(failed)
}

// probe has n try the SSH port of each of addrs over the mesh, adding
// those it cannot reach to failed.
func (m *mesh) probe(n *member, addrs []string, failed *[]string) error {
	if len(addrs) == 0 {
		return nil
	}
	out, err := m.run(n, `for a in $KUMO_WG_PEERS; do
    # A first handshake, relayed ones most, can lose the first SYN: a new
    # try soon beats TCP's retransmission a second later.
    ( end=$(( $(date +%s) + 15 ))
      until timeout 1 bash -c ": </dev/tcp/$a/22" 2>/dev/null; do
          [ "$(date +%s)" -lt $end ] || { echo "unreachable=$a"; break; }
          sleep 0.2
      done ) &
done
wait`, map[string]string{"KUMO_WG_PEERS": strings.Join(addrs, " ")}, "")
	for _, line := range strings.Split(out, "\n") {
		if a, ok := strings.CutPrefix(line, "unreachable="); ok {
			*failed = append(*failed, a)
		}
	}
	return err
}

// unreachable is the error that names every pair that could not reach
// the other, with their sites, or nil.
func (m *mesh) unreachable(failed [][]string) error {
	var msgs []string
	for i, n := range m.nodes {
		for _, a := range failed[i] {
			o := m.byAddress(a)
			why := ""
			if o != nil && !o.hub && !n.hub && o.site != n.site && m.relay == nil {
				why = " (both are behind NAT and no node has a public address to relay through: give one node public=True, a floating IP or an EC2 public address)"
			}
			msgs = append(msgs, fmt.Sprintf("%s (site %s) cannot reach %s (site %s, %s)%s", n.name, siteName(n.site), o.name, siteName(o.site), a, why))
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("not every pair reaches the other over the mesh:\n  %s\nFix the network (a site cut off, a firewall on UDP %d, or from %d up behind NAT) and run the cell again: it repairs what it finds", strings.Join(msgs, "\n  "), m.port, m.port+1)
	}
	return nil
}

func indexOf(list []*member, n *member) int {
	for i, x := range list {
		if x == n {
			return i
		}
	}
	return -1
}

func (m *mesh) byAddress(a string) *member {
	for _, n := range m.nodes {
		if n.address.String() == a {
			return n
		}
	}
	return &member{name: a, site: "?"}
}

// siteName shortens a site key for messages: provider and private /24.
func siteName(site string) string {
	parts := strings.Split(site, "|")
	if len(parts) == 3 {
		return parts[0] + " " + parts[2]
	}
	return parts[0]
}

// value is what mesh() returns.
func (m *mesh) value() starlark.Value {
	addrs := starlark.NewDict(len(m.nodes))
	var hubs []starlark.Value
	for _, n := range m.nodes {
		addrs.SetKey(starlark.String(n.name), starlark.String(n.address.String()))
		if n.hub {
			hubs = append(hubs, starlark.String(n.name))
		}
	}
	var relay starlark.Value = starlark.None
	if m.relay != nil {
		relay = starlark.String(m.relay.name)
	}
	var directs, relays []starlark.Value
	for i, a := range m.nodes {
		for _, b := range m.nodes[i+1:] {
			p, ok := m.paths[pairOf(a, b)]
			if !ok {
				continue
			}
			t := starlark.Tuple{starlark.String(a.name), starlark.String(b.name)}
			if p == direct {
				directs = append(directs, t)
			} else {
				relays = append(relays, t)
			}
		}
	}
	return starlarkstruct.FromStringDict(starlark.String("mesh"), starlark.StringDict{
		"name":      starlark.String(m.name),
		"interface": starlark.String(m.iface),
		"range":     starlark.String(m.prefix.String()),
		"addresses": addrs,
		"hubs":      starlark.NewList(hubs),
		"relay":     relay,
		"direct":    starlark.NewList(directs),
		"relayed":   starlark.NewList(relays),
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
