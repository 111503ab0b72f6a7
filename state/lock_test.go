package state

import (
	"bufio"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// holdInAnotherProcess starts a test binary that takes run's lock in the
// state at location and waits; it is killed when the test ends.
func holdInAnotherProcess(t *testing.T, location, run string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), env...), "KUMO_TEST_HOLD_LOCK="+location+":"+run)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("holder said %q", line)
	}
	return cmd
}

// While a run is locked on PostgreSQL, writes go through the lock's own
// session: when that session ends, the next write is refused as a lost
// lock (not written through another connection), and stays refused,
// while another process can take the run at once.
func TestPostgresWritesGoThroughTheLocksSession(t *testing.T) {
	t.Parallel()
	s := openPostgres(t)
	l, err := s.LockRun("r")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if err := s.StartRun("r", "/r.star", nil); err != nil {
		t.Fatal(err)
	}
	backend, err := s.lockBackend("r")
	if err != nil || backend == 0 {
		t.Fatalf("lock backend = %d, %v", backend, err)
	}
	other := openPostgresAt(t, pgLocation(t, s))
	// Waits until the session has ended (it ends on a signal, and the
	// lock goes with it).
	var ended bool
	if err := other.DB.DB.QueryRow(`SELECT pg_terminate_backend($1, 10000)`, backend).Scan(&ended); err != nil || !ended {
		t.Fatalf("ending session %d: %v, %v", backend, ended, err)
	}
	for _, write := range []func() error{
		func() error { return s.AppendCall("r", Call{Cell: 1, Seq: 1, Builtin: "b", Args: "b()", Result: "{}"}) },
		func() error { return s.StartCell("r", &CellRecord{Index: 0, Title: "x"}) },
		func() error { return s.FinishRun("r", RunOK) },
	} {
		var lost *LostLockError
		if err := write(); !errors.As(err, &lost) || lost.Run != "r" {
			t.Errorf("a write after the lock's session ended = %v, want a LostLockError", err)
		}
	}
	if calls, _ := other.Calls("r", 1); len(calls) != 0 {
		t.Errorf("a write landed after the lock was lost: %+v", calls)
	}
	if r, _, _ := other.GetRun("r"); r.Status != RunRunning {
		t.Errorf("run status = %q after the lock was lost, want it left running", r.Status)
	}
	l2, err := other.LockRun("r")
	if err != nil {
		t.Fatalf("the run is not free once its holder's session ended: %v", err)
	}
	l2.Unlock()
	if err := l.Unlock(); err != nil {
		t.Errorf("unlocking a lost lock: %v", err)
	}
	// Unlocked, the store writes through its pool again.
	if err := s.FinishRun("r", RunFailed); err != nil {
		t.Errorf("a write after unlocking: %v", err)
	}
}

// Locks on one store share its session: a group lock taken beside the
// run's lock ends with it, and writes leave the session with the last.
func TestPostgresLocksShareOneSession(t *testing.T) {
	s := openPostgres(t)
	a, err := s.LockRun("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.LockRun("b")
	if err != nil {
		t.Fatal(err)
	}
	pa, _ := s.lockBackend("a")
	pb, _ := s.lockBackend("b")
	if pa == 0 || pa != pb {
		t.Errorf("runs a and b are locked on sessions %d and %d, want one", pa, pb)
	}
	if _, err := s.LockRun("a"); err == nil {
		t.Error("one process took run a twice")
	}
	a.Unlock()
	if p, _ := s.lockBackend("a"); p != 0 {
		t.Error("run a still held after Unlock")
	}
	if p, _ := s.lockBackend("b"); p != pb {
		t.Error("unlocking a let go of b")
	}
	b.Unlock()
	if s.pgSess != nil || s.DB.session.Load() != nil {
		t.Error("the session outlives its last lock")
	}
}

// kumo unlock's rules: nothing to do for a free run; refused while the
// holder is alive (SQLite: always, the kernel frees a dead one's lock;
// PostgreSQL: while it beats); a PostgreSQL holder stopped long enough
// to miss six heartbeats has its session ended.
func TestBreakLock(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		s := openTemp(t)
		if _, err := s.BreakLock("r"); !errors.Is(err, ErrNotLocked) {
			t.Errorf("BreakLock of a free run = %v", err)
		}
		holder := holdInAnotherProcess(t, s.Path, "r")
		var alive *HolderAliveError
		if _, err := s.BreakLock("r"); !errors.As(err, &alive) || strings.Contains(err.Error(), "stopped") {
			t.Errorf("BreakLock of a running holder = %v", err)
		}
		holder.Process.Signal(syscall.SIGSTOP)
		defer holder.Process.Signal(syscall.SIGCONT)
		waitStopped(t, holder.Process.Pid)
		if _, err := s.BreakLock("r"); !errors.As(err, &alive) || !strings.Contains(err.Error(), "stopped") {
			t.Errorf("BreakLock of a stopped holder = %v, want it refused saying it is stopped", err)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		s := openPostgres(t)
		if _, err := s.BreakLock("r"); !errors.Is(err, ErrNotLocked) {
			t.Errorf("BreakLock of a free run = %v", err)
		}
		holder := holdInAnotherProcess(t, pgLocation(t, s), "r", "KUMO_HEARTBEAT_EVERY=100ms")
		time.Sleep(300 * time.Millisecond)
		var alive *HolderAliveError
		if _, err := s.BreakLock("r"); !errors.As(err, &alive) || !strings.Contains(err.Error(), "heard from") {
			t.Fatalf("BreakLock of a live holder = %v", err)
		}
		holder.Process.Signal(syscall.SIGSTOP)
		defer holder.Process.Signal(syscall.SIGCONT)
		time.Sleep(staleAfter(100*time.Millisecond) + 300*time.Millisecond)
		_, err := s.LockRun("r")
		var locked *LockedError
		if !errors.As(err, &locked) || !strings.Contains(err.Error(), "kumo unlock r") {
			t.Errorf("LockRun of a silent holder's run = %v, want the kumo unlock hint", err)
		}
		what, err := s.BreakLock("r")
		if err != nil || !strings.Contains(what, "has not been heard from for") {
			t.Fatalf("BreakLock of a silent holder = %q, %v", what, err)
		}
		l, err := s.LockRun("r")
		if err != nil {
			t.Fatalf("the run is not free after unlock: %v", err)
		}
		l.Unlock()
	})
}

