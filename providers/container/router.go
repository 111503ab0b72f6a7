package container

import (
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

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Each site has a router of its own: a network namespace between the
// site's bridge and the internet, as a cloud's VPC router or a campus
// firewall. It holds the site's gateway (.1) on its "lan" side and the
// site's NAT address and its nodes' public addresses on its "wan" side,
// and does the site's NAT there:
//   - a public address forwards 1:1 to its node, and what the node sends
//     to the internet leaves from it;
//   - every other node's traffic leaves from the site's NAT address,
//     with its source port kept where it is free (as Linux, Neutron's
//     routers and most campus firewalls do), or a new port for every
//     destination when the site's nat is "symmetric" (as AWS's NAT
//     gateways and carrier-grade NATs do);
//   - what arrives unasked at the NAT address is dropped before the
//     router's connection tracking keeps it, as a stateful firewall's
//     input policy does: two nodes behind such NATs that call each
//     other at once open a direct path (UDP hole punching), which a
//     symmetric NAT defeats.
//
// A router in its own namespace is what makes two NATs in a row real:
// one kernel's connection tracking sees a packet once per namespace.
// kumo's host keeps an address on each site's bridge (.254), from which
// it reaches every node directly, as a cloud's console does, and it
// routes the internet to the host's uplink.

// NAT kinds a site's router can do.
const (
	NATPortPreserving = ""          // the source port kept where free
	NATSymmetric      = "symmetric" // a new source port per destination
)

func routerName(key string) string { return "kr" + key }

// routerPath is where the router's namespace is pinned: /run/netns,
// emptied at boot as the bridges are.
func routerPath(key string) string { return filepath.Join("/run/netns", routerName(key)) }

// Host-side ends of the router's two links, ports of the site's bridge
// and of the internet's.
func lanPort(key string) string { return "kl" + key }
func wanPort(key string) string { return "kw" + key }

// hostAddress is kumo's host's address on a site's bridge: the last one,
// which nodes never get. On the internet the host is its gateway.
func (n *network) hostAddress() netip.Addr {
	if n.Key == internetKey {
		return n.gateway()
	}
	b := n.Subnet.Masked().Addr().As4()
	b[3] = 254
	return netip.AddrFrom4(b)
}

// ensureRouter makes site n's router if it is missing and brings its
// wan addresses and NAT rules to what the records say: nat is the
// site's NAT address on the internet inet, publics its nodes' public
// addresses (public -> private), inbound what reaches those of them that
// have security groups (by private address).
func ensureRouter(n, inet *network, nat netip.Addr, publics map[string]string, inbound map[string]Inbound) error {
	key := n.Key
	if _, err := os.Stat(routerPath(key)); err != nil {
		// A stale end of a router's links (its namespace was removed by
		// hand) would block new ones.
		exec.Command("ip", "link", "del", lanPort(key)).Run()
		exec.Command("ip", "link", "del", wanPort(key)).Run()
		if err := ipSteps([]string{"ip", "netns", "add", routerName(key)}); err != nil {
			return err
		}
	}
	r := routerName(key)
	gw := netip.PrefixFrom(n.gateway(), n.Subnet.Bits()).String()
	for port, peer := range map[string]string{lanPort(key): "lan", wanPort(key): "wan"} {
		if !bridgeExists(port) {
			if err := ipSteps([]string{"ip", "link", "add", port, "type", "veth", "peer", "name", peer, "netns", r}); err != nil {
				return err
			}
		}
	}
	// Set up whether just made or found, as the bridges are: a kumo
	// killed in between left the links unplugged and down.
	if err := ipSteps(
		[]string{"ip", "link", "set", lanPort(key), "master", n.Bridge, "up"},
		[]string{"ip", "-n", r, "addr", "replace", gw, "dev", "lan"},
		[]string{"ip", "-n", r, "link", "set", "lan", "up"},
		[]string{"ip", "-n", r, "link", "set", "lo", "up"},
		[]string{"ip", "link", "set", wanPort(key), "master", inet.Bridge, "up"},
		[]string{"ip", "-n", r, "link", "set", "wan", "up"},
	); err != nil {
		return err
	}
	want := []string{netip.PrefixFrom(nat, inet.Subnet.Bits()).String()}
	for pub := range publics {
		want = append(want, pub+"/32")
	}
	moved, err := syncAddresses(key, want)
	if err != nil {
		return err
	}
	if err := ipSteps([]string{"ip", "-n", r, "route", "replace", "default", "via", inet.gateway().String(), "dev", "wan"}); err != nil {
		return err
	}
	cmd := exec.Command("nsenter", "--net="+routerPath(key), "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward && nft -f -")
	cmd.Stdin = strings.NewReader(routerRules(n, nat, publics, inbound))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("container: the router of %s: nftables: %v: %s", n.Owner, err, strings.TrimSpace(string(out)))
	}
	return forgetNeighbours(moved...)
}

