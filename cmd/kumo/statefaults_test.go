package main

import (
	"crypto/sha256"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const bigRecipe = `# %% Small
print("small")

# %% Big
for i in range(20000):
    print("line %d " % i + "y" * 200)

# %% Last
print("done")
`

// TestStateFaults: the state's disk fills up, then turns read-only, and
// the state file is truncated or overwritten. Each gives a clear error;
// a full or read-only state stays sound and the same command resumes
// once the cause is gone; a damaged one is refused and left untouched.
func TestStateFaults(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk")
	os.Mkdir(disk, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { syscall.Unmount(disk, syscall.MNT_DETACH) })
	remount := func(opts string) {
		if out, err := exec.Command("mount", "-o", "remount,"+opts, disk).CombinedOutput(); err != nil {
			t.Fatalf("remount %s: %v %s", opts, err, out)
		}
	}
	os.WriteFile(filepath.Join(dir, "big.star"), []byte(bigRecipe), 0o644)
	db := filepath.Join(disk, "state.db")
	kumo := func(args ...string) (string, int) {
		cmd := exec.Command("kumo", append(args, "--state", db)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+dir, "NO_COLOR=1")
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	sound := func() {
		t.Helper()
		conn, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var check string
		if err := conn.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Fatalf("the state is not sound: %s %v", check, err)
		}
	}

	// Full: SQLite reports SQLITE_FULL; kumo says what to do.
	out, code := kumo("run", "big.star", "-q")
	if code != 1 || !strings.Contains(out, "its disk is full: free space there") {
		t.Fatalf("a run on a full disk: exit %d\n%s", code, out)
	}
	sound()
	remount("size=20m")
	out, code = kumo("run", "big.star", "-q")
	if code != 0 || !strings.Contains(out, "↺ [0] Small (replayed)") || !strings.Contains(out, "done") {
		t.Fatalf("resuming once there is room: exit %d\n%s", code, out)
	}

	// Read-only: refused before anything runs; nothing changes.
	remount("ro")
	before := fileSum(t, db)
	out, code = kumo("run", "big.star", "-q")
	if code == 0 || !strings.Contains(out, "cannot be written: make it and its folder writable") {
		t.Fatalf("a run on a read-only state: exit %d\n%s", code, out)
	}
	if fileSum(t, db) != before {
		t.Fatal("the read-only state changed")
	}
	remount("rw")
	if out, code = kumo("run", "big.star", "-q"); code != 0 || !strings.Contains(out, "3 replayed") {
		t.Fatalf("after the state is writable again: exit %d\n%s", code, out)
	}

	// Damaged: truncated, then garbage. Refused with exit 2, never written.
	conn, _ := sql.Open("sqlite3", "file:"+db)
	conn.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	conn.Close()
	st, _ := os.Stat(db)
	for name, damage := range map[string]func(){
		"truncated": func() { os.Truncate(db, st.Size()/2) },
		"garbage":   func() { os.WriteFile(db, []byte(strings.Repeat("not a database\n", 400)), 0o600) },
	} {
		damage()
		before := fileSum(t, db)
		for _, args := range [][]string{{"run", "big.star"}, {"status"}, {"destroy", "--all", "--yes"}} {
			out, code := kumo(args...)
			if code != 2 || !strings.Contains(out, "is damaged") || !strings.Contains(out, "kumo will not write to it") {
				t.Errorf("%s state, kumo %s: exit %d\n%s", name, args[0], code, out)
			}
		}
		if fileSum(t, db) != before {
			t.Errorf("the %s state was written to", name)
		}
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
