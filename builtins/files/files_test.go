package files

import (
	"bufio"
	"context"
	"crypto/sha256"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/kumo-dev/kumo/builtins"
	kssh "github.com/kumo-dev/kumo/builtins/ssh"
	"github.com/kumo-dev/kumo/builtins/ssh/sshdtest"
	"github.com/kumo-dev/kumo/lang/state"
)

// TestOneGiBRoundTrip sends a 1 GiB file to a real OpenSSH server over
// SFTP and back, and checks that it arrives intact and that neither
// direction held it in memory.
func TestOneGiBRoundTrip(t *testing.T) {
	const size = 1 << 30
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	t.Setenv("HOME", home)
	key := filepath.Join(dir, "id")
	pub, err := sshdtest.ClientKey(key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sshdtest.Start(sshdtest.Config{AuthorizedKeys: []string{pub}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), []byte(s.KnownHostsLine()+"\n"), 0o600)
	store, err := state.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	env := &builtins.Env{Run: "t", Store: store}
	defer env.Close()
	pool := kssh.PoolOf(env)
	ep := builtins.Endpoint{Label: "h", Host: "127.0.0.1", Port: s.Port, User: s.User, KeyFile: key, PinTarget: "addr:" + s.Addr}

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
	err = Upload(context.Background(), pool, ep, remote, func() (io.ReadCloser, error) { return os.Open(src) }, 0o640)
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
	if err := Download(context.Background(), pool, ep, remote, io.MultiWriter(out, hb)); err != nil {
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
