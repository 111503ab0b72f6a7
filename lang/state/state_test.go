package state

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A test binary run with KUMO_TEST_HOLD_LOCK=path:run takes the lock, says
// so on stdout and waits to be killed: a real second process holding it.
func TestMain(m *testing.M) {
	if v := os.Getenv("KUMO_TEST_HOLD_LOCK"); v != "" {
		i := strings.LastIndex(v, ":")
		path, run := v[:i], v[i+1:]
		s, err := Open(path)
		if err != nil {
			panic(err)
		}
		if _, err := s.LockRun(run); err != nil {
			panic(err)
		}
		os.Stdout.WriteString("locked\n")
		select {}
	}
	os.Exit(m.Run())
}

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "sub", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStateFileIsPrivate(t *testing.T) {
	s := openTemp(t)
	st, err := os.Stat(s.Path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", st.Mode().Perm())
	}
	var mode string
	s.DB.QueryRow("PRAGMA journal_mode").Scan(&mode)
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

func TestLockRefusesLiveHolderAndTakesOverDeadOne(t *testing.T) {
	s := openTemp(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KUMO_TEST_HOLD_LOCK="+s.Path+":demo")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("holder said %q", line)
	}

	_, err := s.LockRun("demo")
	var locked *LockedError
	if !errors.As(err, &locked) || locked.PID != cmd.Process.Pid {
		t.Fatalf("LockRun while held = %v, want LockedError naming pid %d", err, cmd.Process.Pid)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(cmd.Process.Pid)) {
		t.Errorf("message %q does not name the holder's pid", err)
	}
	// Another run name is independent.
	other, err := s.LockRun("other")
	if err != nil {
		t.Fatalf("a different run is blocked: %v", err)
	}
	other.Unlock()

	cmd.Process.Signal(os.Kill) // kill -9: no chance to unlock
	cmd.Wait()
	l, err := s.LockRun("demo")
	if err != nil {
		t.Fatalf("lock of a dead holder not taken over: %v", err)
	}
	l.Unlock()
}

func TestCellsAndJournal(t *testing.T) {
	s := openTemp(t)
	if err := s.StartRun("r", "r.star", "{}"); err != nil {
		t.Fatal(err)
	}
	s.StartCell("r", 1, "One")
	s.AppendCall("r", Call{Cell: 1, Seq: 1, Builtin: "ssh_run", ArgsDigest: "d1", Args: "ssh_run(a)", Result: `{"t":"none"}`})
	s.AppendCall("r", Call{Cell: 1, Seq: 2, Builtin: "ssh_run", ArgsDigest: "d2", Args: "ssh_run(b)", Result: `{"t":"none"}`})
	s.FinishCell("r", CellRecord{Index: 1, Title: "One", SourceHash: "h", Status: "ok", Output: "out", Duration: 1500 * time.Millisecond})

	calls, err := s.Calls("r", 1)
	if err != nil || len(calls) != 2 || calls[0].ArgsDigest != "d1" || calls[1].Seq != 2 {
		t.Fatalf("Calls = %+v, %v", calls, err)
	}
	cells, _ := s.Cells("r")
	if c := cells[1]; c.Status != "ok" || c.SourceHash != "h" || c.Output != "out" || c.Duration != 1500*time.Millisecond {
		t.Errorf("cell record = %+v", c)
	}
	// Running the cell live again replaces its journal.
	s.StartCell("r", 1, "One")
	if calls, _ := s.Calls("r", 1); len(calls) != 0 {
		t.Errorf("journal kept %d calls after StartCell", len(calls))
	}
	if cells, _ := s.Cells("r"); cells[1].Status != "running" {
		t.Errorf("status after StartCell = %q", cells[1].Status)
	}
}

func TestResourcesAndPins(t *testing.T) {
	s := openTemp(t)
	n := &Resource{Run: "r", Kind: KindNode, Group: "g", Unit: "u", Name: "u-1", Seq: 1, Provider: "local", Token: "t1"}
	if err := s.InsertIntents([]*Resource{n}); err != nil {
		t.Fatal(err)
	}
	if n.ID == 0 || n.Status != Intent {
		t.Fatalf("after insert: %+v", n)
	}
	// The token is unique: a second intent with it is refused.
	dup := &Resource{Run: "r", Kind: KindNode, Group: "g", Unit: "u", Name: "u-2", Token: "t1"}
	if err := s.InsertIntents([]*Resource{dup}); err == nil {
		t.Error("duplicate token accepted")
	}
	n.Status, n.State, n.Data = Ready, "RUNNING", Data{IP: "127.0.0.1", Port: 2222}
	if err := s.UpdateResource(n); err != nil {
		t.Fatal(err)
	}
	got, err := s.Resource(Query{Run: "r", Kind: KindNode, Name: "u-1"})
	if err != nil || got.Data.Port != 2222 || got.State != "RUNNING" {
		t.Fatalf("Resource = %+v, %v", got, err)
	}
	if seq, _ := s.NextSeq("r", "g", "u"); seq != 2 {
		t.Errorf("NextSeq = %d, want 2", seq)
	}

	target := NodeKeyTarget(n.ID)
	s.PinKey("r", target, "ssh-ed25519 AAAA1")
	s.PinKey("r", target, "ssh-ed25519 AAAA2") // never replaces a pin
	if k, _ := s.PinnedKey(target); k != "ssh-ed25519 AAAA1" {
		t.Errorf("pin = %q, want the first key", k)
	}
	if err := s.DeleteResource(n.ID); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.PinnedKey(target); k != "" {
		t.Errorf("pin of a deleted node kept: %q", k)
	}
	if _, err := s.Resource(Query{ID: n.ID}); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted resource still found: %v", err)
	}
}
