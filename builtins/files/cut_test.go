package files

import (
	"bytes"
	"context"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	kssh "github.com/kumo-dev/kumo/builtins/ssh"
	"github.com/kumo-dev/kumo/builtins/ssh/sshdtest"
)

// cutProxy forwards TCP connections to a server and cuts each one (both
// ends closed, as a dropped link or a restarted NAT does) once cutAfter
// bytes have passed, when cutAfter > 0.
type cutProxy struct {
	ln       net.Listener
	target   string
	cutAfter atomic.Int64
	cuts     atomic.Int64
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *cutProxy) serve(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	var passed atomic.Int64
	var once sync.Once
	cut := func() {
		once.Do(func() {
			client.Close()
			server.Close()
		})
	}
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 4096)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if limit := p.cutAfter.Load(); passed.Add(int64(n)) > limit && limit > 0 {
					p.cuts.Add(1)
					cut()
					return
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		cut()
	}
	go pipe(server, client)
	pipe(client, server)
}

// TestConnectionCutMidTransfer cuts the SSH connection at seeded random
// points while files go up and commands run: each cut is a clear error,
// the destination never holds a partial file under its name, and the
// next call, on a working link, re-dials and succeeds. Both transfers
// are cut: SFTP, and exec channels on a host without SFTP.
func TestConnectionCutMidTransfer(t *testing.T) {
	t.Parallel()
	for _, noSFTP := range []bool{false, true} {
		name := "sftp"
		if noSFTP {
			name = "exec"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			connectionCuts(t, noSFTP)
		})
	}
}

func connectionCuts(t *testing.T, noSFTP bool) {
	env, ep, s := testHost(t, sshdtest.Config{NoSFTP: noSFTP})
	proxy := startCutProxy(t, s.Addr)
	port := proxy.ln.Addr().(*net.TCPAddr).Port
	// Through the proxy, pinned for its address: the host key is the server's.
	known := strings.Replace(s.KnownHostsLine(), "]:"+itoa(s.Port)+" ", "]:"+itoa(port)+" ", 1)
	sshdtest.KnowHost(t, known)
	ep.Port, ep.PinTarget = port, "addr:127.0.0.1:"+itoa(port)
	ctx := context.Background()
	pool := kssh.PoolOf(env)

	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	content := make([]byte, 2<<20)
	rng.Read(content)
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil }
	failed, rounds := 0, 12
	if testing.Short() {
		rounds = 2 // make test cuts twelve times
	}
	for i := 0; i < rounds; i++ {
		dest := filepath.Join(s.Dir, "f"+itoa(i))
		// Cut somewhere in the handshake, the command or the transfer.
		proxy.cutAfter.Store(1000 + rng.Int63n(int64(len(content))))
		pool.Drop(ep) // a fresh connection, through the cutting proxy
		err := Upload(ctx, env, ep, dest, open, 0o644)
		if err != nil {
			failed++
			t.Logf("cut %d: %v", i, err)
			if got, rerr := os.ReadFile(dest); rerr == nil && !bytes.Equal(got, content) {
				t.Fatalf("cut %d: %s holds %d bytes of %d after a failed transfer", i, dest, len(got), len(content))
			}
		}
		_, xerr := pool.Exec(ctx, ep, kssh.Command{Cmd: "sleep 0.2; echo done"})
		if xerr != nil && !strings.HasPrefix(xerr.Error(), "h") {
			t.Errorf("cut %d: a command's error does not name the node: %v", i, xerr)
		}

		// The link works again: the same calls succeed on a new connection.
		proxy.cutAfter.Store(0)
		if err := Upload(ctx, env, ep, dest, open, 0o644); err != nil {
			t.Fatalf("cut %d: after the link came back: %v", i, err)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, content) {
			t.Fatalf("cut %d: the file is not whole after a good transfer", i)
		}
		out, err := pool.Exec(ctx, ep, kssh.Command{Cmd: "echo done"})
		if err != nil || strings.TrimSpace(out.Stdout) != "done" {
			t.Fatalf("cut %d: a command after the link came back: %q %v", i, out.Stdout, err)
		}
	}
	if failed == 0 || proxy.cuts.Load() == 0 {
		t.Fatalf("no transfer was cut (%d cuts): the proxy does not work", proxy.cuts.Load())
	}
	t.Logf("%d of %d transfers cut mid-way, %d connections cut in all; each failed cleanly and the next call succeeded", failed, rounds, proxy.cuts.Load())
}

func itoa(n int) string { return strconv.Itoa(n) }
