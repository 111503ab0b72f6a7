package sshdtest

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// RunWithHome runs m's tests with a HOME of the process's own: an empty
// ~/.ssh (no key a login could fall back on) and no SSH agent. Tests that
// each start servers can then run in parallel, which t.Setenv("HOME")
// rules out; each pins its servers with KnowHost (they listen on ports of
// their own, so their lines never clash). Call it from TestMain.
func RunWithHome(m *testing.M) int {
	home, err := os.MkdirTemp("", "kumo-sshdtest-home-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(home)
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.Setenv("HOME", home)
	os.Setenv("SSH_AUTH_SOCK", "")
	return m.Run()
}

var knownHostsMu sync.Mutex

// KnowHost adds line to ~/.ssh/known_hosts; parallel tests may call it.
func KnowHost(t testing.TB, line string) {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	f, err := os.OpenFile(filepath.Join(os.Getenv("HOME"), ".ssh", "known_hosts"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
}
