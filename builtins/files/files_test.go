package files

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/ssh/sshdtest"
	"github.com/kumo-dev/kumo/state"
	_ "github.com/kumo-dev/kumo/state/sqlite" // the state files are SQLite
)

// The tests that wait on OpenSSH servers run in parallel: one HOME for
// the process, whose known_hosts pins each test's servers.
func TestMain(m *testing.M) { os.Exit(sshdtest.RunWithHome(m)) }

// TestOneGiBRoundTrip sends a 1 GiB file to a real OpenSSH server over
// SFTP and back, and checks that it arrives intact and that neither
// direction held it in memory.
func TestOneGiBRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2 GiB through sshd (20 s): make test runs it")
	}
	const size = 1 << 30
	dir := t.TempDir()
	env, ep, s := testHost(t, sshdtest.Config{})

	// A file of pseudo-random bytes, written and hashed as a stream.
	src := filepath.Join(dir, "big.bin")
	f, _ := os.Create(src)
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	rng := rand.New(rand.NewSource(1))
	buf := make([]byte, 1<<20)
	for written := 0; written < size; written += len(buf) {
		rng.Read(buf)
		w.Write(buf)
	}
	w.Flush()
	f.Close()
	want := h.Sum(nil)

	before := maxRSS()
	remote := filepath.Join(s.Dir, "big.bin")
	err := Upload(context.Background(), env, ep, remote, func() (io.ReadCloser, error) { return os.Open(src) }, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(remote); err != nil || st.Size() != size || st.Mode().Perm() != 0o640 {
		t.Fatalf("remote file: %v %v", st, err)
	}
	os.Remove(src)
	back := filepath.Join(dir, "back.bin")
	out, _ := os.Create(back)
	hb := sha256.New()
	if err := Download(context.Background(), env, ep, remote, io.MultiWriter(out, hb)); err != nil {
		t.Fatal(err)
	}
	out.Close()
	if got := hb.Sum(nil); string(got) != string(want) {
		t.Fatalf("checksum mismatch after the round trip")
	}
	if st, _ := os.Stat(back); st.Size() != size {
		t.Fatalf("came back with %d bytes", st.Size())
	}
	if grew := maxRSS() - before; grew > 128<<20 {
		t.Errorf("peak memory grew by %d MiB moving 1 GiB each way: the file was buffered", grew>>20)
	}
	t.Logf("peak RSS before %d MiB, after %d MiB", before>>20, maxRSS()>>20)
}

// maxRSS is this process's peak resident memory, in bytes.
func maxRSS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss << 10
}

// testHost starts a real sshd for a test (cfg, with the test's client
// key authorized) and returns the env of a run whose known_hosts pins
// the server, and the server's endpoint.
func testHost(t *testing.T, cfg sshdtest.Config) (*builtins.Env, builtins.Endpoint, *sshdtest.Server) {
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	pub, err := sshdtest.ClientKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AuthorizedKeys = append(cfg.AuthorizedKeys, pub)
	s, err := sshdtest.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	sshdtest.KnowHost(t, s.KnownHostsLine())
	store, err := state.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	env := &builtins.Env{Run: "t", Store: store, Secrets: &builtins.Masker{}}
	t.Cleanup(func() {
		env.Close()
		store.Close()
	})
	ep := builtins.Endpoint{Label: "h", Host: "127.0.0.1", Port: s.Port, User: s.User, KeyFile: key, PinTarget: "addr:" + s.Addr}
	return env, ep, s
}

// notes keeps what a run prints.
type notes struct {
	mu    sync.Mutex
	lines []string
}

func (n *notes) Line(source, stream, text string) {}
func (n *notes) Status(text string)               {}
func (n *notes) Note(text string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lines = append(n.lines, text)
}

