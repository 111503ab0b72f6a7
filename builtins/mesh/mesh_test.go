package mesh

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kumo-dev/kumo/builtins/mesh/uapi"
)

// Three sites: c-1 and c-2 on-prem behind NAT, a-1 and a-2 on a cloud
// with public addresses (hubs), o-1 on another cloud behind NAT.
func testMesh() *mesh {
	m := &mesh{port: 51820, prefix: DefaultRange}
	add := func(name, site, private, public string, hub bool, n int) *member {
		mb := &member{name: name, site: site, private: private, public: public, hub: hub,
			address: netip.MustParseAddr("198.19.192." + string(rune('0'+n))), key: strings.Repeat(string(rune('A'+n)), 43) + "="}
		m.nodes = append(m.nodes, mb)
		return mb
	}
	a1 := add("a-1", "aws", "198.18.0.2", "198.18.1.2", true, 1)
	add("a-2", "aws", "198.18.0.3", "198.18.1.3", true, 2)
	add("c-1", "onprem", "198.18.2.2", "198.18.2.2", false, 3)
	add("c-2", "onprem", "198.18.2.3", "198.18.2.3", false, 4)
	add("o-1", "openstack", "198.18.3.2", "198.18.3.2", false, 5)
	m.relay = a1
	return m
}

func peersOf(t *testing.T, m *mesh, name string) map[string]string {
	t.Helper()
	for _, n := range m.nodes {
		if n.name == name {
			out := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(m.peers(n)), "\n") {
				f := strings.Fields(line)
				for _, o := range m.nodes {
					if o.key == f[1] {
						out[o.name] = strings.Join(f[2:], " ")
					}
				}
			}
			return out
		}
	}
	t.Fatalf("no node %s", name)
	return nil
}

func TestPeers(t *testing.T) {
	m := testMesh()
	for node, want := range map[string]map[string]string{
		// A node behind NAT: its site's neighbour on the private address,
		// the hubs at their public ones with keepalive, and o-1 (NAT on
		// another site) through the relay a-1.
		"c-1": {
			"a-1": "endpoint=198.18.1.2:51820 keepalive=25 allowed=198.19.192.1/32,198.19.192.5/32",
			"a-2": "endpoint=198.18.1.3:51820 keepalive=25 allowed=198.19.192.2/32",
			"c-2": "endpoint=198.18.2.3:51825 keepalive=0 allowed=198.19.192.4/32", // its own port behind NAT
		},
		// A hub: the other hub of its site privately, everyone behind NAT
		// without an endpoint (they call in).
		"a-1": {
			"a-2": "endpoint=198.18.0.3:51820 keepalive=0 allowed=198.19.192.2/32",
			"c-1": "endpoint=- keepalive=0 allowed=198.19.192.3/32",
			"c-2": "endpoint=- keepalive=0 allowed=198.19.192.4/32",
			"o-1": "endpoint=- keepalive=0 allowed=198.19.192.5/32",
		},
		"o-1": {
			"a-1": "endpoint=198.18.1.2:51820 keepalive=25 allowed=198.19.192.1/32,198.19.192.3/32,198.19.192.4/32",
			"a-2": "endpoint=198.18.1.3:51820 keepalive=25 allowed=198.19.192.2/32",
		},
	} {
		got := peersOf(t, m, node)
		if len(got) != len(want) {
			t.Errorf("%s has peers %v, want %v", node, got, want)
		}
		for peer, w := range want {
			if got[peer] != w {
				t.Errorf("%s's peer %s: %q, want %q", node, peer, got[peer], w)
			}
		}
	}
}

// Without a hub, two nodes behind NAT on different sites are not peers:
// check() then names them with the advice to give one a public address.
func TestPeersWithoutAHub(t *testing.T) {
	m := testMesh()
	m.nodes = m.nodes[2:] // c-1, c-2, o-1
	m.relay = nil
	if got := peersOf(t, m, "c-1"); len(got) != 1 || got["c-2"] == "" {
		t.Errorf("c-1's peers without a hub: %v, want c-2 alone", got)
	}
}

