package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A Lock holds a run for one process.
//
// It is an flock(2) on a file beside the state rather than a row in it:
// the kernel drops the lock when its holder dies, however it dies
// (kill -9 included), so a dead holder's lock is taken over without any
// guessing about stale pids. The pid written into the file is only there
// to tell the user who holds it.
type Lock struct {
	f *os.File
	// PostgreSQL: the session holding the advisory lock, and its key.
	pg    *pgSession
	key   int64
	run   string
	store *Store
}

// LockedError says that another live process holds the run.
type LockedError struct {
	Run string
	PID int
	// Who, Host and Since say who holds it, on PostgreSQL.
	Who, Host string
	Since     time.Time
	// Gone, if set, says why that holder looks gone (PostgreSQL).
	Gone string
}

func (e *LockedError) Error() string {
	if e.Gone != "" {
		return fmt.Sprintf("run %q is held by %s, but %s: if it is gone, 'kumo unlock %s' ends its hold", e.Run, lockedBy(e), e.Gone, e.Run)
	}
	if e.Who != "" {
		return fmt.Sprintf("run %q is in use by %s; wait for it to finish, or ask them to stop it", e.Run, lockedBy(e))
	}
	if e.PID <= 0 {
		// Taken a moment ago, its holder not yet written (or just let go).
		return fmt.Sprintf("run %q is in use by another kumo process; wait for it to finish, or try again", e.Run)
	}
	return fmt.Sprintf("run %q is in use by kumo process %d; wait for it to finish or stop it (kill %d)", e.Run, e.PID, e.PID)
}

// LockRun takes the lock of run, failing at once if a live process holds it.
func (s *Store) LockRun(run string) (*Lock, error) {
	if s.DB.pg {
		return s.lockRunPostgres(run)
	}
	dir := filepath.Join(s.Dir(), "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, safeName(run)+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			b, _ := os.ReadFile(path)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return nil, &LockedError{Run: run, PID: pid}
		}
		return nil, err
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Unlock releases the run.
func (l *Lock) Unlock() error {
	if l != nil && l.pg != nil {
		return l.unlockPostgres()
	}
	if l == nil || l.f == nil {
		return nil
	}
	l.f.Truncate(0)
	// Unlocked explicitly, not by the close alone: a child forked this
	// moment (an ssh, a node server) shares the descriptor until it
	// execs, and the lock would outlive Unlock by that long.
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	err := l.f.Close()
	l.f = nil
	return err
}

// safeName keeps a run name usable as a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r == '\\' {
			return '_'
		}
		return r
	}, s)
}

// Holder reports the pid recorded by the last holder of run's lock and
// whether that holder still holds it. It never takes the lock, so it is
// safe to call while a run starts.
func (s *Store) Holder(run string) (pid int, held bool) {
	if s.DB.pg {
		h, held := s.heldPostgres(run)
		return h.PID, held
	}
	path := filepath.Join(s.Dir(), "locks", safeName(run)+".lock")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		return 0, false
	}
	// A live process with that pid that still has the lock file open.
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return pid, false
	}
	abs, _ := filepath.Abs(path)
	for _, fd := range fds {
		if target, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd.Name()); err == nil && target == abs {
			return pid, true
		}
	}
	return pid, false
}

// ErrNotLocked is BreakLock's answer for a run nobody holds.
var ErrNotLocked = errors.New("not locked")

// HolderAliveError is BreakLock refusing: the holder is still there.
type HolderAliveError struct {
	Run, Holder string
	Evidence    string // how kumo knows, if more than "it holds the lock"
	Advice      string
}

func (e *HolderAliveError) Error() string {
	evidence := ""
	if e.Evidence != "" {
		evidence = " (" + e.Evidence + ")"
	}
	return fmt.Sprintf("run %q is held by %s, which is alive%s: %s", e.Run, e.Holder, evidence, e.Advice)
}

// BreakLock ends the hold of run's lock by a holder that is provably
// gone, saying whose hold it ended. On SQLite the kernel frees the lock
// of a process that ended, so a hold is only ever a live process's: it
// is refused, saying what that process is doing.
func (s *Store) BreakLock(run string) (string, error) {
	if s.DB.pg {
		return s.breakLockPostgres(run)
	}
	pid, held := s.Holder(run)
	if !held {
		return "", ErrNotLocked
	}
	e := &HolderAliveError{Run: run, Holder: fmt.Sprintf("kumo process %d on this machine", pid),
		Advice: fmt.Sprintf("wait for it to finish, or stop it (kill %d); the lock frees itself when the process ends", pid)}
	if processStopped(pid) {
		e.Evidence = "stopped, as by Ctrl-Z"
		e.Advice = fmt.Sprintf("let it go on (fg in its terminal, or kill -CONT %d), or end it (kill %d); the lock frees itself when the process ends", pid, pid)
	}
	return "", e
}

// processStopped reports whether pid is stopped (state T in /proc).
func processStopped(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && (s[i+2] == 'T' || s[i+2] == 't')
}
