package state

import (
	"bufio"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kumo-dev/kumo/state/pgtest"
)

// A test binary run with KUMO_TEST_HOLD_LOCK=path:run takes the lock, says
// so on stdout and waits to be killed: a real second process holding it.
func TestMain(m *testing.M) {
	if v := os.Getenv("KUMO_TEST_HOLD_LOCK"); v != "" {
		i := strings.LastIndex(v, ":")
		path, run := v[:i], v[i+1:]
		var s *Store
		var err error
		if IsPostgres(path) {
			s, err = OpenPostgres(path, os.TempDir())
		} else {
			s, err = Open(path)
		}
		if err != nil {
			panic(err)
		}
		if _, err := s.LockRun(run); err != nil {
			panic(err)
		}
		os.Stdout.WriteString("locked\n")
		select {}
	}
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// eachBackend runs test on a new SQLite state and a new PostgreSQL
// environment: what works on one works on the other.
func eachBackend(t *testing.T, test func(t *testing.T, s *Store)) {
	t.Run("sqlite", func(t *testing.T) { test(t, openTemp(t)) })
	t.Run("postgres", func(t *testing.T) { test(t, openPostgres(t)) })
}

func openPostgres(t *testing.T) *Store {
	t.Helper()
	s, err := OpenPostgres(pgtest.URL(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
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

// A second process is refused while the first holds a run, naming it;
// kill -9 of the holder frees the lock: the kernel closes its flock, or
// PostgreSQL ends its session.
func TestLockRefusesLiveHolderAndTakesOverDeadOne(t *testing.T) {
	t.Parallel()
	eachBackend(t, testLockRefusesLiveHolderAndTakesOverDeadOne)
}

func testLockRefusesLiveHolderAndTakesOverDeadOne(t *testing.T, s *Store) {
	location := s.Path
	if s.DB.pg {
		location = pgLocation(t, s)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "KUMO_TEST_HOLD_LOCK="+location+":demo")
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
	if s.DB.pg {
		host, _ := os.Hostname()
		if !strings.Contains(err.Error(), " on "+host+" (kumo process ") || !strings.Contains(err.Error(), " since ") {
			t.Errorf("message %q does not say who holds it, where and since when", err)
		}
	}
	if pid, held := s.Holder("demo"); !held || pid != cmd.Process.Pid {
		t.Errorf("Holder = %d %v while held by %d", pid, held, cmd.Process.Pid)
	}
	// Another run name is independent.
	other, err := s.LockRun("other")
	if err != nil {
		t.Fatalf("a different run is blocked: %v", err)
	}
	other.Unlock()

	cmd.Process.Signal(os.Kill) // kill -9: no chance to unlock
	cmd.Wait()
	var l *Lock
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if l, err = s.LockRun("demo"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("lock of a dead holder not taken over: %v", err)
	}
	if _, held := s.Holder("demo"); !held {
		t.Error("Holder does not see the lock this process took")
	}
	l.Unlock()
	if _, held := s.Holder("demo"); held {
		t.Error("Holder sees a lock released")
	}
}

// pgLocation is the URL of s's environment, for another process.
func pgLocation(t *testing.T, s *Store) string {
	var schema string
	if err := s.DB.QueryRow(`SELECT current_setting('search_path')`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	return pgtest.BaseURL() + "&environment=" + strings.TrimPrefix(schema, "kumo_")
}

func TestCellsAndJournal(t *testing.T) { eachBackend(t, testCellsAndJournal) }

func testCellsAndJournal(t *testing.T, s *Store) {
	if err := s.StartRun("r", "r.star", map[string]string{"n": "3"}); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := s.GetRun("r"); r.Overrides["n"] != "3" || r.Status != RunRunning {
		t.Errorf("run = %+v", r)
	}
	one := &CellRecord{Index: 1, Title: "One"}
	if err := s.StartCell("r", one); err != nil || one.ID == 0 {
		t.Fatalf("StartCell: id %d, %v", one.ID, err)
	}
	s.AppendCall("r", Call{Cell: one.ID, Seq: 1, Builtin: "ssh_run", ArgsDigest: "d1", Args: "ssh_run(a)", Result: `{"t":"none"}`, Made: []Effect{{Token: "tok1", Group: "g", Unit: "u"}, {Token: "tok2", Group: "g"}}})
	s.AppendCall("r", Call{Cell: one.ID, Seq: 2, Builtin: "ssh_run", ArgsDigest: "d2", Args: "ssh_run(b)", Result: `{"t":"none"}`, Deleted: []Effect{{Token: "tok2", Group: "g"}}})
	one.SourceHash, one.Status, one.Duration = "h", CellOK, 1500*time.Millisecond
	one.Output = Output{{Source: "web-1", Stream: StreamStdout, Text: "out"}}
	one.Inputs, one.Outputs = map[string]string{"x": "dx"}, map[string]string{"y": "dy"}
	if err := s.FinishCell("r", one); err != nil {
		t.Fatal(err)
	}

	calls, err := s.Calls("r", one.ID)
	if err != nil || len(calls) != 2 || calls[0].ArgsDigest != "d1" || calls[1].Seq != 2 || len(calls[0].Made) != 2 {
		t.Fatalf("Calls = %+v, %v", calls, err)
	}
	effects, _ := s.Effects("r")
	if e := effects[one.ID]; len(e.Made) != 2 || len(e.Deleted) != 1 || e.Deleted[0] != (Effect{Token: "tok2", Group: "g"}) || e.Made[0].Unit != "u" {
		t.Errorf("effects = %+v", e)
	}
	cells, _ := s.Cells("r")
	if len(cells) != 1 {
		t.Fatalf("cells = %+v", cells)
	}
	c := cells[0]
	if c.Status != CellOK || c.SourceHash != "h" || c.Output.String() != "web-1 | out\n" || c.Duration != 1500*time.Millisecond ||
		c.Inputs["x"] != "dx" || c.Outputs["y"] != "dy" || c.LiveGen != 1 {
		t.Errorf("cell record = %+v", c)
	}
	// A second cell succeeding gets the next live generation.
	two := &CellRecord{Index: 2, Title: "Two"}
	s.StartCell("r", two)
	two.Status = CellOK
	s.FinishCell("r", two)
	if two.LiveGen != 2 || two.ID == one.ID {
		t.Errorf("second cell: id %d gen %d", two.ID, two.LiveGen)
	}
	// Running the cell live again replaces its journal and forgets its inputs.
	s.StartCell("r", one)
	if calls, _ := s.Calls("r", one.ID); len(calls) != 0 {
		t.Errorf("journal kept %d calls after StartCell", len(calls))
	}
	if cells, _ := s.Cells("r"); cells[0].Status != CellRunning || cells[0].Inputs != nil {
		t.Errorf("after StartCell: %+v", cells[0])
	}
	// Realign moves a record and forgets a dropped one with its journal.
	s.AppendCall("r", Call{Cell: two.ID, Seq: 1, Builtin: "b", ArgsDigest: "d", Args: "b()", Result: `{"t":"none"}`})
	if err := s.Realign("r", map[int64]int{one.ID: 5}, []int64{two.ID}); err != nil {
		t.Fatal(err)
	}
	cells, _ = s.Cells("r")
	if len(cells) != 1 || cells[0].ID != one.ID || cells[0].Index != 5 {
		t.Errorf("after Realign: %+v", cells)
	}
	if calls, _ := s.Calls("r", two.ID); len(calls) != 0 {
		t.Errorf("dropped cell kept its journal: %+v", calls)
	}
}

// A state file written by kumo before cells had ids is migrated in
// place: its cells keep their records and journals, with unknown inputs.
func TestMigratesVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE runs (name TEXT PRIMARY KEY, recipe TEXT NOT NULL DEFAULT '', params TEXT NOT NULL DEFAULT '{}', status TEXT NOT NULL DEFAULT '', started_at INTEGER NOT NULL DEFAULT 0, finished_at INTEGER NOT NULL DEFAULT 0)`,
		`CREATE TABLE cells (run TEXT NOT NULL, idx INTEGER NOT NULL, title TEXT NOT NULL DEFAULT '', source_hash TEXT NOT NULL DEFAULT '', params_hash TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, output TEXT NOT NULL DEFAULT '', duration_ms INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '', updated_at INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (run, idx))`,
		`CREATE TABLE journal (run TEXT NOT NULL, cell INTEGER NOT NULL, seq INTEGER NOT NULL, builtin TEXT NOT NULL, args_digest TEXT NOT NULL, args TEXT NOT NULL, result TEXT NOT NULL, duration_ms INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (run, cell, seq))`,
		`INSERT INTO runs(name, recipe, status) VALUES('r', '/x/r.star', 'ok')`,
		`INSERT INTO cells(run, idx, title, source_hash, status, output) VALUES('r', 0, 'P', 'h0', 'ok', ''), ('r', 1, 'One', 'h1', 'ok', 'hello')`,
		`INSERT INTO journal(run, cell, seq, builtin, args_digest, args, result) VALUES('r', 0, 1, 'b', 'd0', 'b()', '{}'), ('r', 1, 1, 'b', 'd1', 'b(1)', '{}')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cells, err := s.Cells("r")
	if err != nil || len(cells) != 2 {
		t.Fatalf("cells = %+v, %v", cells, err)
	}
	if c := cells[1]; c.ID != 2 || c.Index != 1 || c.Output.String() != "hello\n" || c.SourceHash != "h1" || c.Inputs != nil {
		t.Errorf("migrated cell = %+v", c)
	}
	calls, _ := s.Calls("r", 2)
	if len(calls) != 1 || calls[0].ArgsDigest != "d1" {
		t.Errorf("cell 1's journal after migration = %+v", calls)
	}
	if r, ok, _ := s.GetRun("r"); !ok || r.Recipe != "/x/r.star" {
		t.Errorf("run after migration = %+v", r)
	}
	var v int
	s.DB.QueryRow(`PRAGMA user_version`).Scan(&v)
	if v != schemaVersion {
		t.Errorf("user_version = %d", v)
	}
}

// A state file from a newer kumo is refused, not overwritten.
func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, _ := sql.Open("sqlite3", "file:"+path)
	db.Exec(`PRAGMA user_version = 99`)
	db.Close()
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "newer kumo") {
		t.Errorf("Open of a newer file: %v", err)
	}
}

func TestResourcesAndPins(t *testing.T) { eachBackend(t, testResourcesAndPins) }

func testResourcesAndPins(t *testing.T, s *Store) {
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

// Journals written before effects had a scope hold bare tokens.
func TestEffectsOfOlderJournalsAreTokens(t *testing.T) {
	got := effectList(`["t1","t2"]`)
	if len(got) != 2 || got[0] != (Effect{Token: "t1"}) || got[1].Token != "t2" {
		t.Errorf("old effects = %+v", got)
	}
	got = effectList(effectText([]Effect{{Token: "t3", Group: "g", Unit: "u"}}))
	if len(got) != 1 || got[0] != (Effect{Token: "t3", Group: "g", Unit: "u"}) || !got[0].In("g", "u") || !got[0].In("g", "") || got[0].In("g", "v") {
		t.Errorf("effects = %+v", got)
	}
}

// A cell's history keeps its live runs that printed something, oldest
// first, up to HistoryPerCell; a silent live run adds nothing, and
// forgetting the run forgets it.
func TestCellHistory(t *testing.T) { eachBackend(t, testCellHistory) }

func testCellHistory(t *testing.T, s *Store) {
	s.StartRun("r", "r.star", nil)
	c := &CellRecord{Index: 1, Title: "Tick"}
	for i := 0; i < HistoryPerCell+10; i++ {
		s.StartCell("r", c)
		c.Status, c.Output = CellOK, Output{{Text: fmt.Sprintf("tick %d", i)}}
		if err := s.FinishCell("r", c); err != nil {
			t.Fatal(err)
		}
	}
	s.StartCell("r", c)
	c.Output = nil
	s.FinishCell("r", c)
	h, err := s.History("r")
	if err != nil || len(h) != HistoryPerCell {
		t.Fatalf("History: %d entries, %v; want %d", len(h), err, HistoryPerCell)
	}
	first, last := strings.TrimSpace(h[0].Output.String()), strings.TrimSpace(h[len(h)-1].Output.String())
	if first != "tick 10" || last != fmt.Sprintf("tick %d", HistoryPerCell+9) {
		t.Errorf("history runs from %q to %q", first, last)
	}
	s.ForgetRun("r")
	if h, _ := s.History("r"); len(h) != 0 {
		t.Errorf("%d entries after ForgetRun", len(h))
	}
}

// Runs, secrets, allocations, schedules and capacity blocks behave the
// same on both backends.
func TestRecordsOfEveryKind(t *testing.T) { eachBackend(t, testRecordsOfEveryKind) }

func testRecordsOfEveryKind(t *testing.T, s *Store) {
	if err := s.StartRun("lab", "/r/lab.star", map[string]string{"nodes": "3"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOverrides("lab", map[string]string{"nodes": "2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun("lab", RunOK); err != nil {
		t.Fatal(err)
	}
	r, ok, err := s.GetRun("lab")
	if err != nil || !ok || r.Overrides["nodes"] != "2" || r.Status != RunOK || r.Recipe != "/r/lab.star" {
		t.Fatalf("run = %+v %v %v", r, ok, err)
	}

	sealed := []byte{0, 1, 2, 0xff, 'x'} // bytes, not text
	kept, err := s.AddSecret(SealedSecret{Name: "lab-pw", Sealed: sealed, Kind: "alnum 32", Run: "lab"})
	if err != nil || string(kept.Sealed) != string(sealed) {
		t.Fatalf("secret = %+v, %v", kept, err)
	}
	again, err := s.AddSecret(SealedSecret{Name: "lab-pw", Sealed: []byte("other"), Run: "lab"})
	if err != nil || string(again.Sealed) != string(sealed) {
		t.Errorf("a second secret of the name replaced the first: %+v, %v", again, err)
	}
	if got, err := s.Secret("lab-pw"); err != nil || string(got.Sealed) != string(sealed) {
		t.Errorf("secret read back = %+v, %v", got, err)
	}

	if ok, err := s.Allocate(Allocation{Host: "h1", Token: "t1", Run: "lab"}); !ok || err != nil {
		t.Fatalf("first allocation: %v %v", ok, err)
	}
	if ok, err := s.Allocate(Allocation{Host: "h1", Token: "t2", Run: "other"}); ok || err != nil {
		t.Errorf("a taken host allocated again: %v %v", ok, err)
	}
	if a, ok, _ := s.Allocated("t1"); !ok || a.Host != "h1" {
		t.Errorf("allocation of t1 = %+v %v", a, ok)
	}

	at := time.UnixMilli(1_800_000_000_000) // past 2^31 ms: 64-bit times
	sc := Schedule{Run: "lab", Name: "nodes", Value: "8", Rule: "weekdays", NextAt: at, NextValue: "2", NextRule: "otherwise", UpdatedAt: at}
	if err := s.SetSchedule(sc); err != nil {
		t.Fatal(err)
	}
	sc.Value = "9"
	if err := s.SetSchedule(sc); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Schedules("lab"); err != nil || len(got) != 1 || got[0].Value != "9" || !got[0].NextAt.Equal(at) {
		t.Errorf("schedules = %+v, %v", got, err)
	}

	if err := s.BlockCandidate(Block{Candidate: "aws/small", Label: "aws/small", Reason: "no room", Since: at, Until: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if b, ok, err := s.Blocked("aws/small", at.Add(time.Minute)); err != nil || !ok || b.Reason != "no room" {
		t.Errorf("block = %+v %v %v", b, ok, err)
	}
	if err := s.ForgetRun("lab"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.GetRun("lab"); ok {
		t.Error("forgotten run still there")
	}
}

// A state copied from SQLite to PostgreSQL and back holds the same rows,
// byte for byte; a copy refuses a destination that holds a state.
func TestCopyRoundTrip(t *testing.T) {
	t.Parallel()
	src := openTemp(t)
	testCellHistory(t, src)
	testCellsAndJournal(t, src)
	testResourcesAndPins(t, src)
	testRecordsOfEveryKindKept(t, src)
	pg := openPostgres(t)
	if err := Copy(pg, src); err != nil {
		t.Fatal(err)
	}
	back := openTemp(t)
	if err := Copy(back, pg); err != nil {
		t.Fatal(err)
	}
	for _, table := range stateTables {
		want, got := dumpTable(t, src, table), dumpTable(t, back, table)
		if want != got {
			t.Errorf("%s after the round trip:\n%s\nwant:\n%s", table, got, want)
		}
		if pgRows := dumpTable(t, pg, table); pgRows != want {
			t.Errorf("%s on PostgreSQL:\n%s\nwant:\n%s", table, pgRows, want)
		}
	}
	if err := Copy(pg, src); err == nil || !strings.Contains(err.Error(), "already holds a state") {
		t.Errorf("copy into a state that holds one: %v", err)
	}
	// New rows on PostgreSQL number after the copied ones.
	r := Resource{Run: "z", Kind: KindNode, Group: "g", Unit: "u", Name: "n-9", Token: "tok-new"}
	if err := pg.InsertIntents([]*Resource{&r}); err != nil {
		t.Fatalf("insert after copy: %v", err)
	}
}

// testRecordsOfEveryKindKept fills what testRecordsOfEveryKind tests,
// without forgetting the run at its end.
func testRecordsOfEveryKindKept(t *testing.T, s *Store) {
	s.StartRun("kept", "/r/kept.star", map[string]string{"n": "1"})
	s.AddSecret(SealedSecret{Name: "kept-pw", Sealed: []byte{0, 0xfe, 'a'}, Kind: "alnum 8", Run: "kept"})
	s.Allocate(Allocation{Host: "hk", Token: "tk", Run: "kept"})
	at := time.UnixMilli(1_800_000_000_123)
	s.SetSchedule(Schedule{Run: "kept", Name: "n", Value: "1", Rule: "r", NextAt: at, NextValue: "2", NextRule: "o", UpdatedAt: at})
	s.BlockCandidate(Block{Candidate: "c", Label: "l", Reason: "full", Since: at, Until: at})
	s.PutGroupKey("kept", "g", []byte{1, 2, 3, 0})
}

// dumpTable is a table's rows as text, sorted, the same for both backends.
func dumpTable(t *testing.T, s *Store, table string) string {
	t.Helper()
	cols, all, err := s.tableRows(table)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, vals := range all {
		var parts []string
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = fmt.Sprintf("bytes%q", b)
			} else if sv, ok := v.(string); ok {
				v = fmt.Sprintf("%q", sv)
			}
			parts = append(parts, fmt.Sprintf("%s=%v", cols[i], v))
		}
		lines = append(lines, strings.Join(parts, " "))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// A pooler in transaction mode (PgBouncer) is refused with a clear
// message, whether it refuses kumo's session settings or drops them.
func TestRefusesAPooler(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		_, err := OpenPostgres(pgtest.PoolerURL(t, ignore), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "is a connection pooler (PgBouncer, say)") {
			t.Errorf("through PgBouncer (ignore_startup_parameters: %v): %v", ignore, err)
		}
	}
}
