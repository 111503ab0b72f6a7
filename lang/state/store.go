// Package state is kumo's checkpoint store: one SQLite file (WAL mode,
// durable commits, mode 0600) holding, per named run, its parameters, its
// cells, the journal of every effectful builtin call, the resources it
// created and the host keys it pinned.
package state

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// Store is an open state file.
type Store struct {
	DB   *sqlDB
	Path string // the SQLite file, or the PostgreSQL URL without its password
	dir  string // the local folder beside it: keys, locks, local nodes

	guardOf  *Lock  // PostgreSQL: the lock whose session writes depend on
	location string // PostgreSQL: the URL as given (credentials only from libpq's files)
}

// schemaVersion is PRAGMA user_version of a state file this kumo writes.
// Version 1 (kumo before reactive replay) kept cells by their position;
// version 2 gives each cell a stable id, so that a cell keeps its journal
// and what it made when cells are added or moved around it; version 3
// adds generated secrets, version 4 placement's capacity blocks, version
// 5 schedules, version 6 cell history and version 7 the groups' SSH keys
// of a shared state (each a table of its own: nothing to migrate).
const schemaVersion = 7

const schema = `
CREATE TABLE IF NOT EXISTS runs (
	name        TEXT PRIMARY KEY,
	recipe      TEXT NOT NULL DEFAULT '',
	params      TEXT NOT NULL DEFAULT '{}',
	overrides   TEXT NOT NULL DEFAULT '{}',
	status      TEXT NOT NULL DEFAULT '',
	started_at  INTEGER NOT NULL DEFAULT 0,
	finished_at INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS cells (
	run         TEXT NOT NULL,
	id          INTEGER NOT NULL,
	idx         INTEGER NOT NULL,
	title       TEXT NOT NULL DEFAULT '',
	source_hash TEXT NOT NULL DEFAULT '',
	status      TEXT NOT NULL,
	output      TEXT NOT NULL DEFAULT '',
	duration_ms INTEGER NOT NULL DEFAULT 0,
	error       TEXT NOT NULL DEFAULT '',
	inputs      TEXT,
	outputs     TEXT NOT NULL DEFAULT '{}',
	live_gen    INTEGER NOT NULL DEFAULT 0,
	updated_at  INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (run, id)
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
	made        TEXT NOT NULL DEFAULT '',
	deleted     TEXT NOT NULL DEFAULT '',
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
CREATE TABLE IF NOT EXISTS secrets (
	name        TEXT PRIMARY KEY,
	sealed      BLOB NOT NULL,
	kind        TEXT NOT NULL DEFAULT '',
	run         TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS capacity_blocks (
	candidate   TEXT PRIMARY KEY,
	label       TEXT NOT NULL,
	reason      TEXT NOT NULL,
	since       INTEGER NOT NULL,
	until       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cell_history (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	run         TEXT NOT NULL,
	cell        INTEGER NOT NULL,
	idx         INTEGER NOT NULL,
	title       TEXT NOT NULL,
	status      TEXT NOT NULL,
	output      TEXT NOT NULL,
	duration_ms INTEGER NOT NULL,
	error       TEXT NOT NULL,
	finished_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS cell_history_by_cell ON cell_history(run, cell, seq);
CREATE TABLE IF NOT EXISTS schedules (
	run         TEXT NOT NULL,
	name        TEXT NOT NULL,
	value       TEXT NOT NULL,
	rule        TEXT NOT NULL,
	next_at     INTEGER NOT NULL,
	next_value  TEXT NOT NULL,
	next_rule   TEXT NOT NULL,
	updated_at  INTEGER NOT NULL,
	PRIMARY KEY (run, name)
);
CREATE TABLE IF NOT EXISTS group_keys (
	run         TEXT NOT NULL,
	grp         TEXT NOT NULL,
	sealed      BLOB NOT NULL,
	PRIMARY KEY (run, grp)
);
CREATE TABLE IF NOT EXISTS host_keys (
	target      TEXT PRIMARY KEY,
	run         TEXT NOT NULL,
	public_key  TEXT NOT NULL,
	pinned_at   INTEGER NOT NULL
);
`

// A version 1 file (kumo before reactive replay) is migrated around the
// schema: migrateV1 moves the old cells table aside, the schema creates
// the new one, and migrateV1Rows copies the records over. Cells get ids
// (their old position plus one, which the journal's cell column becomes
// too), and their inputs stay unknown (NULL), so that unchanged cells
// still replay on the first run of the new kumo instead of running again.
const migrateV1 = `
ALTER TABLE runs ADD COLUMN overrides TEXT NOT NULL DEFAULT '{}';
ALTER TABLE cells RENAME TO cells_v1;
ALTER TABLE journal ADD COLUMN made TEXT NOT NULL DEFAULT '';
ALTER TABLE journal ADD COLUMN deleted TEXT NOT NULL DEFAULT '';
`

