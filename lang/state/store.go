// Package state is kumo's checkpoint store: one SQLite file (WAL mode,
// durable commits, mode 0600) holding, per named run, its parameters, its
// cells, the journal of every effectful builtin call, the resources it
// created and the host keys it pinned.
package state

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// Store is an open state file.
type Store struct {
	DB   *sql.DB
	Path string
}

const schema = `
CREATE TABLE IF NOT EXISTS runs (
	name        TEXT PRIMARY KEY,
	recipe      TEXT NOT NULL DEFAULT '',
	params      TEXT NOT NULL DEFAULT '{}',
	status      TEXT NOT NULL DEFAULT '',
	started_at  INTEGER NOT NULL DEFAULT 0,
	finished_at INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS cells (
	run         TEXT NOT NULL,
	idx         INTEGER NOT NULL,
	title       TEXT NOT NULL DEFAULT '',
	source_hash TEXT NOT NULL DEFAULT '',
	params_hash TEXT NOT NULL DEFAULT '',
	status      TEXT NOT NULL,
	output      TEXT NOT NULL DEFAULT '',
	duration_ms INTEGER NOT NULL DEFAULT 0,
	error       TEXT NOT NULL DEFAULT '',
	updated_at  INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (run, idx)
);
CREATE TABLE IF NOT EXISTS journal (
	run         TEXT NOT NULL,
	cell        INTEGER NOT NULL,
	seq         INTEGER NOT NULL,
	builtin     TEXT NOT NULL,
	args_digest TEXT NOT NULL,
	args        TEXT NOT NULL,
	result      TEXT NOT NULL,
	duration_ms INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (run, cell, seq)
);
CREATE TABLE IF NOT EXISTS resources (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	run         TEXT NOT NULL,
	kind        TEXT NOT NULL,
	grp         TEXT NOT NULL,
	unit        TEXT NOT NULL DEFAULT '',
	name        TEXT NOT NULL,
	seq         INTEGER NOT NULL DEFAULT 0,
	provider    TEXT NOT NULL DEFAULT '',
	token       TEXT NOT NULL UNIQUE,
	status      TEXT NOT NULL,
	state       TEXT NOT NULL DEFAULT '',
	spec        TEXT NOT NULL DEFAULT '{}',
	data        TEXT NOT NULL DEFAULT '{}',
	created_at  INTEGER NOT NULL DEFAULT 0,
	updated_at  INTEGER NOT NULL DEFAULT 0,
	UNIQUE (run, kind, grp, unit, name)
);
CREATE TABLE IF NOT EXISTS allocations (
	host        TEXT PRIMARY KEY,
	token       TEXT NOT NULL UNIQUE,
	run         TEXT NOT NULL,
	inventory   TEXT NOT NULL DEFAULT '',
	allocated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS host_keys (
	target      TEXT PRIMARY KEY,
	run         TEXT NOT NULL,
	public_key  TEXT NOT NULL,
	pinned_at   INTEGER NOT NULL
);
`

// Open opens (creating if needed) the state file at path. The file and
// its folder are private to the user: the journal holds command output
// and the folder holds the runs' SSH keys.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	f.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, err
	}
	// synchronous=FULL: a journaled call is on disk before the builtin
	// returns, so a crash never forgets a side effect that already happened.
	dsn := "file:" + path + "?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=10000&_txlock=immediate"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	return &Store{DB: db, Path: path}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.DB.Close() }

// Dir is the folder holding the state file; keys, locks and local nodes
// live beside it.
func (s *Store) Dir() string { return filepath.Dir(s.Path) }

func now() int64 { return time.Now().UnixMilli() }

// A Run is one named execution history of a recipe.
type Run struct {
	Name       string
	Recipe     string
	Params     string // JSON object: name -> Starlark repr
	Status     string // running, ok, failed, interrupted
	StartedAt  time.Time
	FinishedAt time.Time
}

// StartRun records that a run of recipe begins, keeping its history.
func (s *Store) StartRun(name, recipe, params string) error {
	_, err := s.DB.Exec(`INSERT INTO runs(name, recipe, params, status, started_at) VALUES(?,?,?,?,?)
		ON CONFLICT(name) DO UPDATE SET recipe=excluded.recipe, params=excluded.params, status=excluded.status, started_at=excluded.started_at, finished_at=0`,
		name, recipe, params, "running", now())
	return err
}

