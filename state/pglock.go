package state

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"os/user"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// On PostgreSQL a run's lock is a session-level advisory lock held on a
// connection of its own, not one of the pool's: a pooled lock and unlock
// can land on different sessions (jackc/tern#146). The server drops it
// when that session ends, however the holder died (kill -9, a cut cable
// noticed by TCP keepalive), so nobody unlocks by hand. A holder row
// says who has it, for the message the next admin reads, and when its
// holder was last heard from, for kumo unlock.
//
// While a process holds locks, every write of its store goes through
// that same session: losing the session loses the locks and the right
// to write together, with no window in between.

const holdersTable = `CREATE TABLE IF NOT EXISTS holders (
	run      TEXT PRIMARY KEY,
	who      TEXT NOT NULL,
	host     TEXT NOT NULL,
	pid      BIGINT NOT NULL,
	since    BIGINT NOT NULL,
	seen     BIGINT NOT NULL DEFAULT 0,
	every_ms BIGINT NOT NULL DEFAULT 0
)`

// pgSession is the connection a process holds its run locks on.
type pgSession struct {
	mu      sync.Mutex // a connection runs one statement or transaction at a time
	conn    *sql.Conn
	backend int              // the session's server process
	held    map[string]int64 // run -> advisory lock key
	lost    error            // set once the connection is gone

	stop, stopped chan struct{} // the heartbeat's
}

// LostLockError is a write refused because the session that held the
// run's lock is gone.
type LostLockError struct{ Run string }

func (e *LostLockError) Error() string {
	return fmt.Sprintf("the connection to PostgreSQL that held run %q's lock was lost (the server restarted, the network failed, or another admin ended it with kumo unlock), so kumo writes nothing more: another admin may hold the run now. Run the same command again: it resumes where the record ends", e.Run)
}

// exec runs one write on the session.
func (p *pgSession) exec(q string, args ...any) (sql.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lost != nil {
		return nil, p.lost
	}
	res, err := p.conn.ExecContext(context.Background(), q, args...)
	return res, p.check(err)
}

// begin starts a transaction that has the session until it ends.
func (p *pgSession) begin() (*sqlTx, error) {
	p.mu.Lock()
	if p.lost != nil {
		p.mu.Unlock()
		return nil, p.lost
	}
	tx, err := p.conn.BeginTx(context.Background(), nil)
	if err != nil {
		err = p.check(err)
		p.mu.Unlock()
		return nil, err
	}
	return &sqlTx{Tx: tx, pg: true, check: p.check, end: func(err error) error {
		defer p.mu.Unlock()
		return p.check(err)
	}}, nil
}

// check turns an error that ended the connection into a LostLockError,
// remembered: nothing is written after it. Called with mu held.
func (p *pgSession) check(err error) error {
	switch {
	case err == nil:
		return nil
	case p.lost != nil:
		return p.lost
	case !errors.Is(err, sql.ErrConnDone) && !errors.Is(err, driver.ErrBadConn) && !p.closed():
		return err
	}
	run := ""
	for r := range p.held {
		if run == "" || r < run {
			run = r
		}
	}
	p.lost = &LostLockError{Run: run}
	return p.lost
}

// closed reports whether the driver's connection has ended.
func (p *pgSession) closed() bool {
	closed := false
	err := p.conn.Raw(func(dc any) error {
		if c, ok := dc.(interface{ Conn() *pgx.Conn }); ok {
			closed = c.Conn().IsClosed()
		}
		return nil
	})
	return closed || err != nil
}

// heartbeatEvery is how often a holder says it is alive
// (KUMO_HEARTBEAT_EVERY, a Go duration, for tests).
func heartbeatEvery() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("KUMO_HEARTBEAT_EVERY")); err == nil && d > 0 {
		return d
	}
	return 10 * time.Second
}

// staleAfter is how long a holder that beats every `every` may stay
// silent before kumo unlock counts it gone.
func staleAfter(every time.Duration) time.Duration { return 6 * every }

// heartbeat writes the time into the holder rows of the session's runs
// until stopped; a beat that cannot be written means the session is lost.
func (p *pgSession) heartbeat(every time.Duration) {
	defer close(p.stopped)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		for run := range p.held {
			if p.lost != nil {
				break
			}
			_, err := p.conn.ExecContext(context.Background(), `UPDATE holders SET seen=`+serverNow+` WHERE run=$1`, run)
			p.check(err)
		}
		p.mu.Unlock()
	}
}

// serverNow is the server's clock in milliseconds: heartbeats are timed
// by it, so that machines whose clocks differ agree on a holder's silence.
const serverNow = `(extract(epoch from clock_timestamp()) * 1000)::bigint`

