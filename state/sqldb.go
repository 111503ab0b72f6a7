package state

import (
	"database/sql"
	"strconv"
	"strings"
	"sync/atomic"
)

// sqlDB is the state's database, SQLite or PostgreSQL. kumo writes one
// SQL for both; the one difference it leaves to this type is the
// placeholders: SQLite's ? become PostgreSQL's $1, $2, ...
type sqlDB struct {
	*sql.DB
	pg bool
	// session, while this process holds run locks on PostgreSQL, is the
	// connection holding them: every write goes through it, so a write
	// can only land while the locks are held (see pgSession).
	session atomic.Pointer[pgSession]
}

func (d *sqlDB) Exec(q string, args ...any) (sql.Result, error) {
	if s := d.session.Load(); s != nil {
		return s.exec(rebind(d.pg, q), args...)
	}
	return d.DB.Exec(rebind(d.pg, q), args...)
}

func (d *sqlDB) Query(q string, args ...any) (*sql.Rows, error) {
	return d.DB.Query(rebind(d.pg, q), args...)
}

func (d *sqlDB) QueryRow(q string, args ...any) *sql.Row {
	return d.DB.QueryRow(rebind(d.pg, q), args...)
}

// Begin starts a transaction: on the locks' session while there is
// one (it has the session to itself until Commit or Rollback).
func (d *sqlDB) Begin() (*sqlTx, error) {
	if s := d.session.Load(); s != nil {
		return s.begin()
	}
	tx, err := d.DB.Begin()
	if err != nil {
		return nil, err
	}
	return &sqlTx{Tx: tx, pg: d.pg}, nil
}

// sqlTx is a transaction of a sqlDB.
type sqlTx struct {
	*sql.Tx
	pg bool
	// check, if set, turns an error that lost the locks' session into
	// a LostLockError.
	check func(error) error
	// end, if set, is called once when the transaction ends: it gives
	// the locks' session back to the other writers.
	end func(error) error
}

func (t *sqlTx) Exec(q string, args ...any) (sql.Result, error) {
	res, err := t.Tx.Exec(rebind(t.pg, q), args...)
	if t.check != nil {
		err = t.check(err)
	}
	return res, err
}

func (t *sqlTx) Query(q string, args ...any) (*sql.Rows, error) {
	rows, err := t.Tx.Query(rebind(t.pg, q), args...)
	if t.check != nil {
		err = t.check(err)
	}
	return rows, err
}

func (t *sqlTx) QueryRow(q string, args ...any) *sql.Row {
	return t.Tx.QueryRow(rebind(t.pg, q), args...)
}

func (t *sqlTx) Commit() error   { return t.finish(t.Tx.Commit()) }
func (t *sqlTx) Rollback() error { return t.finish(t.Tx.Rollback()) }

func (t *sqlTx) finish(err error) error {
	if t.end == nil {
		return err
	}
	end := t.end
	t.end = nil
	return end(err)
}

// rebind numbers the ? placeholders of q for PostgreSQL; a ? inside a
// quoted literal stays.
func rebind(pg bool, q string) string {
	if !pg || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n, quoted := 0, false
	for _, r := range q {
		switch {
		case r == '\'':
			quoted = !quoted
		case r == '?' && !quoted:
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
