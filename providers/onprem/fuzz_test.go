package onprem

import (
	"strings"
	"testing"
)

// FuzzInventory: an inventory either is refused with a message naming
// the file, or every host in it is reachable as kumo will reach it: a
// name of its own, one address:port of its own, a port in range, and a
// jump host that exists, is another host and needs no jump itself.
func FuzzInventory(f *testing.F) {
	for _, s := range []string{
		"hosts:\n  - name: h1\n    address: 10.1.0.5\n",
		"hosts:\n  - name: b\n    address: b.example\n  - name: h\n    address: 10.0.0.2\n    port: 2222\n    user: admin\n    key: ~/.ssh/id\n    jump: b\n    labels: {flavor: small, rack: a}\n",
		"hosts:\n  - name: h\n    address: x\n    jump: h\n",
		"hosts:\n  - name: a\n    address: x\n    jump: b\n  - name: b\n    address: y\n    jump: a\n",
		"hosts:\n  - name: a\n    address: x\n  - name: b\n    address: x\n",
		"hosts:\n  - name: a\n    address: x\n    port: 70000\n",
		"hosts:\n  -\n",
		"hosts: {}\n",
		"hosts:\n  - name: a\n    address: x\n    power_off: ipmitool power off\n    power_on: ipmitool power on\n",
		"- just a list\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		inv, err := ParseInventory("inv.yaml", []byte(text))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "onprem inventory inv.yaml: ") {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		names, ids := map[string]bool{}, map[string]bool{}
		for _, h := range inv.Hosts {
			switch {
			case h.Name == "" || names[h.Name]:
				t.Fatalf("host name %q is empty or taken", h.Name)
			case ids[h.ID()]:
				t.Fatalf("two hosts are %s", h.ID())
			case h.Port < 1 || h.Port > 65535:
				t.Fatalf("host %s has port %d", h.Name, h.Port)
			case h.Address == "":
				t.Fatalf("host %s has no address", h.Name)
			}
			names[h.Name], ids[h.ID()] = true, true
			if inv.byID(h.ID()) != h || inv.Host(h.Name) != h {
				t.Fatalf("host %s is not found by its name or id", h.Name)
			}
		}
		for _, h := range inv.Hosts {
			if h.Jump == "" {
				continue
			}
			j := inv.Host(h.Jump)
			if j == nil || j == h || j.Jump != "" {
				t.Fatalf("host %s jumps through %q, which cannot be used", h.Name, h.Jump)
			}
		}
		for _, h := range inv.Hosts {
			inv.matching(h.Labels["flavor"], h.Labels)
		}
	})
}