// lockKey is the advisory lock key of run in this environment.
func (s *Store) lockKey(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, run string) (int64, error) {
	var key int64
	err := q.QueryRowContext(ctx, `SELECT hashtext('kumo run ' || current_setting('search_path') || ' ' || $1)::bigint`, run).Scan(&key)
	return key, err
}

// lockHeld is the condition on pg_locks for the advisory lock key (its
// two 32-bit halves are classid and objid; objsubid 1 says bigint key).
const lockHeld = `locktype = 'advisory' AND granted AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1`

func keyHalves(key int64) (int64, int64) { return int64(uint32(uint64(key) >> 32)), int64(uint32(key)) }

// openSession opens the connection the process's locks live on.
func (s *Store) openSession(ctx context.Context) (*pgSession, error) {
	conn, err := s.DB.DB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	p := &pgSession{conn: conn, held: map[string]int64{}}
	if err := conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&p.backend); err != nil {
		conn.Close()
		return nil, err
	}
	return p, nil
}

func (s *Store) lockRunPostgres(run string) (*Lock, error) {
	ctx := context.Background()
	s.pgMu.Lock()
	defer s.pgMu.Unlock()
	p := s.pgSess
	if p == nil {
		var err error
		if p, err = s.openSession(ctx); err != nil {
			return nil, err
		}
	}
	key, err := p.lock(ctx, s, run)
	if err != nil {
		if s.pgSess == nil {
			p.conn.Close()
		}
		return nil, err
	}
	if s.pgSess == nil {
		every := heartbeatEvery()
		p.stop, p.stopped = make(chan struct{}), make(chan struct{})
		go p.heartbeat(every)
		s.pgSess = p
		s.DB.session.Store(p)
	}
	return &Lock{pg: p, key: key, run: run, store: s}, nil
}

// lock takes run's advisory lock on the session and writes the holder row.
func (p *pgSession) lock(ctx context.Context, s *Store, run string) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lost != nil {
		return 0, p.lost
	}
	if _, ok := p.held[run]; ok {
		// As with flock, one process does not take a run twice.
		return 0, &LockedError{Run: run, PID: os.Getpid()}
	}
	key, err := s.lockKey(ctx, p.conn, run)
	if err != nil {
		return 0, p.check(err)
	}
	var got bool
	if err := p.conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		return 0, p.check(err)
	}
	if !got {
		h, _ := s.holder(run)
		return 0, &LockedError{Run: run, PID: h.PID, Who: h.Who, Host: h.Host, Since: h.Since, Gone: h.gone()}
	}
	// A pooler handing out server sessions per transaction (PgBouncer's
	// pool_mode=transaction) would hold the lock on a session that is
	// soon another client's: the session that took it must be the one
	// that holds it.
	hi, lo := keyHalves(key)
	var holds bool
	if err := p.conn.QueryRowContext(ctx, `SELECT count(*) > 0 FROM pg_locks WHERE `+lockHeld+` AND pid = pg_backend_pid()`, hi, lo).Scan(&holds); err != nil || !holds {
		p.conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, key)
		return 0, fmt.Errorf("the state %s hands out database sessions per transaction (PgBouncer with pool_mode=transaction, say), and kumo's run locks need one session for the whole run: point the state at PostgreSQL itself, or at a pool in session mode", s.Path)
	}
	who := "someone"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	host, _ := os.Hostname()
	if _, err := p.conn.ExecContext(ctx, `INSERT INTO holders(run, who, host, pid, since, seen, every_ms) VALUES($1,$2,$3,$4,$5,`+serverNow+`,$6)
		ON CONFLICT(run) DO UPDATE SET who=excluded.who, host=excluded.host, pid=excluded.pid, since=excluded.since,
		seen=excluded.seen, every_ms=excluded.every_ms`,
		run, who, host, os.Getpid(), now(), heartbeatEvery().Milliseconds()); err != nil {
		p.conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, key)
		return 0, p.check(err)
	}
	p.held[run] = key
	return key, nil
}

func (l *Lock) unlockPostgres() error {
	s, p := l.store, l.pg
	s.pgMu.Lock()
	defer s.pgMu.Unlock()
	p.mu.Lock()
	var err error
	if p.lost == nil {
		// The holder row stays: who last ran it (kumo status --all).
		_, err = p.conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, l.key)
		err = p.check(err)
	}
	delete(p.held, l.run)
	last := len(p.held) == 0
	p.mu.Unlock()
	l.pg = nil
	if last {
		close(p.stop)
		<-p.stopped
		s.DB.session.Store(nil)
		s.pgSess = nil
		if cerr := p.conn.Close(); err == nil && p.lost == nil {
			err = cerr
		}
	}
	var lost *LostLockError
	if errors.As(err, &lost) {
		return nil // the server let go of it with the session
	}
	return err
}

