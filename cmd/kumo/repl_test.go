package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/kumo-dev/kumo/builtins/all"
	"github.com/kumo-dev/kumo/builtins/units"
	"github.com/kumo-dev/kumo/lang"
	"github.com/kumo-dev/kumo/state"
)

func complete(c *completer, line string) ([]string, int) {
	out, n := c.Do([]rune(line), len([]rune(line)))
	var s []string
	for _, r := range out {
		s = append(s, string(r))
	}
	sort.Strings(s)
	return s, n
}

func TestCompleter(t *testing.T) {
	s := lang.NewInterpreter(".", all.Globals())
	s.Globals["ug"] = &units.UnitGroup{Run: "r", Name: "g"}
	c := &completer{s: s}

	got, n := complete(c, "x = ssh_")
	if strings.Join(got, ",") != "run" || n != 4 {
		t.Errorf("ssh_ completes to %v (replacing %d), want run", got, n)
	}
	got, _ = complete(c, "wait_")
	if strings.Join(got, ",") != "http,port" {
		t.Errorf("wait_ completes to %v", got)
	}
	got, n = complete(c, "ug.find")
	if strings.Join(got, ",") != "_ip_addresses" || n != 4 {
		t.Errorf("ug.find completes to %v (replacing %d)", got, n)
	}
	got, _ = complete(c, "ug.")
	if len(got) != 8 || got[0] != "create_unit" || got[5] != "set_vars" {
		t.Errorf("ug. completes to %v, want name and the group's methods", got)
	}
	got, _ = complete(c, "le")
	if strings.Join(got, ",") != "n" {
		t.Errorf("le completes to %v, want the universe's len", got)
	}
}

// kumoUnderPTY starts this test binary as `kumo args...` in dir, on a
// real pseudo-terminal (line editing and Ctrl-D behave as for a user; a
// pipe would hide them), and returns a reader of the screen.
func kumoUnderPTY(t *testing.T, dir string, args ...string) (*exec.Cmd, *os.File, *screen) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Args[0] = "kumo" // testscript.Main runs the binary as kumo
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "TERM=xterm", "NO_COLOR=1")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		tty.Close()
	})
	sc := &screen{}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			sc.add(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	return cmd, tty, sc
}

// screen is what a pseudo-terminal showed.
type screen struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *screen) add(b []byte) {
	s.mu.Lock()
	s.buf.Write(b)
	s.mu.Unlock()
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitFor waits until the screen shows want n times.
func (s *screen) waitFor(t *testing.T, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Count(s.String(), want) >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the screen never showed %q %d times:\n%s", want, n, s.String())
}

// exited waits for cmd to end and reports its exit code.
func exited(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(10 * time.Second):
		t.Fatal("kumo repl did not leave")
	}
	return -1
}

func TestREPLUnderATerminal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd, tty, sc := kumoUnderPTY(t, dir, "repl")
	sc.waitFor(t, ">>> ", 1)
	io.WriteString(tty, "1 + 1\r")
	sc.waitFor(t, "2\r\n", 1)
	io.WriteString(tty, "help(\"ssh_run\")\r")
	sc.waitFor(t, "Runs the shell command cmd on target", 1)
	io.WriteString(tty, "help(ssh_run)\r")
	sc.waitFor(t, "Runs the shell command cmd on target", 2)
	sc.waitFor(t, ">>> ", 4)
	// A statement left open, then Ctrl-D on an empty line: the REPL ends,
	// with no "EOF" error.
	io.WriteString(tty, "\x04")
	if code := exited(t, cmd); code != 0 {
		t.Errorf("Ctrl-D: exit %d\n%s", code, sc)
	}
	if strings.Contains(sc.String(), "EOF") {
		t.Errorf("Ctrl-D printed an error:\n%s", sc)
	}
	// No command asks the terminal its colours or cursor at start: a
	// terminal that does not answer (ssh -tt, CI ptys) would stall it for
	// seconds (Bubble Tea v1 did this from its package init).
	if strings.Contains(sc.String(), "\x1b]11;?") || strings.Contains(sc.String(), "\x1b[6n") {
		t.Errorf("kumo queried the terminal at start: %q", sc)
	}
	// The history is private; a session that made nothing left no run.
	st, err := os.Stat(filepath.Join(dir, ".kumo", "repl_history"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("repl_history: %v, mode %v", err, st.Mode())
	}
	store, err := state.Open(filepath.Join(dir, ".kumo", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	runs, _ := store.Runs()
	store.Close()
	if len(runs) != 0 {
		t.Errorf("runs left behind: %+v", runs)
	}

	for _, leave := range []string{"exit()", "quit()"} {
		cmd, tty, sc := kumoUnderPTY(t, dir, "repl")
		sc.waitFor(t, ">>> ", 1)
		io.WriteString(tty, leave+"\r")
		if code := exited(t, cmd); code != 0 {
			t.Errorf("%s: exit %d\n%s", leave, code, sc)
		}
	}
}