const migrateV1Rows = `
INSERT INTO cells(run, id, idx, title, source_hash, status, output, duration_ms, error, updated_at)
	SELECT run, idx+1, idx, title, source_hash, status, output, duration_ms, error, updated_at FROM cells_v1;
DROP TABLE cells_v1;
UPDATE journal SET cell = -(cell+1);
UPDATE journal SET cell = -cell;
`

// Open opens (creating if needed) the state file at path. The file and
// its folder are private to the user: the journal holds command output
// and the folder holds the runs' SSH keys.
func Open(path string) (*Store, error) {
	cannotWrite := func(err error) error {
		return &StorageError{path, unwritable + "; nothing was changed", err}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, cannotWrite(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, cannotWrite(err)
	}
	f.Close()
	if st, err := os.Stat(path); err == nil && st.Mode().Perm() != 0o600 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, cannotWrite(err)
		}
	}
	// synchronous=FULL: a journaled call is on disk before the builtin
	// returns, so a crash never forgets a side effect that already happened.
	dsn := "file:" + path + "?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=10000&_txlock=immediate"
	sdb, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, err
	}
	db := &sqlDB{DB: sdb}
	// A damaged file is refused before anything writes to it.
	var check string
	if err := db.QueryRow(`PRAGMA quick_check`).Scan(&check); err != nil || check != "ok" {
		db.Close()
		if err == nil {
			err = errors.New(check)
		}
		if explained := Explain(err, path); explained != err {
			return nil, explained
		}
		return nil, &DamagedError{path, err}
	}
	if err := upgrade(db); err != nil {
		db.Close()
		if explained := Explain(err, path); explained != err {
			return nil, explained
		}
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	return &Store{DB: db, Path: path, dir: filepath.Dir(path)}, nil
}

