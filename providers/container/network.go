package container

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/kumo-dev/kumo/providers"
)

// Each unit group has a network of its own, a site like a cloud VPC or
// a campus segment: a bridge on the host with a /24 of private
// addresses, and a router of its own (router.go) whose address .1 is
// the nodes' gateway and which does the site's NAT, so that nodes reach
// the package mirrors the host reaches. Traffic between two sites'
// private addresses is dropped unless a spec joins the other group's
// network, as real clouds' private addresses do not reach each other.
//
// Sites meet on the internet: one more /24 (the "internet" record, its
// bridge kbinternet, the host its gateway) on which every router has
// its site's NAT address and the public addresses of its nodes. A node
// with a public address is reached there through 1:1 NAT, as EC2's
// elastic and OpenStack's floating addresses are, and what it sends to
// other sites comes from it; every other node's traffic to other sites
// comes from its site's NAT address. kumo's host reaches every address:
// nodes on its own address on their bridge (.254), public ones on the
// internet.
//
// Bridges, routers, addresses and firewall rules are the host's,
// whatever state file made them, so networks are recorded host-wide, in
// NetDir, under a lock; kumo's nftables tables "ip kumo" (the host's,
// and one in each router) are written whole from those records each
// time one changes.
type network struct {
	Key    string            `json:"key"`    // who owns it: a digest of state folder, run and group
	Bridge string            `json:"bridge"` // kb + key, at most 15 characters
	Subnet netip.Prefix      `json:"subnet"`
	NAT    string            `json:"nat,omitempty"` // the site's NAT kind: NATPortPreserving or NATSymmetric
	Owner  string            `json:"owner"`         // readable: state folder, run, group
	Dir    string            `json:"dir,omitempty"` // the node folders' provider folder: a node whose folder is gone is pruned
	Nodes  map[string]string `json:"nodes"`         // node token -> its address; internet: holder -> public address
	// Mapped (internet only) says where each public address forwards:
	// public address -> the token of the node it is mapped to.
	Mapped map[string]string `json:"mapped,omitempty"`
	// Inbound is what reaches a node (by token) through its public
	// address, as its cloud's security groups say; a node without an
	// entry gets everything.
	Inbound map[string]Inbound `json:"inbound,omitempty"`
}

// Inbound is what a node's public address lets in from the internet.
type Inbound struct {
	TCP []int `json:"tcp"`
	UDP []int `json:"udp"`
}

// SetInbound says what reaches the node made under token through its
// public address from now on (nil: everything), as its cloud's security
// groups say. Connections already open stay, as in a cloud.
func (p *Provider) SetInbound(token string, in *Inbound) error {
	return p.changeNetworks(func(all map[string]*network) error {
		for k, n := range all {
			if _, ok := n.Nodes[token]; !ok || k == internetKey {
				continue
			}
			if in == nil {
				delete(n.Inbound, token)
			} else {
				if n.Inbound == nil {
					n.Inbound = map[string]Inbound{}
				}
				n.Inbound[token] = *in
			}
			return writeNetwork(p.NetDir, n)
		}
		return nil // gone: nothing reaches it
	})
}

// internetKey names the internet's record; its holders are "nat:" + a
// site's key for the site's NAT address, or whoever asked for a public
// address (a node's token, a floating IP's id).
const internetKey = "internet"

func natHolder(siteKey string) string { return "nat:" + siteKey }

// DefaultRange is where group networks take their /24s from: the
// benchmarking range, never in use on a real network (RFC 2544).
var DefaultRange = netip.MustParsePrefix("198.18.0.0/15")

// DefaultNetDir keeps the host's kumo networks: /run is emptied at boot,
// as the bridges are.
const DefaultNetDir = "/run/kumo/networks"