// Addresses stay with their nodes; new ones take the lowest free, never
// the range's own address or its broadcast.
func TestAllocate(t *testing.T) {
	m := &mesh{prefix: netip.MustParsePrefix("198.19.192.0/29")}
	for _, old := range []string{"198.19.192.3", "", "198.19.192.3", "10.0.0.1", ""} {
		m.nodes = append(m.nodes, &member{oldAddress: old})
	}
	if err := m.allocate(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range m.nodes {
		got = append(got, n.address.String())
	}
	if want := "198.19.192.3 198.19.192.1 198.19.192.2 198.19.192.4 198.19.192.5"; strings.Join(got, " ") != want {
		t.Errorf("addresses %v, want %s", got, want)
	}
	m.nodes = append(m.nodes, &member{}, &member{})
	for _, n := range m.nodes {
		n.oldAddress, n.address = n.address.String(), netip.Addr{}
	}
	if err := m.allocate(); err == nil || !strings.Contains(err.Error(), "range 198.19.192.0/29 is full") {
		t.Errorf("a full range: %v", err)
	}
}

func byName(m *mesh, name string) *member {
	for _, n := range m.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// Two nodes behind NAT on different sites on a direct path are each
// other's peers at their NATs' mappings, with keepalives, and the relay
// no longer carries their traffic; while a direct path is tried, they
// call each other but their traffic still goes through the relay.
func TestPeersOnDirectPaths(t *testing.T) {
	m := testMesh()
	c1, c2, o1 := byName(m, "c-1"), byName(m, "c-2"), byName(m, "o-1")
	c1.mapped, c2.mapped, o1.mapped = "198.18.9.2:51820", "198.18.9.2:1024", "198.18.9.3:51820"
	m.paths = map[pair]path{pairOf(c1, o1): direct, pairOf(o1, c2): probing}
	o := peersOf(t, m, "o-1")
	if want := "endpoint=198.18.9.2:51820 keepalive=25 allowed=198.19.192.3/32"; o["c-1"] != want {
		t.Errorf("o-1's peer c-1 on a direct path: %q, want %q", o["c-1"], want)
	}
	if want := "endpoint=198.18.9.2:1024 keepalive=25 allowed=-"; o["c-2"] != want {
		t.Errorf("o-1's peer c-2 being tried: %q, want %q", o["c-2"], want)
	}
	if want := "endpoint=198.18.1.2:51820 keepalive=25 allowed=198.19.192.1/32,198.19.192.4/32"; o["a-1"] != want {
		t.Errorf("o-1's relay: %q, want %q (c-2 through it, c-1 not)", o["a-1"], want)
	}
	if c := peersOf(t, m, "c-1"); c["o-1"] != "endpoint=198.18.9.3:51820 keepalive=25 allowed=198.19.192.5/32" {
		t.Errorf("c-1's peer o-1 on a direct path: %q", c["o-1"])
	}
}

// A direct path both ends still use stays direct; a pair whose try failed
// before stays relayed; a pair never tried, a new member, or a try left
// over by a killed call, is tried again.
func TestChoosePaths(t *testing.T) {
	m := testMesh()
	a1, c1, c2, o1 := byName(m, "a-1"), byName(m, "c-1"), byName(m, "c-2"), byName(m, "o-1")
	for _, n := range m.nodes {
		n.oldAddress = n.address.String()
	}
	now := time.Now()
	c1.shown = map[string]uapi.Peer{o1.key: {Endpoint: "198.18.9.3:51820", Handshake: now, Allowed: []string{"198.19.192.5/32"}},
		a1.key: {Allowed: []string{"198.19.192.1/32"}}}
	c2.shown = map[string]uapi.Peer{a1.key: {Allowed: []string{"198.19.192.1/32", "198.19.192.5/32"}}}
	o1.shown = map[string]uapi.Peer{c1.key: {Endpoint: "198.18.9.2:51820", Handshake: now.Add(-time.Minute), Allowed: []string{"198.19.192.3/32"}},
		a1.key: {Allowed: []string{"198.19.192.1/32", "198.19.192.4/32"}}}
	// c-2–o-1 through the relay, but never tried (a call killed before
	// its try): tried now.
	if got := m.choosePaths(); len(got) != 1 || got[0] != pairOf(c2, o1) {
		t.Errorf("a relayed pair never tried: tried %v, want c-2–o-1", got)
	}
	// Tried before, and failed: left relayed.
	c2.triedKeys, o1.triedKeys = map[string]bool{o1.key: true}, map[string]bool{c2.key: true}
	if got := m.choosePaths(); len(got) != 0 {
		t.Errorf("tried %v, want none", got)
	}
	if m.paths[pairOf(c1, o1)] != direct || m.paths[pairOf(c2, o1)] != relayed || len(m.paths) != 2 {
		t.Errorf("paths %v, want c-1–o-1 direct, c-2–o-1 relayed", m.paths)
	}
	// A stale handshake, a new member, and a try left over.
	p := o1.shown[c1.key]
	p.Handshake = now.Add(-10 * time.Minute)
	o1.shown[c1.key] = p
	if got := m.choosePaths(); len(got) != 1 || got[0] != pairOf(c1, o1) {
		t.Errorf("with a stale handshake tried %v, want c-1–o-1", got)
	}
	c2.shown[o1.key] = uapi.Peer{Endpoint: "198.18.9.3:51820"}
	if got := m.choosePaths(); len(got) != 2 {
		t.Errorf("with a try left over tried %v, want both pairs", got)
	}
	delete(c2.shown, o1.key)
	c2.oldAddress = ""
	if got := m.choosePaths(); len(got) != 2 || m.paths[pairOf(c2, o1)] != relayed {
		t.Errorf("with c-2 new tried %v (paths %v), want both pairs, through the relay until they work", got, m.paths)
	}
}

func TestParseShow(t *testing.T) {
	out := "wg.listen_port=51820\nwg.public_key=" + strings.Repeat("ab", 32) + "\nwg.endpoint=198.18.1.2:51820\nwg.last_handshake_time_sec=1700000000\nwg.allowed_ip=198.19.192.1/32\nwg.allowed_ip=198.19.192.5/32\nother=1\n"
	got := parseShow(out, "wg.")
	if len(got) != 1 {
		t.Fatalf("peers %v", got)
	}
	for k, p := range got {
		if len(k) != 44 || p.Endpoint != "198.18.1.2:51820" || p.Handshake.Unix() != 1700000000 || len(p.Allowed) != 2 {
			t.Errorf("peer %s: %+v", k, p)
		}
	}
}