// holderRow is who last took a run's lock.
type holderRow struct {
	Who, Host string
	PID       int
	Since     time.Time
	Seen      time.Time     // its last heartbeat (zero: a kumo before heartbeats)
	Quiet     time.Duration // how long ago that was, by the server's clock
	Every     time.Duration // how often it beats
}

func (s *Store) holder(run string) (holderRow, error) {
	var h holderRow
	var since, seen, every, at int64
	err := s.DB.QueryRow(`SELECT who, host, pid, since, seen, every_ms, `+serverNow+` FROM holders WHERE run=?`, run).Scan(&h.Who, &h.Host, &h.PID, &since, &seen, &every, &at)
	h.Since = time.UnixMilli(since)
	if seen > 0 {
		h.Seen, h.Quiet = time.UnixMilli(seen), time.Duration(at-seen)*time.Millisecond
	}
	h.Every = time.Duration(every) * time.Millisecond
	return h, err
}

// gone says why the holder provably no longer works on its run, or "":
// its process on this machine has ended, or it has not been heard from
// for longer than its heartbeat allows.
func (h holderRow) gone() string {
	if host, _ := os.Hostname(); h.Host == host && h.PID > 0 && !processAlive(h.PID) {
		return fmt.Sprintf("its process %d on this machine has ended", h.PID)
	}
	if h.Seen.IsZero() || h.Every <= 0 {
		return ""
	}
	if h.Quiet > staleAfter(h.Every) {
		return fmt.Sprintf("it has not been heard from for %s (it says it is alive every %s)", h.Quiet.Round(time.Second), h.Every)
	}
	return ""
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// lockBackend is the server process of the session holding run's lock
// (0 when nobody holds it). It never takes the lock: taking it to see
// would race a real taker.
func (s *Store) lockBackend(run string) (int, error) {
	key, err := s.lockKey(context.Background(), s.DB.DB, run)
	if err != nil {
		return 0, err
	}
	hi, lo := keyHalves(key)
	var pid int
	err = s.DB.DB.QueryRow(`SELECT pid FROM pg_locks WHERE `+lockHeld+` LIMIT 1`, hi, lo).Scan(&pid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return pid, err
}

// heldPostgres reports whether a session holds run's lock, and who took it.
func (s *Store) heldPostgres(run string) (holderRow, bool) {
	if pid, err := s.lockBackend(run); err != nil || pid == 0 {
		return holderRow{}, false
	}
	h, _ := s.holder(run)
	return h, true
}

// breakLockPostgres ends the session holding run's lock if its holder
// is provably gone. Safe even if it is not quite: that session loses the
// right to write with the lock, so the old holder can record nothing
// more and the next run resumes from what it did record.
func (s *Store) breakLockPostgres(run string) (string, error) {
	backend, err := s.lockBackend(run)
	if err != nil {
		return "", err
	}
	if backend == 0 {
		return "", ErrNotLocked
	}
	h, _ := s.holder(run)
	holder := lockedBy(&LockedError{Run: run, PID: h.PID, Who: h.Who, Host: h.Host, Since: h.Since})
	why := h.gone()
	if why == "" {
		e := &HolderAliveError{Run: run, Holder: holder,
			Advice: "wait for it to finish, or ask them to stop it; kumo unlock ends only a holder that is gone (its process ended, or silent for six heartbeats)"}
		if !h.Seen.IsZero() {
			e.Evidence = fmt.Sprintf("heard from %s ago", h.Quiet.Round(time.Second))
		}
		if host, _ := os.Hostname(); h.Host == host && processStopped(h.PID) {
			e.Evidence += "; its process here is stopped, as by Ctrl-Z: fg in its terminal or kill -CONT " + fmt.Sprint(h.PID) + " lets it go on"
		}
		return "", e
	}
	if _, err := s.DB.DB.Exec(`SELECT pg_terminate_backend($1)`, backend); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" {
			return "", fmt.Errorf("run %q is held by %s, and %s, but PostgreSQL does not let you end its session (%d, another role's): a superuser, or a role granted pg_signal_backend, can run SELECT pg_terminate_backend(%d)", run, holder, why, backend, backend)
		}
		return "", err
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		pid, err := s.lockBackend(run)
		if err != nil {
			return "", err
		}
		if pid != backend {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("PostgreSQL was asked to end session %d, which holds run %q, and it still holds it after 10s: try again, or ask the database's administrator", backend, run)
		}
	}
	return fmt.Sprintf("%s, and %s: its PostgreSQL session %d was ended, and it can write nothing more", holder, why, backend), nil
}

// lockedBy says by whom and since when, for LockedError.
func lockedBy(e *LockedError) string {
	if e.Who == "" {
		return fmt.Sprintf("kumo process %d", e.PID)
	}
	return fmt.Sprintf("%s on %s (kumo process %d) since %s", e.Who, e.Host, e.PID, e.Since.Format("2006-01-02 15:04"))
}