// upgrade creates the schema in a new file and migrates an older one, in
// one transaction: a failure leaves the file as it was.
func upgrade(db *sqlDB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if db.pg {
		return upgradePostgres(tx)
	}
	var version int
	if err := tx.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	switch {
	case version == schemaVersion:
		return nil
	case version > schemaVersion:
		return fmt.Errorf("written by a newer kumo (schema %d; this kumo knows %d): upgrade kumo", version, schemaVersion)
	}
	var hasCells int
	tx.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type='table' AND name='cells'`).Scan(&hasCells)
	fromV1 := version == 0 && hasCells > 0
	if fromV1 {
		if _, err := tx.Exec(migrateV1); err != nil {
			return fmt.Errorf("migrating to schema 2: %w", err)
		}
	}
	if _, err := tx.Exec(schema); err != nil {
		return err
	}
	if fromV1 {
		if _, err := tx.Exec(migrateV1Rows); err != nil {
			return fmt.Errorf("migrating to schema 2: %w", err)
		}
	}
	if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

// Shared reports whether several admins may use the state from several
// machines (PostgreSQL): what lives beside a SQLite file, such as the
// groups' SSH keys, must then be in the state itself.
func (s *Store) Shared() bool { return s.DB.pg }

// PutGroupKey keeps the sealed private key of run's unit group grp,
// unless one is kept already (two admins making a group at once keep
// the first).
func (s *Store) PutGroupKey(run, grp string, sealed []byte) error {
	_, err := s.DB.Exec(`INSERT INTO group_keys(run, grp, sealed) VALUES(?,?,?) ON CONFLICT(run, grp) DO NOTHING`, run, grp, sealed)
	return err
}

// GroupKey is the sealed private key kept for run's unit group grp.
func (s *Store) GroupKey(run, grp string) ([]byte, error) {
	var sealed []byte
	err := s.DB.QueryRow(`SELECT sealed FROM group_keys WHERE run=? AND grp=?`, run, grp).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return sealed, err
}

// DeleteGroupKey forgets it.
func (s *Store) DeleteGroupKey(run, grp string) error {
	_, err := s.DB.Exec(`DELETE FROM group_keys WHERE run=? AND grp=?`, run, grp)
	return err
}

// Close closes the database.
func (s *Store) Close() error { return s.DB.Close() }

// Dir is the folder holding the state file; keys, locks and local nodes
// live beside it.
func (s *Store) Dir() string { return s.dir }

// GroupKeyFile is the private key of unit group g's nodes: keys/RUN/GROUP
// beside the state, as an absolute path. An older kumo recorded it
// relative to the folder it ran in, which another folder would read as
// another (new) key.
func (s *Store) GroupKeyFile(g Resource) string {
	if filepath.IsAbs(g.Data.KeyFile) {
		return g.Data.KeyFile
	}
	dir, _ := filepath.Abs(s.Dir())
	return filepath.Join(dir, "keys", g.Run, g.Name)
}

func now() int64 { return time.Now().UnixMilli() }

// A Run is one named execution history of a recipe.
type Run struct {
	Name       string
	Recipe     string
	Params     string            // JSON object: the effective parameters, name -> value
	Overrides  map[string]string // the -p values the run remembers, name -> text as given
	Status     RunStatus
	StartedAt  time.Time
	FinishedAt time.Time
}

// RunStatus is how a run's last execution ended.
type RunStatus string

const (
	RunRunning     RunStatus = "running" // or its process died: see Store.Holder
	RunOK          RunStatus = "ok"
	RunFailed      RunStatus = "failed"
	RunInterrupted RunStatus = "interrupted" // Ctrl-C or SIGTERM
	RunStopped     RunStatus = "stopped"     // the user stopped stepping in the TUI
	RunREPL        RunStatus = "repl"        // a REPL session's resources, no recipe
)

// StartRun records that a run of recipe begins with the given -p values,
// keeping its history. Its parameters are recorded when the parameters
// cell has run (SetParams).
func (s *Store) StartRun(name, recipe string, overrides map[string]string) error {
	if overrides == nil {
		overrides = map[string]string{}
	}
	ov, _ := json.Marshal(overrides)
	_, err := s.DB.Exec(`INSERT INTO runs(name, recipe, overrides, status, started_at) VALUES(?,?,?,?,?)
		ON CONFLICT(name) DO UPDATE SET recipe=excluded.recipe, overrides=excluded.overrides,
		status=excluded.status, started_at=excluded.started_at, finished_at=0`,
		name, recipe, string(ov), RunRunning, now())
	return err
}

// SetOverrides sets the -p values the run remembers.
func (s *Store) SetOverrides(name string, overrides map[string]string) error {
	if overrides == nil {
		overrides = map[string]string{}
	}
	ov, _ := json.Marshal(overrides)
	_, err := s.DB.Exec(`UPDATE runs SET overrides=? WHERE name=?`, string(ov), name)
	return err
}

// SetParams records the effective parameters once the parameters cell ran.
func (s *Store) SetParams(name, params string) error {
	_, err := s.DB.Exec(`UPDATE runs SET params=? WHERE name=?`, params, name)
	return err
}

// EnsureRun makes sure a run row exists (the REPL tracks resources in one
// without running a recipe).
func (s *Store) EnsureRun(name string) error {
	_, err := s.DB.Exec(`INSERT INTO runs(name, status, started_at) VALUES(?,?,?) ON CONFLICT(name) DO NOTHING`, name, RunREPL, now())
	return err
}

// FinishRun records how the run ended.
func (s *Store) FinishRun(name string, status RunStatus) error {
	_, err := s.DB.Exec(`UPDATE runs SET status=?, finished_at=? WHERE name=?`, status, now(), name)
	return err
}

const runCols = `name, recipe, params, overrides, status, started_at, finished_at`

func scanRun(row interface{ Scan(...any) error }) (Run, error) {
	var r Run
	var st, fin int64
	var ov string
	if err := row.Scan(&r.Name, &r.Recipe, &r.Params, &ov, &r.Status, &st, &fin); err != nil {
		return r, err
	}
	json.Unmarshal([]byte(ov), &r.Overrides)
	r.StartedAt = time.UnixMilli(st)
	if fin > 0 {
		r.FinishedAt = time.UnixMilli(fin)
	}
	return r, nil
}

// Runs lists every run, by name.
func (s *Store) Runs() ([]Run, error) {
	rows, err := s.DB.Query(`SELECT ` + runCols + ` FROM runs ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// GetRun returns the run called name, or ok=false.
func (s *Store) GetRun(name string) (Run, bool, error) {
	r, err := scanRun(s.DB.QueryRow(`SELECT `+runCols+` FROM runs WHERE name=?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, false, nil
	}
	return r, err == nil, err
}

// ForgetRun removes everything recorded for a run. Called by destroy once
// its resources are gone, so that a later run starts from nothing instead
// of replaying results about nodes that no longer exist.
func (s *Store) ForgetRun(name string) error {
	return s.inTx(func(tx *sqlTx) error {
		for _, q := range []string{
			`DELETE FROM journal WHERE run=?`, `DELETE FROM cells WHERE run=?`,
			`DELETE FROM resources WHERE run=?`, `DELETE FROM host_keys WHERE run=?`, `DELETE FROM schedules WHERE run=?`, `DELETE FROM cell_history WHERE run=?`, `DELETE FROM group_keys WHERE run=?`, `DELETE FROM runs WHERE name=?`,
		} {
			if _, err := tx.Exec(q, name); err != nil {
				return err
			}
		}
		return nil
	})
}

// inTx runs f in one durable transaction.
func (s *Store) inTx(f func(tx *sqlTx) error) error {
	tx, err := s.DB.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// ErrNotFound is returned for a missing row.
var ErrNotFound = errors.New("not found")
