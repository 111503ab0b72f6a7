// Command kumo-wg is the WireGuard agent kumo installs on nodes whose
// kernel has no WireGuard (container nodes share the host's kernel, and
// many hosts lack the module): golang.zx2c4.com/wireguard in TUN mode,
// built static (CGO_ENABLED=0) so that one file runs on any Linux node.
//
//	kumo-wg up IFACE [--address A/N] [--port P] [--forward]   run the interface (a service)
//	kumo-wg pubkey IFACE                                      the node's public key
//	kumo-wg sync IFACE < peers                                 make the peers these
//	kumo-wg rejoin IFACE PUBKEY                                handshake with that peer anew
//	kumo-wg show IFACE                                         the interface's state
//
// The private key is made on the node, in /var/lib/kumo/mesh/IFACE.key
// (0600), and never leaves it: pubkey prints only the public half; sync
// and show speak the UAPI protocol over the interface's socket, and
// show leaves the keys out. sync changes only the peers that differ,
// so tunnels to the others stay up, and keeps the list in IFACE.peers,
// which up applies again after a reboot. A peers line:
//
//	peer PUBKEY endpoint=HOST:PORT|- keepalive=SECONDS allowed=CIDR[,CIDR...]
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/crypto/curve25519"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/kumo-dev/kumo/builtins/mesh/uapi"
)

// KeyDir keeps the nodes' private keys and the last peers.
const KeyDir = "/var/lib/kumo/mesh"

// keyDir is KeyDir but in tests.
var keyDir = KeyDir

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kumo-wg:", err)
		var u usage
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usage struct{ error }

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) < 2 || !validIface(args[1]) {
		return usage{errors.New("usage: kumo-wg up|pubkey|set|show IFACE (an interface name of 1 to 15 letters, digits, - and _)")}
	}
	iface := args[1]
	switch args[0] {
	case "up":
		return up(iface, args[2:])
	case "pubkey":
		key, err := privateKey(iface)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(public(key)))
		return nil
	case "sync":
		text, err := io.ReadAll(stdin)
		if err != nil {
			return err
		}
		want, err := uapi.Wanted(string(text))
		if err != nil {
			return usage{err}
		}
		set, removed, err := syncPeers(iface, want)
		if err != nil {
			return err
		}
		// What changed, for kumo to say and act on: a drifted peer set
		// again must call in anew.
		for _, k := range set {
			fmt.Fprintf(stdout, "set %s\n", k)
		}
		fmt.Fprintf(stdout, "synced: %d set, %d removed\n", len(set), removed)
		return writeFileAtomic(filepath.Join(keyDir, iface+".peers"), text, 0o600)
	case "rejoin":
		// The peer PUBKEY lost our session (its side was repaired): drop
		// ours and set it again from the last sync, so that we handshake
		// at once instead of after WireGuard's 15 s without an answer.
		if len(args) != 3 {
			return usage{errors.New("usage: kumo-wg rejoin IFACE PUBKEY")}
		}
		text, err := os.ReadFile(filepath.Join(keyDir, iface+".peers"))
		if err != nil {
			return err
		}
		want, err := uapi.Wanted(string(text))
		if err != nil {
			return err
		}
		if _, ok := want[args[2]]; !ok {
			return nil // not a peer of ours: nothing to do
		}
		if _, err := ask(iface, "set=1\npublic_key="+hexKey(args[2])+"\nremove=true\n\n"); err != nil {
			return err
		}
		_, _, err = syncPeers(iface, want)
		return err
	case "show":
		out, err := ask(iface, "get=1\n\n")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			if !strings.HasPrefix(line, "private_key=") && !strings.HasPrefix(line, "preshared_key=") && line != "" && !strings.HasPrefix(line, "errno=") {
				fmt.Fprintln(stdout, line)
			}
		}
		return nil
	}
	return usage{fmt.Errorf("unknown command %q (have: up, pubkey, sync, rejoin, show)", args[0])}
}

func validIface(s string) bool {
	if s == "" || len(s) > 15 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// privateKey reads the interface's key, making it on first use.
func privateKey(iface string) ([]byte, error) {
	path := filepath.Join(keyDir, iface+".key")
	if b, err := os.ReadFile(path); err == nil {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("%s is not a WireGuard key", path)
		}
		return key, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	// Clamped, as Curve25519 private keys are (RFC 7748).
	key[0] &= 248
	key[31] = key[31]&127 | 64
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, err
	}
	// Made once: two agents racing keep the first key.
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, os.ErrExist) {
		os.Remove(tmp)
		return nil, err
	}
	os.Remove(tmp)
	return privateKey(iface)
}

func public(private []byte) []byte {
	pub, _ := curve25519.X25519(private, curve25519.Basepoint)
	return pub
}

