package mesh

import (
	"net/netip"
	"strings"
	"testing"
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
			"c-2": "endpoint=198.18.2.3:51820 keepalive=0 allowed=198.19.192.4/32",
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