// netLock serializes network changes across kumo processes.
func netLock(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	// LOCK_UN before the close: a child forked this moment (ip, nft)
	// shares the descriptor, and the lock, until it execs.
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func netKey(stateDir, run, group string) string {
	sum := sha256.Sum256([]byte(stateDir + "\x00" + run + "\x00" + group))
	return hex.EncodeToString(sum[:])[:12]
}

func readNetworks(dir string) (map[string]*network, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	out := map[string]*network{}
	for _, f := range files {
		var n network
		if err := providers.ReadJSON(f, &n); err != nil {
			return nil, fmt.Errorf("container: network record %s: %w", f, err)
		}
		out[n.Key] = &n
	}
	return out, nil
}

func writeNetwork(dir string, n *network) error {
	return providers.WriteJSON(filepath.Join(dir, n.Key+".json"), n)
}

// hostPrefixes are the networks the host has addresses on: a group
// network must not overlap any of them.
func hostPrefixes() []netip.Prefix {
	var out []netip.Prefix
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(ipn.String()); err == nil {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}

// attach gives the node with token an address on the network key
// (making the network if it is new) and returns the network and the
// address. Asking again for the same token returns the same address.
func (p *Provider) attach(key, owner, token string, index int, rng netip.Prefix, public bool, nat string) (nw *network, addr, pub netip.Addr, err error) {
	err = p.changeNetworks(func(all map[string]*network) error {
		if err := p.prune(all); err != nil {
			return err
		}
		n := all[key]
		if n == nil {
			subnet, err := freeSubnet(rng, all, hostPrefixes())
			if err != nil {
				return err
			}
			n = &network{Key: key, Bridge: "kb" + key, Subnet: subnet, Owner: owner, NAT: nat, Nodes: map[string]string{}}
			all[key] = n
		}
		if n.NAT != nat {
			return providers.BadInputf("container: the network of %s does nat=%q; this node asks nat=%q: give every unit of a group (and every spec that joins its network) the same nat=", n.Owner, n.NAT, nat)
		}
		n.Dir = p.Dir
		var err error
		if addr, err = n.address(token, index); err != nil {
			return err
		}
		inet, err := internet(all, rng)
		if err != nil {
			return err
		}
		if _, err := inet.address(natHolder(key), 0); err != nil {
			return err
		}
		fresh := []string{addr.String()}
		if public {
			if pub, err = inet.address(token, 0); err != nil {
				return err
			}
			inet.Mapped[pub.String()] = token
			fresh = append(fresh, pub.String())
		}
		if err := forgetFlows(fresh...); err != nil {
			return err
		}
		for _, w := range []*network{n, inet} {
			if err := writeNetwork(p.NetDir, w); err != nil {
				return err
			}
		}
		nw = n
		return ensureBridge(n) // the internet's: changeNetworks
	})
	return nw, addr, pub, err
}

// internet is the internet's record, made with a /24 of rng if new.
func internet(all map[string]*network, rng netip.Prefix) (*network, error) {
	if n := all[internetKey]; n != nil {
		if n.Mapped == nil {
			n.Mapped = map[string]string{}
		}
		return n, nil
	}
	subnet, err := freeSubnet(rng, all, hostPrefixes())
	if err != nil {
		return nil, err
	}
	n := &network{Key: internetKey, Bridge: "kb" + internetKey, Subnet: subnet, Owner: "the sites' internet",
		Nodes: map[string]string{}, Mapped: map[string]string{}}
	all[internetKey] = n
	return n, nil
}

// PublicAddress gives holder a public address (the same one when asked
// again) and maps it to the node made under token, or to nothing when
// token is "": OpenStack's floating IPs, allocated, then associated.
func (p *Provider) PublicAddress(holder, token string) (string, error) {
	var addr netip.Addr
	err := p.changeNetworks(func(all map[string]*network) error {
		inet, err := internet(all, envRange())
		if err != nil {
			return err
		}
		if addr, err = inet.address(holder, 0); err != nil {
			return err
		}
		if token != "" && !hasNode(all, token) {
			return fmt.Errorf("container: no node %s to map %s to", token, addr)
		}
		if inet.Mapped[addr.String()] != token {
			if err := forgetFlows(addr.String()); err != nil {
				return err
			}
		}
		inet.Mapped[addr.String()] = token
		if token == "" {
			delete(inet.Mapped, addr.String())
		}
		return writeNetwork(p.NetDir, inet)
	})
	return addr.String(), err
}

// ReleasePublic gives holder's public address back.
func (p *Provider) ReleasePublic(holder string) error {
	return p.changeNetworks(func(all map[string]*network) error {
		inet := all[internetKey]
		if inet == nil {
			return nil
		}
		if a, ok := inet.Nodes[holder]; ok {
			delete(inet.Mapped, a)
			delete(inet.Nodes, holder)
			if err := forgetFlows(a); err != nil {
				return err
			}
		}
		return writeNetwork(p.NetDir, inet)
	})
}

// changeNetworks changes the records under the lock, then the rules.
func (p *Provider) changeNetworks(change func(all map[string]*network) error) error {
	unlock, err := netLock(p.NetDir)
	if err != nil {
		return err
	}
	defer unlock()
	all, err := readNetworks(p.NetDir)
	if err != nil {
		return err
	}
	if err := change(all); err != nil {
		return err
	}
	return p.applyNetworks(all)
}

func hasNode(all map[string]*network, token string) bool {
	for k, n := range all {
		if _, ok := n.Nodes[token]; ok && k != internetKey {
			return true
		}
	}
	return false
}

// address is token's address on n: the one after the gateway by the
// node's number when free (web-1 is .2), else the first free one.
func (n *network) address(token string, index int) (netip.Addr, error) {
	if s, ok := n.Nodes[token]; ok {
		return netip.ParseAddr(s)
	}
	used := map[string]bool{n.hostAddress().String(): true}
	for _, s := range n.Nodes {
		used[s] = true
	}
	if index > 0 && index < 250 {
		b := n.gateway().As4()
		b[3] += byte(index)
		if a := netip.AddrFrom4(b); n.Subnet.Contains(a) && !used[a.String()] {
			n.Nodes[token] = a.String()
			return a, nil
		}
	}
	for a := n.gateway().Next(); n.Subnet.Contains(a); a = a.Next() {
		if !used[a.String()] && a.Next().IsValid() && n.Subnet.Contains(a.Next()) { // not the broadcast
			n.Nodes[token] = a.String()
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("container: network %s (%s) is full", n.Subnet, n.Owner)
}

// gateway is the nodes' gateway, the first address: the site's router,
// or on the internet kumo's host.
func (n *network) gateway() netip.Addr { return n.Subnet.Addr().Next() }

// freeSubnet is the first /24 of rng that no network uses and that does
// not overlap the host's own networks (host).
func freeSubnet(rng netip.Prefix, all map[string]*network, host []netip.Prefix) (netip.Prefix, error) {
	taken := append([]netip.Prefix(nil), host...)
	for _, n := range all {
		taken = append(taken, n.Subnet)
	}
	if rng.Bits() > 24 {
		return netip.Prefix{}, fmt.Errorf("container: range %s is smaller than a /24", rng)
	}
	for a := rng.Masked().Addr(); rng.Contains(a); {
		candidate := netip.PrefixFrom(a, 24)
		free := true
		for _, t := range taken {
			if t.Overlaps(candidate) {
				free = false
				break
			}
		}
		if free {
			return candidate, nil
		}
		b := a.As4()
		if b[2] == 255 {
			b[1]++
			b[2] = 0
		} else {
			b[2]++
		}
		a = netip.AddrFrom4(b)
	}
	return netip.Prefix{}, fmt.Errorf("container: no free /24 left in %s (give another range with network_range= or $KUMO_CONTAINER_RANGE)", rng)
}

// detach releases token's address; a network left without nodes is
// removed with its bridge and rules.
func (p *Provider) detach(key, token string) error {
	return p.changeNetworks(func(all map[string]*network) error {
		n := all[key]
		if n == nil {
			return nil
		}
		gone := forgetNode(n, all[internetKey], token)
		if inet := all[internetKey]; inet != nil {
			if err := writeNetwork(p.NetDir, inet); err != nil {
				return err
			}
		}
		if err := forgetFlows(gone...); err != nil {
			return err
		}
		if len(n.Nodes) > 0 {
			return writeNetwork(p.NetDir, n)
		}
		if err := removeNetwork(p.NetDir, all, n); err != nil {
			return err
		}
		// The internet goes with the last site, unless a floating IP holds
		// an address of it still.
		if inet := all[internetKey]; inet != nil && len(all) == 1 && len(inet.Nodes) == 0 {
			return removeNetwork(p.NetDir, all, inet)
		}
		return nil
	})
}

// forgetNode takes token's node off its network n and the internet
// (inet, if any): its address, its own public address, what was mapped
// to it, and its site's NAT address with the site's last node. It
// returns the addresses given back, whose flows are to be forgotten. A
// public address a floating IP holds stays the holder's, mapped to
// nothing.
func forgetNode(n, inet *network, token string) (gone []string) {
	if a, ok := n.Nodes[token]; ok {
		gone = append(gone, a)
	}
	delete(n.Nodes, token)
	delete(n.Inbound, token)
	if inet == nil {
		return gone
	}
	delete(inet.Nodes, token)
	for pub, t := range inet.Mapped {
		if t == token {
			delete(inet.Mapped, pub)
			gone = append(gone, pub)
		}
	}
	if len(n.Nodes) == 0 {
		delete(inet.Nodes, natHolder(n.Key))
	}
	return gone
}

// removeNetwork removes n's router, bridge and record.
func removeNetwork(dir string, all map[string]*network, n *network) error {
	if err := removeRouter(n.Key); err != nil {
		return err
	}
	if err := exec.Command("ip", "link", "del", n.Bridge).Run(); err != nil && bridgeExists(n.Bridge) {
		return fmt.Errorf("container: removing bridge %s: %w", n.Bridge, err)
	}
	if err := os.Remove(filepath.Join(dir, n.Key+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	delete(all, n.Key)
	return nil
}

func bridgeExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// ensureBridge makes n's bridge with the host's address on it, and lets
// the host forward for the internet.
func ensureBridge(n *network) error {
	host := netip.PrefixFrom(n.hostAddress(), n.Subnet.Bits()).String()
	if !bridgeExists(n.Bridge) {
		if err := ipSteps([]string{"ip", "link", "add", n.Bridge, "type", "bridge"}); err != nil {
			return err
		}
	} else if n.Key != internetKey {
		// A bridge an earlier kumo made held the gateway itself: the
		// router has it now.
		gw := netip.PrefixFrom(n.gateway(), n.Subnet.Bits()).String()
		exec.Command("ip", "addr", "del", gw, "dev", n.Bridge).Run()
	}
	// Whether just made or found: a kumo killed right after making it
	// left it without its address, or down, and the host then sent what
	// it meant for the nodes to its default route.
	if err := ipSteps(
		[]string{"ip", "addr", "replace", host, "dev", n.Bridge},
		[]string{"ip", "link", "set", n.Bridge, "up"},
	); err != nil {
		return err
	}
	// Routers reach mirrors through the host: it must forward.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("container: letting the host forward (net.ipv4.ip_forward): %w", err)
	}
	return raiseInotify()
}

// inotifyInstances is what the host must allow: each node's systemd
// takes a few inotify instances, and the kernel's default of 128 for all
// of root's ends at about 30 nodes ("Too many open files" as they boot).
// Raised, never lowered, as LXD's production settings do.
const inotifyInstances = 8192

func raiseInotify() error {
	const path = "/proc/sys/fs/inotify/max_user_instances"
	b, err := os.ReadFile(path)
	if err != nil {
		return nil // not Linux's usual /proc: nothing to raise
	}
	if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= inotifyInstances {
		return nil
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(inotifyInstances)), 0o644); err != nil {
		return fmt.Errorf("container: raising fs.inotify.max_user_instances to %d for many nodes: %w", inotifyInstances, err)
	}
	return nil
}

// NftTable is kumo's nftables table.
const NftTable = "kumo"

// applyNetworks brings the host to the records: the internet's bridge,
// every site's router (its NAT address given if it lacks one), and the
// host's own rules.
func (p *Provider) applyNetworks(all map[string]*network) error {
	inet := all[internetKey]
	if inet == nil {
		return applyRules(all)
	}
	if err := ensureBridge(inet); err != nil {
		return err
	}
	var sites []string
	siteOf := map[string]string{} // node token -> its site
	for k, n := range all {
		if k != internetKey {
			sites = append(sites, k)
			for token := range n.Nodes {
				siteOf[token] = k
			}
		}
	}
	sort.Strings(sites)
	publics := map[string]map[string]string{} // site -> public -> private
	for pub, token := range inet.Mapped {
		if k, ok := siteOf[token]; ok {
			if publics[k] == nil {
				publics[k] = map[string]string{}
			}
			publics[k][pub] = all[k].Nodes[token]
		}
	}
	for _, k := range sites {
		if _, ok := inet.Nodes[natHolder(k)]; !ok {
			if _, err := inet.address(natHolder(k), 0); err != nil {
				return err
			}
			if err := writeNetwork(p.NetDir, inet); err != nil {
				return err
			}
		}
		nat, err := netip.ParseAddr(inet.Nodes[natHolder(k)])
		if err != nil {
			return err
		}
		if !bridgeExists(all[k].Bridge) {
			continue // made by attach, with its first node
		}
		inbound := map[string]Inbound{} // private address -> what reaches it
		for token, in := range all[k].Inbound {
			if a, ok := all[k].Nodes[token]; ok {
				inbound[a] = in
			}
		}
		if err := ensureRouter(all[k], inet, nat, publics[k], inbound); err != nil {
			return err
		}
	}
	return applyRules(all)
}

// applyRules writes the host's nftables table whole from the records:
// the internet's way out to the host's uplink, and forwarding, which
// keeps each bridge's traffic on it (bridged frames pass the host's
// filter where br_netfilter is loaded) and never routes from one of
// kumo's bridges to another: each site reaches the others only through
// its router and the internet.
func applyRules(all map[string]*network) error {
	var keys []string
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	// Creating the table first makes the delete safe when it is absent.
	fmt.Fprintf(&b, "table ip %s\ndelete table ip %s\n", NftTable, NftTable)
	if len(keys) > 0 {
		fmt.Fprintf(&b, "table ip %s {\n", NftTable)
		b.WriteString("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n")
		if inet := all[internetKey]; inet != nil {
			// Not onto kumo's bridges: where br_netfilter is loaded,
			// frames a router bridges to its nodes pass this chain too.
			fmt.Fprintf(&b, "    ip saddr %s oifname != \"kb*\" masquerade\n", inet.Subnet)
		}
		b.WriteString("  }\n  chain forward {\n    type filter hook forward priority filter; policy accept;\n")
		b.WriteString("    ct state established,related accept\n")
		for _, k := range keys {
			n := all[k]
			fmt.Fprintf(&b, "    iifname %q oifname %q accept\n", n.Bridge, n.Bridge)
		}
		b.WriteString("    iifname \"kb*\" oifname \"kb*\" drop\n  }\n}\n")
	}
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("container: nftables: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// forgetFlows drops the connection tracking entries of addrs, the host's
// and every router's, in either direction and before or after NAT. An
// address handed to a new node (or a public address mapped anew) would
// otherwise keep the old one's NAT bindings: a UDP flow kept alive by
// keepalives, as WireGuard's are, goes on to the old destination forever.
func forgetFlows(addrs ...string) error {
	var filters []netlink.CustomConntrackFilter
	for _, a := range addrs {
		ip := net.ParseIP(a)
		if ip == nil {
			continue
		}
		for _, t := range []netlink.ConntrackFilterType{netlink.ConntrackOrigSrcIP, netlink.ConntrackOrigDstIP, netlink.ConntrackReplyAnyIP} {
			f := &netlink.ConntrackFilter{}
			if err := f.AddIP(t, ip); err != nil {
				return err
			}
			filters = append(filters, f)
		}
	}
	if len(filters) == 0 {
		return nil
	}
	handles, done, err := allHandles()
	if err != nil {
		return err
	}
	defer done()
	for _, h := range handles {
		_, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...)
		if errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
			continue // a kernel without connection tracking over netlink tracks nothing to forget
		}
		if err != nil {
			return fmt.Errorf("container: forgetting the connections of %s: %w", strings.Join(addrs, ", "), err)
		}
	}
	return nil
}

// prune forgets the addresses of nodes whose folders are gone (deleted
// by hand, or by a kumo that died in between), and removes networks left
// without nodes, so that their addresses and bridges do not pile up on
// the host. The lock is held.
func (p *Provider) prune(all map[string]*network) error {
	inet := all[internetKey]
	for key, n := range all {
		if key == internetKey || n.Dir == "" {
			continue
		}
		var gone []string
		for token := range n.Nodes {
			dir := filepath.Join(n.Dir, "nodes", token)
			if _, err := os.Stat(dir); err == nil {
				continue
			}
			if _, err := os.Stat(dir + partialSuffix); err == nil {
				continue
			}
			gone = append(gone, forgetNode(n, inet, token)...)
		}
		if len(gone) == 0 {
			continue
		}
		if err := forgetFlows(gone...); err != nil {
			return err
		}
		if len(n.Nodes) == 0 {
			if err := removeNetwork(p.NetDir, all, n); err != nil {
				return err
			}
		} else if err := writeNetwork(p.NetDir, n); err != nil {
			return err
		}
		if inet != nil {
			if err := writeNetwork(p.NetDir, inet); err != nil {
				return err
			}
		}
	}
	return nil
}