func waitStopped(t *testing.T, pid int) {
	for deadline := time.Now().Add(5 * time.Second); !processStopped(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not stop", pid)
		}
	}
}

func openPostgresAt(t *testing.T, location string) *Store {
	t.Helper()
	s, err := OpenPostgres(location, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A state of every older version is brought to this one: SQLite files
// from version 3 on (version 1 has its own test) and PostgreSQL
// environments from 6 on, with their rows kept.
func TestMigratesOlderSchemas(t *testing.T) {
	t.Parallel()
	for v := 3; v < schemaVersion; v++ {
		path := filepath.Join(t.TempDir(), "state.db")
		db, err := sql.Open("sqlite3", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{createTables(false, v), `PRAGMA user_version = ` + strconv.Itoa(v),
			`INSERT INTO runs(name, recipe, status) VALUES('r', '/r.star', 'ok')`} {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("schema %d: %v", v, err)
			}
		}
		db.Close()
		s, err := Open(path)
		if err != nil {
			t.Fatalf("opening a schema %d file: %v", v, err)
		}
		checkMigrated(t, s, v)
		var got int
		s.DB.QueryRow(`PRAGMA user_version`).Scan(&got)
		if got != schemaVersion {
			t.Errorf("schema %d file: user_version %d after opening", v, got)
		}
		s.Close()
	}
	for v := 6; v < schemaVersion; v++ {
		fresh := openPostgres(t)
		location := pgLocation(t, fresh)
		// Rebuild the environment as schema v left it: version 6 and 7
		// holders had no heartbeat columns.
		for _, q := range []string{`DROP TABLE ` + strings.Join(tableNames(), ", "), `DELETE FROM kumo_schema`,
			`INSERT INTO kumo_schema(version) VALUES(` + strconv.Itoa(v) + `)`,
			strings.ReplaceAll(createTables(true, v), ",\n\tseen     BIGINT NOT NULL DEFAULT 0,\n\tevery_ms BIGINT NOT NULL DEFAULT 0", ""),
			`INSERT INTO runs(name, recipe, status) VALUES('r', '/r.star', 'ok')`} {
			if _, err := fresh.DB.Exec(q); err != nil {
				t.Fatalf("schema %d: %v\n%s", v, err, q)
			}
		}
		var cols int
		fresh.DB.QueryRow(`SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'holders'`).Scan(&cols)
		if cols != 5 {
			t.Fatalf("the schema %d holders table has %d columns, want 5", v, cols)
		}
		s := openPostgresAt(t, location)
		checkMigrated(t, s, v)
		var got int
		s.DB.QueryRow(`SELECT version FROM kumo_schema`).Scan(&got)
		if got != schemaVersion {
			t.Errorf("schema %d environment: version %d after opening", v, got)
		}
		l, err := s.LockRun("r")
		if err != nil {
			t.Fatalf("locking in a migrated schema %d environment: %v", v, err)
		}
		l.Unlock()
		if h, err := s.holder("r"); err != nil || h.Seen.IsZero() || h.Every == 0 {
			t.Errorf("holder row after migration from %d = %+v, %v", v, h, err)
		}
	}
}

// checkMigrated checks that a migrated state kept its run and has every
// table of this version.
func checkMigrated(t *testing.T, s *Store, from int) {
	t.Helper()
	if r, ok, err := s.GetRun("r"); !ok || err != nil || r.Recipe != "/r.star" {
		t.Errorf("schema %d: run after migration = %+v %v %v", from, r, ok, err)
	}
	for _, table := range stateTables {
		var n int
		if err := s.DB.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
			t.Errorf("schema %d: table %s after migration: %v", from, table, err)
		}
	}
}

func tableNames() []string {
	names := append([]string{}, stateTables...)
	return append(names, "holders")
}

// A child forked while the run is locked shares the lock's descriptor
// until it execs (or here, as long as it lives): Unlock still frees the
// run at once, for the next process.
func TestUnlockFreesTheRunWhileAChildSharesTheDescriptor(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	l, err := s.LockRun("r")
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command("sleep", "10")
	child.ExtraFiles = []*os.File{l.f}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	again, err := s.LockRun("r")
	if err != nil {
		t.Fatalf("the run is still locked after Unlock: %v", err)
	}
	again.Unlock()
}
