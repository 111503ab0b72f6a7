// Package uapi reads what a WireGuard interface says of its peers in the
// cross-platform userspace API's "get" answer (wireguard.com/xplatform),
// which kumo-wg's show prints and mesh() reads back.
package uapi

import (
	"encoding/base64"
	"encoding/hex"
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
