// Package state is kumo's checkpoint store: per named run, its
// parameters, its cells, the journal of every effectful builtin call, the
// resources it created and the host keys it pinned. One SQLite file (WAL
// mode, durable commits, mode 0600) or one PostgreSQL schema for a team;
// run locks are a flock or an advisory lock.
package state

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Store is an open state file.
type Store struct {
	DB   *sqlDB
	Path string // the SQLite file, or the PostgreSQL URL without its password
	dir  string // the local folder beside it: keys, locks, local nodes

	location string // PostgreSQL: the URL as given (credentials only from libpq's files)

	pgMu   sync.Mutex
	pgSess *pgSession // PostgreSQL: the session this process's run locks are on
}

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
	if sqliteDriver == "" {
		return nil, errors.New("this binary was built without SQLite: import github.com/kumo-dev/kumo/state/sqlite (session does)")
	}
	// synchronous=FULL: a journaled call is on disk before the builtin
	// returns, so a crash never forgets a side effect that already happened.
	dsn := "file:" + path + "?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=10000&_txlock=immediate"
	sdb, err := sql.Open(sqliteDriver, dsn)
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

// Location names the state in messages: Path.
func (s *Store) Location() string { return s.Path }

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
