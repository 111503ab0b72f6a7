package container

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"testing"

	"github.com/vishvananda/netns"
)

// A kumo killed between making a site's bridge and giving it its address
// left it down and bare: the next ensureBridge must make it whole, or the
// host sends what it means for the nodes to its default route (the crash
// harness saw "ssh: handshake failed: EOF" for ten minutes).
func TestEnsureBridgeMendsAHalfMadeBridge(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("making bridges needs root")
	}
	// In a network namespace of the test's own: the host's is not touched.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	host, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	own, err := netns.New()
	if err != nil {
		t.Skipf("no network namespace of our own: %v", err)
	}
	defer func() { netns.Set(host); own.Close() }()

	for _, n := range []*network{
		{Key: "sitekey", Bridge: "kbsitekey", Subnet: netip.MustParsePrefix("198.19.77.0/24")},
		{Key: internetKey, Bridge: "kbinternet", Subnet: netip.MustParsePrefix("198.19.78.0/24")},
	} {
		// What a kill right after `ip link add` leaves.
		if out, err := exec.Command("ip", "link", "add", n.Bridge, "type", "bridge").CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if err := ensureBridge(n); err != nil {
			t.Fatal(err)
		}
		iface, err := net.InterfaceByName(n.Bridge)
		if err != nil {
			t.Fatal(err)
		}
		if iface.Flags&net.FlagUp == 0 {
			t.Errorf("%s is still down", n.Bridge)
		}
		addrs, _ := iface.Addrs()
		var got []string
		for _, a := range addrs {
			got = append(got, a.String())
		}
		want := netip.PrefixFrom(n.hostAddress(), n.Subnet.Bits()).String()
		if !slices.Contains(got, want) {
			t.Errorf("%s has %v, not the host's address %s", n.Bridge, got, want)
		}
		// Again, on a whole bridge: nothing changes, nothing fails.
		if err := ensureBridge(n); err != nil {
			t.Errorf("a second ensureBridge: %v", err)
		}
	}
}