// routerRules is the nftables table of site n's router.
func routerRules(n *network, nat netip.Addr, publics map[string]string, inbound map[string]Inbound) string {
	var pubs []string
	for pub := range publics {
		pubs = append(pubs, pub)
	}
	sort.Strings(pubs)
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s\ndelete table ip %s\ntable ip %s {\n", NftTable, NftTable, NftTable)
	b.WriteString("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n")
	for _, pub := range pubs {
		fmt.Fprintf(&b, "    ip daddr %s dnat to %s\n", pub, publics[pub])
	}
	b.WriteString("  }\n  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n")
	// The answer to a neighbour's public address must come back the way
	// it went.
	fmt.Fprintf(&b, "    oifname \"lan\" ip saddr %s ct status dnat masquerade\n", n.Subnet)
	for _, pub := range pubs {
		fmt.Fprintf(&b, "    oifname \"wan\" ip saddr %s snat to %s\n", publics[pub], pub)
	}
	flags := ""
	if n.NAT == NATSymmetric {
		flags = " fully-random"
	}
	fmt.Fprintf(&b, "    oifname \"wan\" ip saddr %s snat to %s%s\n", n.Subnet, nat, flags)
	b.WriteString("  }\n  chain input {\n    type filter hook input priority filter; policy accept;\n")
	b.WriteString("    iifname \"wan\" ct state new drop\n")
	b.WriteString("  }\n  chain forward {\n    type filter hook forward priority filter; policy accept;\n")
	b.WriteString("    ct state established,related accept\n")
	// Security groups: a node that has them gets through its public
	// address only what they let in.
	for _, pub := range pubs {
		in, ok := inbound[publics[pub]]
		if !ok {
			continue
		}
		for _, proto := range []struct {
			name  string
			ports []int
		}{{"tcp", in.TCP}, {"udp", in.UDP}} {
			if len(proto.ports) > 0 {
				fmt.Fprintf(&b, "    iifname \"wan\" ct status dnat ip daddr %s %s dport { %s } accept\n", publics[pub], proto.name, joinInts(proto.ports))
			}
		}
		fmt.Fprintf(&b, "    iifname \"wan\" ct status dnat ip daddr %s drop\n", publics[pub])
	}
	b.WriteString("    iifname \"wan\" ct status dnat accept\n    iifname \"wan\" drop\n  }\n}\n")
	return b.String()
}

func joinInts(list []int) string {
	s := make([]string, len(list))
	for i, n := range list {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// syncAddresses makes the router's wan addresses want (prefixes) and
// returns the addresses it added: if one was elsewhere before, the
// neighbours' caches still point there.
func syncAddresses(key string, want []string) (added []string, err error) {
	ns, err := netns.GetFromPath(routerPath(key))
	if err != nil {
		return nil, fmt.Errorf("container: router %s: %w", routerName(key), err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	wan, err := h.LinkByName("wan")
	if err != nil {
		return nil, fmt.Errorf("container: router %s: its wan link: %w", routerName(key), err)
	}
	have, err := h.AddrList(wan, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w] = true
	}
	for _, a := range have {
		s := a.IPNet.String()
		if wanted[s] {
			delete(wanted, s)
			continue
		}
		if err := h.AddrDel(wan, &a); err != nil {
			return nil, fmt.Errorf("container: router %s: removing %s: %w", routerName(key), s, err)
		}
	}
	for _, w := range want {
		if !wanted[w] {
			continue
		}
		a, err := netlink.ParseAddr(w)
		if err != nil {
			return nil, err
		}
		if err := h.AddrAdd(wan, a); err != nil {
			return nil, fmt.Errorf("container: router %s: adding %s: %w", routerName(key), w, err)
		}
		added = append(added, a.IP.String())
	}
	return added, nil
}

// forgetNeighbours drops the host's and every router's cached link
// address of addrs, which may have moved to another router.
func forgetNeighbours(addrs ...string) error {
	if len(addrs) == 0 {
		return nil
	}
	handles, done, err := allHandles()
	if err != nil {
		return err
	}
	defer done()
	for _, h := range handles {
		neighs, err := h.NeighList(0, netlink.FAMILY_V4)
		if err != nil {
			continue
		}
		for _, nb := range neighs {
			for _, a := range addrs {
				if nb.IP.Equal(net.ParseIP(a)) {
					h.NeighDel(&nb)
				}
			}
		}
	}
	return nil
}

// removeRouter removes site key's router; its links go with it.
func removeRouter(key string) error {
	if _, err := os.Stat(routerPath(key)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if out, err := exec.Command("ip", "netns", "del", routerName(key)).CombinedOutput(); err != nil {
		return fmt.Errorf("container: removing router %s: %v: %s", routerName(key), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// allHandles are netlink handles into the host's namespace and every
// router's, for what each kernel keeps: connection tracking, neighbours.
func allHandles() (handles []*netlink.Handle, done func(), err error) {
	host, err := netlink.NewHandle()
	if err != nil {
		return nil, nil, err
	}
	handles = append(handles, host)
	paths, _ := filepath.Glob("/run/netns/kr*")
	for _, p := range paths {
		ns, err := netns.GetFromPath(p)
		if err != nil {
			continue // removed in between
		}
		h, err := netlink.NewHandleAt(ns)
		ns.Close()
		if err == nil {
			handles = append(handles, h)
		}
	}
	return handles, func() {
		for _, h := range handles {
			h.Close()
		}
	}, nil
}

// ipSteps runs ip commands in order, stopping at the first that fails.
func ipSteps(steps ...[]string) error {
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("container: %s: %v: %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}