// EnsureRun makes sure a run row exists (the REPL tracks resources in one
// without running a recipe).
func (s *Store) EnsureRun(name string) error {
	_, err := s.DB.Exec(`INSERT INTO runs(name, status, started_at) VALUES(?,?,?) ON CONFLICT(name) DO NOTHING`, name, "repl", now())
	return err
}

// FinishRun records how the run ended.
func (s *Store) FinishRun(name, status string) error {
	_, err := s.DB.Exec(`UPDATE runs SET status=?, finished_at=? WHERE name=?`, status, now(), name)
	return err
}

// Runs lists every run, by name.
func (s *Store) Runs() ([]Run, error) {
	rows, err := s.DB.Query(`SELECT name, recipe, params, status, started_at, finished_at FROM runs ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var st, fin int64
		if err := rows.Scan(&r.Name, &r.Recipe, &r.Params, &r.Status, &st, &fin); err != nil {
			return nil, err
		}
		r.StartedAt = time.UnixMilli(st)
		if fin > 0 {
			r.FinishedAt = time.UnixMilli(fin)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// GetRun returns the run called name, or ok=false.
func (s *Store) GetRun(name string) (Run, bool, error) {
	runs, err := s.Runs()
	if err != nil {
		return Run{}, false, err
	}
	for _, r := range runs {
		if r.Name == name {
			return r, true, nil
		}
	}
	return Run{}, false, nil
}

// ForgetRun removes everything recorded for a run. Called by destroy once
// its resources are gone, so that a later run starts from nothing instead
// of replaying results about nodes that no longer exist.
func (s *Store) ForgetRun(name string) error {
	tx, err := s.DB.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`DELETE FROM journal WHERE run=?`, `DELETE FROM cells WHERE run=?`,
		`DELETE FROM resources WHERE run=?`, `DELETE FROM host_keys WHERE run=?`, `DELETE FROM runs WHERE name=?`,
	} {
		if _, err := tx.Exec(q, name); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// CellRecord is what the store knows of one cell of a run.
type CellRecord struct {
	Index      int
	Title      string
	SourceHash string
	ParamsHash string
	Status     string // running, ok, failed
	Output     string
	Duration   time.Duration
	Error      string
}

// Cells returns the recorded cells of a run, by index.
func (s *Store) Cells(run string) (map[int]CellRecord, error) {
	rows, err := s.DB.Query(`SELECT idx, title, source_hash, params_hash, status, output, duration_ms, error FROM cells WHERE run=? ORDER BY idx`, run)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int]CellRecord{}
	for rows.Next() {
		var c CellRecord
		var ms int64
		if err := rows.Scan(&c.Index, &c.Title, &c.SourceHash, &c.ParamsHash, &c.Status, &c.Output, &ms, &c.Error); err != nil {
			return nil, err
		}
		c.Duration = time.Duration(ms) * time.Millisecond
		out[c.Index] = c
	}
	return out, rows.Err()
}

// StartCell marks a cell as running live and drops its old journal: the
// calls it makes now replace the ones it made last time.
func (s *Store) StartCell(run string, idx int, title string) error {
	tx, err := s.DB.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM journal WHERE run=? AND cell=?`, run, idx); err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT INTO cells(run, idx, title, status, updated_at) VALUES(?,?,?,?,?)
		ON CONFLICT(run, idx) DO UPDATE SET title=excluded.title, status=excluded.status, source_hash='', params_hash='', output='', error='', updated_at=excluded.updated_at`,
		run, idx, title, "running", now()); err != nil {
		return err
	}
	return tx.Commit()
}

// FinishCell records the outcome of a live cell.
func (s *Store) FinishCell(run string, c CellRecord) error {
	_, err := s.DB.Exec(`UPDATE cells SET title=?, source_hash=?, params_hash=?, status=?, output=?, duration_ms=?, error=?, updated_at=? WHERE run=? AND idx=?`,
		c.Title, c.SourceHash, c.ParamsHash, c.Status, c.Output, c.Duration.Milliseconds(), c.Error, now(), run, c.Index)
	return err
}

// DropCellsFrom forgets cells at or after idx that the recipe no longer has.
func (s *Store) DropCellsFrom(run string, idx int) error {
	_, err := s.DB.Exec(`DELETE FROM cells WHERE run=? AND idx>=?`, run, idx)
	if err == nil {
		_, err = s.DB.Exec(`DELETE FROM journal WHERE run=? AND cell>=?`, run, idx)
	}
	return err
}

// ErrNotFound is returned for a missing row.
var ErrNotFound = errors.New("not found")
