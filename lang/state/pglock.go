package state

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/user"
	"time"
)

// On PostgreSQL a run's lock is a session-level advisory lock held on a
// connection of its own, not one of the pool's: a pooled lock and unlock
// can land on different sessions (jackc/tern#146). The server drops it
// when that session ends, however the holder died (kill -9, a cut cable
// noticed by TCP keepalive), so nobody unlocks by hand. A holder row
// says who has it, for the message the next admin reads.

const holdersTable = `CREATE TABLE IF NOT EXISTS holders (
	run   TEXT PRIMARY KEY,
	who   TEXT NOT NULL,
	host  TEXT NOT NULL,
	pid   BIGINT NOT NULL,
	since BIGINT NOT NULL
)`

// lockKey is the advisory lock key of run in this environment.
func (s *Store) lockKey(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, run string) (int64, error) {
	var key int64
	err := q.QueryRowContext(ctx, `SELECT hashtext('kumo run ' || current_setting('search_path') || ' ' || $1)::bigint`, run).Scan(&key)
	return key, err
}

func (s *Store) lockRunPostgres(run string) (*Lock, error) {
	ctx := context.Background()
	conn, err := s.DB.DB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Lock, error) { conn.Close(); return nil, err }
	key, err := s.lockKey(ctx, conn, run)
	if err != nil {
		return fail(err)
	}
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		return fail(err)
	}
	if !got {
		h, _ := s.holder(run)
		return fail(&LockedError{Run: run, PID: h.PID, Who: h.Who, Host: h.Host, Since: h.Since})
	}
	who := "someone"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	host, _ := os.Hostname()
	if _, err := conn.ExecContext(ctx, `INSERT INTO holders(run, who, host, pid, since) VALUES($1,$2,$3,$4,$5)
		ON CONFLICT(run) DO UPDATE SET who=excluded.who, host=excluded.host, pid=excluded.pid, since=excluded.since`,
		run, who, host, os.Getpid(), now()); err != nil {
		return fail(err)
	}
	l := &Lock{conn: conn, key: key, run: run, store: s}
	if err := conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&l.backend); err != nil {
		return fail(err)
	}
	// A pooler handing out server sessions per transaction (PgBouncer's
	// pool_mode=transaction) would hold the lock on a session that is
	// soon another client's: the session that took it must be the one
	// that holds it.
	var holds bool
	if err := conn.QueryRowContext(ctx, `SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
		AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1`,
		int64(uint32(uint64(key)>>32)), int64(uint32(key))).Scan(&holds); err != nil || !holds {
		conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, key)
		return fail(fmt.Errorf("the state %s hands out database sessions per transaction (PgBouncer with pool_mode=transaction, say), and kumo's run locks need one session for the whole run: point the state at PostgreSQL itself, or at a pool in session mode", s.Path))
	}
	if s.DB.guard == nil {
		// Losing the session loses the lock, and with it the right to
		// write: another admin may hold the run now.
		s.DB.guard = func() error { return s.stillHeld(l) }
		s.guardOf = l
	}
	return l, nil
}

// LostLockError is a write refused because the session that held the
// run's lock is gone.
type LostLockError struct{ Run string }

func (e *LostLockError) Error() string {
	return fmt.Sprintf("the connection to PostgreSQL that held run %q's lock was lost (the server restarted, or the network failed), so kumo writes nothing more: another admin may hold the run now. Run the same command again: it resumes where the record ends", e.Run)
}

// stillHeld asks the server whether l's session still holds its lock.
func (s *Store) stillHeld(l *Lock) error {
	if l.conn == nil {
		return &LostLockError{Run: l.run}
	}
	var n int
	err := s.DB.DB.QueryRow(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = $1
		AND classid = $2::bigint::oid AND objid = $3::bigint::oid AND objsubid = 1`,
		l.backend, int64(uint32(uint64(l.key)>>32)), int64(uint32(l.key))).Scan(&n)
	if err != nil || n == 0 {
		return &LostLockError{Run: l.run}
	}
	return nil
}

// holderRow is who last took a run's lock.
type holderRow struct {
	Who, Host string
	PID       int
	Since     time.Time
}

func (s *Store) holder(run string) (holderRow, error) {
	var h holderRow
	var since int64
	err := s.DB.QueryRow(`SELECT who, host, pid, since FROM holders WHERE run=?`, run).Scan(&h.Who, &h.Host, &h.PID, &since)
	h.Since = time.UnixMilli(since)
	return h, err
}

// heldPostgres reports whether a session holds run's lock, from the
// server's own list of locks (taking it to see would race a real taker).
func (s *Store) heldPostgres(run string) (holderRow, bool) {
	ctx := context.Background()
	key, err := s.lockKey(ctx, s.DB.DB, run)
	if err != nil {
		return holderRow{}, false
	}
	var n int
	err = s.DB.QueryRow(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND classid = ?::bigint::oid AND objid = ?::bigint::oid AND objsubid = 1`,
		int64(uint32(uint64(key)>>32)), int64(uint32(key))).Scan(&n)
	if err != nil || n == 0 {
		return holderRow{}, false
	}
	h, _ := s.holder(run)
	return h, true
}

func (l *Lock) unlockPostgres() error {
	ctx := context.Background()
	if l.store != nil && l.store.guardOf == l {
		l.store.DB.guard, l.store.guardOf = nil, nil
	}
	// The holder row stays: who last ran it (kumo status --all).
	_, err := l.conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, l.key)
	if cerr := l.conn.Close(); err == nil {
		err = cerr
	}
	l.conn = nil
	return err
}

// lockedBy says by whom and since when, for LockedError.
func lockedBy(e *LockedError) string {
	if e.Who == "" {
		return fmt.Sprintf("kumo process %d", e.PID)
	}
	return fmt.Sprintf("%s on %s (kumo process %d) since %s", e.Who, e.Host, e.PID, e.Since.Format("2006-01-02 15:04"))
}