// TestTransferWithoutSFTP moves files to and from OpenSSH servers that
// have no SFTP (no subsystem; a subsystem whose program is missing):
// kumo falls back to exec channels, keeps mode and content, leaves no
// temporary file behind, and says so when verbose.
func TestTransferWithoutSFTP(t *testing.T) {
	t.Parallel()
	for name, extra := range map[string]string{
		"no subsystem":    "",
		"missing program": "Subsystem sftp /nonexistent/sftp-server",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out := &notes{}
			env, ep, s := testHost(t, sshdtest.Config{NoSFTP: true, Extra: extra})
			env.Out, env.Verbose = out, true
			ctx := context.Background()

			// 3 MiB of every byte value, into a folder that does not exist yet.
			content := make([]byte, 3<<20)
			rand.New(rand.NewSource(2)).Read(content)
			remote := filepath.Join(s.Dir, "sub dir", "it's $(here).bin")
			open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil }
			if err := Upload(ctx, env, ep, remote, open, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(remote)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("remote file differs (%d bytes, %v)", len(got), err)
			}
			if st, _ := os.Stat(remote); st.Mode().Perm() != 0o600 {
				t.Errorf("remote mode %v, want 0600", st.Mode().Perm())
			}
			// Again, over the file: replaced whole, mode changed.
			content = content[:1000]
			if err := Upload(ctx, env, ep, remote, open, 0o640); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(remote); !bytes.Equal(got, content) {
				t.Fatalf("second upload: remote file has %d bytes", len(got))
			}
			if st, _ := os.Stat(remote); st.Mode().Perm() != 0o640 {
				t.Errorf("remote mode %v, want 0640", st.Mode().Perm())
			}
			var back bytes.Buffer
			if err := Download(ctx, env, ep, remote, &back); err != nil || !bytes.Equal(back.Bytes(), content) {
				t.Fatalf("download: %d bytes, %v", back.Len(), err)
			}
			if entries, _ := os.ReadDir(filepath.Dir(remote)); len(entries) != 1 {
				t.Errorf("the folder holds %d entries, want only the file (no temporary left)", len(entries))
			}

			// Failures say what the host said and leave nothing behind.
			err = Download(ctx, env, ep, filepath.Join(s.Dir, "missing"), &back)
			if err == nil || !strings.Contains(err.Error(), "No such file or directory") {
				t.Errorf("download of a missing file: %v", err)
			}
			err = Upload(ctx, env, ep, "/proc/kumo-cannot/x", open, 0o644)
			if err == nil || !strings.Contains(err.Error(), "mkdir") {
				t.Errorf("upload where it cannot write: %v", err)
			}

			// Verbose says which transfer each took, asking about SFTP once.
			var exec, sftpLines int
			for _, l := range out.lines {
				switch {
				case strings.Contains(l, "over an exec channel") && strings.Contains(l, "no SFTP"):
					exec++
				case strings.Contains(l, "over SFTP"):
					sftpLines++
				}
			}
			if exec != 5 || sftpLines != 0 {
				t.Errorf("verbose notes: %d exec, %d SFTP, want 5 and 0:\n%s", exec, sftpLines, strings.Join(out.lines, "\n"))
			}
		})
	}
}

// TestUploadChangedSkipsWhatIsThere: the same content and mode again is
// not written (the file keeps its inode and time), another content or
// mode is; a host without SFTP checks the same way.
func TestUploadChangedSkipsWhatIsThere(t *testing.T) {
	t.Parallel()
	for _, noSFTP := range []bool{false, true} {
		env, ep, s := testHost(t, sshdtest.Config{NoSFTP: noSFTP})
		ctx := context.Background()
		remote := filepath.Join(s.Dir, "conf", "app.ini")
		put := func(text string, mode os.FileMode) bool {
			t.Helper()
			sum := sha256.Sum256([]byte(text))
			open := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(text)), nil }
			changed, err := UploadChanged(ctx, env, ep, remote, open, hex.EncodeToString(sum[:]), mode)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(remote); string(got) != text {
				t.Fatalf("the file holds %q, want %q", got, text)
			}
			return changed
		}
		inode := func() uint64 {
			st, err := os.Stat(remote)
			if err != nil {
				t.Fatal(err)
			}
			return st.Sys().(*syscall.Stat_t).Ino
		}
		if !put("port = 80\n", 0o644) {
			t.Errorf("sftp=%v: a new file: not written", !noSFTP)
		}
		before := inode()
		if put("port = 80\n", 0o644) || inode() != before {
			t.Errorf("sftp=%v: the same content again was written", !noSFTP)
		}
		if !put("port = 8080\n", 0o644) {
			t.Errorf("sftp=%v: another content: not written", !noSFTP)
		}
		if !put("port = 8080\n", 0o600) {
			t.Errorf("sftp=%v: another mode: not written", !noSFTP)
		}
		if st, _ := os.Stat(remote); st.Mode().Perm() != 0o600 {
			t.Errorf("sftp=%v: mode %v", !noSFTP, st.Mode().Perm())
		}
	}
}
