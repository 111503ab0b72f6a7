package local

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// Every local node gets an address of its own in 127.0.0.0/8, which Linux
// routes to the loopback interface as a whole: find_ip_addresses()
// returns distinct addresses, ssh_run("127.77.3.9", ...) reaches one node
// as it would a cloud VM by its IP, and two nodes can each serve on port
// 80 of their own address. Addresses come from 127.64.0.0/10, clear of
// 127.0.0.1 and of the 127.0.1.1 Debian gives the host's name.
var addressRange = struct {
	base net.IP
	size uint32
}{net.IPv4(127, 64, 0, 0).To4(), 1 << 22}

// pickAddress derives the node's address from its token, stepping on
// past any address another node under the provider's folder has or that
// something on the host listens on.
func (p *Provider) pickAddress(token string) string {
	taken := p.usedAddresses()
	for k := 0; k < 64; k++ {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", token, k)))
		n := binary.BigEndian.Uint32(sum[:4]) % addressRange.size
		if n == 0 || n == addressRange.size-1 {
			continue
		}
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, binary.BigEndian.Uint32(addressRange.base)+n)
		if !taken[ip.String()] {
			return ip.String()
		}
	}
	return "127.0.0.1"
}

// usedAddresses are the addresses of the provider's nodes and those with
// a listening TCP socket on the host.
func (p *Provider) usedAddresses() map[string]bool {
	used := listening()
	entries, _ := os.ReadDir(p.Dir)
	for _, e := range entries {
		if m, err := readMeta(filepath.Join(p.Dir, e.Name())); err == nil && m.IP != "" {
			used[m.IP] = true
		}
	}
	return used
}

// listening reads /proc/net/tcp for the IPv4 addresses that have a socket
// in LISTEN state.
func listening() map[string]bool {
	out := map[string]bool{}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != "0A" { // 0A: LISTEN
			continue
		}
		hexAddr, _, _ := strings.Cut(fields[1], ":")
		var a uint32
		if _, err := fmt.Sscanf(hexAddr, "%08X", &a); err != nil {
			continue
		}
		// The kernel prints the address as a little-endian word.
		ip := net.IPv4(byte(a), byte(a>>8), byte(a>>16), byte(a>>24))
		out[ip.String()] = true
	}
	return out
}
