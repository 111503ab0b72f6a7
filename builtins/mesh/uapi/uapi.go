// Package uapi holds the mesh's two peer formats, shared by mesh() and
// its agent kumo-wg: what a WireGuard interface says of its peers in the
// cross-platform userspace API's "get" answer (wireguard.com/xplatform),
// which kumo-wg's show prints and mesh() reads back, and the peers kumo
// wants an interface to have (kumo-wg sync's input).
package uapi

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A Peer is what the interface says of one peer.
type Peer struct {
	Key       string // public key, base64 as wg shows it
	Endpoint  string // host:port, "" when not known yet
	Keepalive int    // persistent keepalive, seconds
	Handshake time.Time
	Allowed   []string
}

// Peers reads the peers of a get answer, by base64 public key; the
// interface's own lines (its key, its port) are skipped.
func Peers(dump string) map[string]Peer {
	peers := map[string]Peer{}
	cur := ""
	for _, line := range strings.Split(dump, "\n") {
		k, v, _ := strings.Cut(line, "=")
		if k == "public_key" {
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != 32 {
				cur = ""
				continue
			}
			cur = base64.StdEncoding.EncodeToString(b)
			peers[cur] = Peer{Key: cur}
			continue
		}
		p, ok := peers[cur]
		if !ok {
			continue
		}
		switch k {
		case "endpoint":
			p.Endpoint = v
		case "persistent_keepalive_interval":
			p.Keepalive, _ = strconv.Atoi(v)
		case "last_handshake_time_sec":
			if sec, err := strconv.ParseInt(v, 10, 64); err == nil && sec > 0 {
				p.Handshake = time.Unix(sec, 0)
			}
		case "allowed_ip":
			p.Allowed = append(p.Allowed, v)
		}
		peers[cur] = p
	}
	return peers
}

// Wanted reads the peers kumo wants an interface to have, one line each:
// "peer PUBKEY endpoint=HOST:PORT|- keepalive=SECONDS allowed=CIDR,...|-"
// (endpoint -: the peer calls in; allowed -: nothing routed to it yet,
// while a direct path is tried). Blank lines and # comments are skipped.
func Wanted(text string) (map[string]Peer, error) {
	out := map[string]Peer{}
	for n, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[0] != "peer" || len(f) < 2 {
			return nil, fmt.Errorf("peers line %d: want: peer PUBKEY endpoint=HOST:PORT|- keepalive=SECONDS allowed=CIDR,...", n+1)
		}
		key, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("peers line %d: %q is not a public key", n+1, f[1])
		}
		p := Peer{Key: f[1]}
		for _, kv := range f[2:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "endpoint":
				if v != "-" {
					if _, err := net.ResolveUDPAddr("udp", v); err != nil {
						return nil, fmt.Errorf("peers line %d: endpoint %q: %v", n+1, v, err)
					}
					p.Endpoint = v
				}
			case "keepalive":
				if p.Keepalive, err = strconv.Atoi(v); err != nil || p.Keepalive < 0 || p.Keepalive > 65535 {
					return nil, fmt.Errorf("peers line %d: keepalive %q: want seconds", n+1, v)
				}
			case "allowed":
				if v == "-" {
					continue // none yet: a direct path being tried
				}
				for _, c := range strings.Split(v, ",") {
					if _, _, err := net.ParseCIDR(c); err != nil {
						return nil, fmt.Errorf("peers line %d: allowed %q: %v", n+1, c, err)
					}
					p.Allowed = append(p.Allowed, c)
				}
			default:
				return nil, fmt.Errorf("peers line %d: unknown field %q", n+1, k)
			}
		}
		out[p.Key] = p
	}
	return out, nil
}

// Unchanged reports whether an interface's peer have is already what
// want asks. An endpoint learnt from a peer that calls in is not a
// change.
func Unchanged(want, have Peer) bool {
	if want.Endpoint != "" && want.Endpoint != have.Endpoint || want.Keepalive != have.Keepalive || len(want.Allowed) != len(have.Allowed) {
		return false
	}
	for _, a := range want.Allowed {
		if !slices.Contains(have.Allowed, a) {
			return false
		}
	}
	return true
}
