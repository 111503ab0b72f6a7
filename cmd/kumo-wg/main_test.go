package main

import (
	"strings"
	"testing"

	"github.com/kumo-dev/kumo/builtins/mesh/uapi"
)

func TestParsePeers(t *testing.T) {
	key := strings.Repeat("A", 43) + "="
	got, err := uapi.Wanted("# a comment\npeer " + key + " endpoint=198.18.1.2:51820 keepalive=25 allowed=198.19.192.1/32,198.19.192.5/32\n\n")
	if err != nil {
		t.Fatal(err)
	}
	p := got[key]
	if p.Endpoint != "198.18.1.2:51820" || p.Keepalive != 25 || strings.Join(p.Allowed, ",") != "198.19.192.1/32,198.19.192.5/32" {
		t.Errorf("parsed %+v", p)
	}
	if got, _ := uapi.Wanted("peer " + key + " endpoint=- keepalive=0 allowed=198.19.192.3/32"); got[key].Endpoint != "" {
		t.Errorf("endpoint=- parsed as %q", got[key].Endpoint)
	}
	for text, want := range map[string]string{
		"peer nokey endpoint=- keepalive=0 allowed=198.19.192.3/32":        "is not a public key",
		"peer " + key + " endpoint=nowhere keepalive=0 allowed=1.2.3.4/32": "endpoint \"nowhere\"",
		"peer " + key + " keepalive=-1":                                    "keepalive \"-1\"",
		"peer " + key + " allowed=1.2.3.4":                                 "allowed \"1.2.3.4\"",
		"peer " + key + " colour=blue":                                     "unknown field \"colour\"",
		"node " + key:                                                      "peers line 1: want: peer PUBKEY",
	} {
		if _, err := uapi.Wanted(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Wanted(%q) = %v, want %q", text, err, want)
		}
	}
}

func TestKeysAreClampedAndStable(t *testing.T) {
	dir := t.TempDir()
	old := keyDir
	keyDir = dir
	defer func() { keyDir = old }()
	k1, err := privateKey("wg-t")
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := privateKey("wg-t")
	if string(k1) != string(k2) || k1[0]&7 != 0 || k1[31]&128 != 0 || k1[31]&64 == 0 {
		t.Errorf("keys %x then %x: want one clamped key", k1, k2)
	}
	if len(public(k1)) != 32 {
		t.Errorf("public key of %d bytes", len(public(k1)))
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"up"}, {"up", "bad name!"}, {"fly", "wg0"}, {"up", "wg0", "--port", "0"}} {
		var u usage
		if err := run(args, strings.NewReader(""), &strings.Builder{}); err == nil || !asUsage(err, &u) {
			t.Errorf("kumo-wg %v: %v, want a usage error", args, err)
		}
	}
}

func asUsage(err error, u *usage) bool {
	x, ok := err.(usage)
	*u = x
	return ok
}