// up runs the interface until SIGTERM or SIGINT: a TUN device, the
// WireGuard device on it with the node's key, and the UAPI socket that
// set and show (and wireguard-tools' wg) speak.
func up(iface string, args []string) error {
	address, port, forward := "", 51820, false
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--forward":
			forward = true
		case args[i] == "--address" && i+1 < len(args):
			address = args[i+1]
			i++
		case args[i] == "--port" && i+1 < len(args):
			p, err := strconv.Atoi(args[i+1])
			if err != nil || p < 1 || p > 65535 {
				return usage{fmt.Errorf("--port %q: want 1 to 65535", args[i+1])}
			}
			port = p
			i++
		default:
			return usage{fmt.Errorf("up: unknown argument %q (have: --address A/N, --port P, --forward)", args[i])}
		}
	}
	if address != "" {
		if _, _, err := net.ParseCIDR(address); err != nil {
			return usage{fmt.Errorf("--address %q: want an address with its prefix, such as 198.19.0.2/16", address)}
		}
	}
	key, err := privateKey(iface)
	if err != nil {
		return err
	}
	tdev, err := tun.CreateTUN(iface, device.DefaultMTU)
	if err != nil {
		return fmt.Errorf("creating TUN %s (the node needs /dev/net/tun): %w", iface, err)
	}
	logger := device.NewLogger(device.LogLevelError, "kumo-wg "+iface+": ")
	dev := device.NewDevice(tdev, conn.NewDefaultBind(), logger)
	defer dev.Close()
	if err := dev.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=%d\n", hex.EncodeToString(key), port)); err != nil {
		return fmt.Errorf("configuring %s: %w", iface, err)
	}
	if err := dev.Up(); err != nil {
		return err
	}
	sockFile, err := ipc.UAPIOpen(iface)
	if err != nil {
		return fmt.Errorf("UAPI socket for %s: %w", iface, err)
	}
	listener, err := ipc.UAPIListen(iface, sockFile)
	if err != nil {
		return fmt.Errorf("UAPI socket for %s: %w", iface, err)
	}
	defer listener.Close()
	go func() {
		for {
			c, err := listener.Accept()
			if err != nil {
				return
			}
			go dev.IpcHandle(c)
		}
	}()
	steps := [][]string{{"ip", "link", "set", iface, "up"}}
	if address != "" {
		steps = append([][]string{{"ip", "address", "replace", address, "dev", iface}}, steps...)
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	if forward {
		// A hub relays between peers that cannot reach each other.
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
			return fmt.Errorf("letting %s forward (a hub relays): %w", iface, err)
		}
	}
	// The peers of the last sync: a rebooted node rejoins by itself.
	if text, err := os.ReadFile(filepath.Join(keyDir, iface+".peers")); err == nil {
		want, err := uapi.Wanted(string(text))
		if err == nil {
			_, _, err = syncPeers(iface, want)
		}
		if err != nil {
			logger.Errorf("applying the saved peers: %v", err)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-dev.Wait():
	}
	return nil
}

// ask sends one request to the running interface and returns its
// answer, failing on a non-zero errno.
func ask(iface, request string) (string, error) {
	c, err := net.Dial("unix", filepath.Join("/var/run/wireguard", iface+".sock"))
	if err != nil {
		return "", fmt.Errorf("%s is not running (kumo-wg up %s): %w", iface, iface, err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, request); err != nil {
		return "", err
	}
	var b strings.Builder
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		if n, ok := strings.CutPrefix(line, "errno="); ok && n != "0" {
			return b.String(), fmt.Errorf("%s refused the configuration (errno %s)", iface, n)
		}
		b.WriteString(line + "\n")
	}
	return b.String(), sc.Err()
}

// syncPeers makes the interface's peers want: peers it has that want
// lacks are removed, and only the peers whose settings differ are set,
// so that the sessions of the others go on.
func syncPeers(iface string, want map[string]uapi.Peer) (set []string, removed int, err error) {
	dump, err := ask(iface, "get=1\n\n")
	if err != nil {
		return nil, 0, err
	}
	have := uapi.Peers(dump)
	var b strings.Builder
	for key := range have {
		if _, ok := want[key]; !ok {
			fmt.Fprintf(&b, "public_key=%s\nremove=true\n", hexKey(key))
			removed++
		}
	}
	for key, w := range want {
		h, ok := have[key]
		if ok && uapi.Unchanged(w, h) {
			continue
		}
		set = append(set, key)
		fmt.Fprintf(&b, "public_key=%s\n", hexKey(key))
		if w.Endpoint != "" {
			fmt.Fprintf(&b, "endpoint=%s\n", w.Endpoint)
		}
		fmt.Fprintf(&b, "persistent_keepalive_interval=%d\nreplace_allowed_ips=true\n", w.Keepalive)
		for _, a := range w.Allowed {
			fmt.Fprintf(&b, "allowed_ip=%s\n", a)
		}
	}
	if b.Len() == 0 {
		return nil, 0, nil
	}
	_, err = ask(iface, "set=1\n"+b.String()+"\n")
	return set, removed, err
}

func hexKey(b64 string) string {
	b, _ := base64.StdEncoding.DecodeString(b64)
	return hex.EncodeToString(b)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
