package uapi

import (
	"strings"
	"testing"
)

// The interface's own lines are not a peer's; a line after a key that is
// not one belongs to no peer.
func TestPeers(t *testing.T) {
	dump := "private_key=" + strings.Repeat("11", 32) + "\nlisten_port=51820\n" +
		"public_key=" + strings.Repeat("ab", 32) + "\nendpoint=198.18.1.2:51820\npersistent_keepalive_interval=25\nlast_handshake_time_sec=0\nallowed_ip=198.19.192.1/32\n" +
		"public_key=zz\nendpoint=198.18.9.9:1\n" +
		"public_key=" + strings.Repeat("cd", 32) + "\nlast_handshake_time_sec=1700000000\n"
	got := Peers(dump)
	if len(got) != 2 {
		t.Fatalf("peers %v, want 2", got)
	}
	for _, p := range got {
		switch p.Endpoint {
		case "198.18.1.2:51820":
			if p.Keepalive != 25 || !p.Handshake.IsZero() || len(p.Allowed) != 1 {
				t.Errorf("first peer %+v", p)
			}
		case "":
			if p.Handshake.Unix() != 1700000000 {
				t.Errorf("second peer %+v", p)
			}
		default:
			t.Errorf("a peer %+v took lines of a bad key", p)
		}
	}
}
