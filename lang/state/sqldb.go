package state

import (
	"database/sql"
	"strconv"
	"strings"
)

// sqlDB is the state's database, SQLite or PostgreSQL. kumo writes one
// SQL for both; the one difference it leaves to this type is the
// placeholders: SQLite's ? become PostgreSQL's $1, $2, ...
type sqlDB struct {
	*sql.DB
	pg bool
	// guard, if set, is asked before every write: on PostgreSQL, whether
	// the session holding the run's lock still holds it.
	guard func() error
}

func (d *sqlDB) Exec(q string, args ...any) (sql.Result, error) {
	if d.guard != nil {
		if err := d.guard(); err != nil {
			return nil, err
		}
	}
	return d.DB.Exec(rebind(d.pg, q), args...)
}

func (d *sqlDB) Query(q string, args ...any) (*sql.Rows, error) {
	return d.DB.Query(rebind(d.pg, q), args...)
}

func (d *sqlDB) QueryRow(q string, args ...any) *sql.Row {
	return d.DB.QueryRow(rebind(d.pg, q), args...)
}

func (d *sqlDB) Begin() (*sqlTx, error) {
	if d.guard != nil {
		if err := d.guard(); err != nil {
			return nil, err
		}
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
}

func (t *sqlTx) Exec(q string, args ...any) (sql.Result, error) {
	return t.Tx.Exec(rebind(t.pg, q), args...)
}

func (t *sqlTx) Query(q string, args ...any) (*sql.Rows, error) {
	return t.Tx.Query(rebind(t.pg, q), args...)
}

func (t *sqlTx) QueryRow(q string, args ...any) *sql.Row {
	return t.Tx.QueryRow(rebind(t.pg, q), args...)
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
