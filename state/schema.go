package state

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The state's schema is versioned: SQLite keeps the version in PRAGMA
// user_version, PostgreSQL in an environment's kumo_schema table. A new
// state gets every table at once; an older one is brought up a version
// at a time (each step's migration, then the tables that version added),
// all in one transaction, so a failure leaves it as it was.

// schemaVersion is the version this kumo writes.
//
//	1 kumo before reactive replay: cells kept by their position
//	2 cells get stable ids, so a cell keeps its journal and what it made
//	  when cells are added or moved around it
//	3 generated secrets          4 placement's capacity blocks
//	5 schedules                  6 cell history (PostgreSQL states begin here)
//	7 the groups' SSH keys of a shared state
//	8 run lock holders' heartbeats (PostgreSQL)
const schemaVersion = 8

// A table of the state, and the version that added it.
type table struct {
	since int
	ddl   string // SQLite's types; pgTypes turns them into PostgreSQL's
	// pgOnly tables exist in PostgreSQL states only.
	pgOnly bool
}

var tables = []table{
	{1, `CREATE TABLE IF NOT EXISTS runs (
	name        TEXT PRIMARY KEY,
	recipe      TEXT NOT NULL DEFAULT '',
	params      TEXT NOT NULL DEFAULT '{}',
	overrides   TEXT NOT NULL DEFAULT '{}',
	status      TEXT NOT NULL DEFAULT '',
	started_at  INTEGER NOT NULL DEFAULT 0,
	finished_at INTEGER NOT NULL DEFAULT 0
)`, false},
	{2, `CREATE TABLE IF NOT EXISTS cells (
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
)`, false},
	{1, `CREATE TABLE IF NOT EXISTS journal (
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
)`, false},
	{1, `CREATE TABLE IF NOT EXISTS resources (
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
)`, false},
	{1, `CREATE TABLE IF NOT EXISTS allocations (
	host        TEXT PRIMARY KEY,
	token       TEXT NOT NULL UNIQUE,
	run         TEXT NOT NULL,
	inventory   TEXT NOT NULL DEFAULT '',
	allocated_at INTEGER NOT NULL
)`, false},
	{3, `CREATE TABLE IF NOT EXISTS secrets (
	name        TEXT PRIMARY KEY,
	sealed      BLOB NOT NULL,
	kind        TEXT NOT NULL DEFAULT '',
	run         TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL
)`, false},
	{4, `CREATE TABLE IF NOT EXISTS capacity_blocks (
	candidate   TEXT PRIMARY KEY,
	label       TEXT NOT NULL,
	reason      TEXT NOT NULL,
	since       INTEGER NOT NULL,
	until       INTEGER NOT NULL
)`, false},
	{6, `CREATE TABLE IF NOT EXISTS cell_history (
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
)`, false},
	{6, `CREATE INDEX IF NOT EXISTS cell_history_by_cell ON cell_history(run, cell, seq)`, false},
	{5, `CREATE TABLE IF NOT EXISTS schedules (
	run         TEXT NOT NULL,
	name        TEXT NOT NULL,
	value       TEXT NOT NULL,
	rule        TEXT NOT NULL,
	next_at     INTEGER NOT NULL,
	next_value  TEXT NOT NULL,
	next_rule   TEXT NOT NULL,
	updated_at  INTEGER NOT NULL,
	PRIMARY KEY (run, name)
)`, false},
	{7, `CREATE TABLE IF NOT EXISTS group_keys (
	run         TEXT NOT NULL,
	grp         TEXT NOT NULL,
	sealed      BLOB NOT NULL,
	PRIMARY KEY (run, grp)
)`, false},
	{1, `CREATE TABLE IF NOT EXISTS host_keys (
	target      TEXT PRIMARY KEY,
	run         TEXT NOT NULL,
	public_key  TEXT NOT NULL,
	pinned_at   INTEGER NOT NULL
)`, false},
	{6, holdersTable, true},
}

// A migration changes tables an older version already has, on its way
// to version `to`: before runs ahead of creating the tables `to` adds,
// after once they exist.
type migration struct {
	to            int
	before, after string
}

var sqliteMigrations = []migration{
	// Version 1's cells, kept by position, move aside; the new table
	// is made, and the records copied over with ids (their old position
	// plus one, which the journal's cell column becomes too). Their
	// inputs stay unknown (NULL), so unchanged cells replay on the first
	// run instead of running again.
	{to: 2, before: `
ALTER TABLE runs ADD COLUMN overrides TEXT NOT NULL DEFAULT '{}';
ALTER TABLE cells RENAME TO cells_v1;
ALTER TABLE journal ADD COLUMN made TEXT NOT NULL DEFAULT '';
ALTER TABLE journal ADD COLUMN deleted TEXT NOT NULL DEFAULT '';
`, after: `
INSERT INTO cells(run, id, idx, title, source_hash, status, output, duration_ms, error, updated_at)
	SELECT run, idx+1, idx, title, source_hash, status, output, duration_ms, error, updated_at FROM cells_v1;
DROP TABLE cells_v1;
UPDATE journal SET cell = -(cell+1);
UPDATE journal SET cell = -cell;
`},
}

var postgresMigrations = []migration{
	{to: 8, before: `
ALTER TABLE holders ADD COLUMN IF NOT EXISTS seen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE holders ADD COLUMN IF NOT EXISTS every_ms BIGINT NOT NULL DEFAULT 0;
`},
}

// pgTypes is a table in PostgreSQL's types: times in milliseconds need
// 64 bits, and ids are identity columns.
var pgTypes = strings.NewReplacer(
	"INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
	"INTEGER", "BIGINT",
	"BLOB", "BYTEA",
)

// createTables is the DDL of the tables a state of version `upTo` has.
func createTables(pg bool, upTo int) string {
	var b strings.Builder
	for _, t := range tables {
		if t.since > upTo || (t.pgOnly && !pg) {
			continue
		}
		ddl := t.ddl
		if pg {
			ddl = pgTypes.Replace(ddl)
		}
		b.WriteString(ddl + ";\n")
	}
	return b.String()
}

// migrate brings a state of version `from` (0: new) to schemaVersion.
func migrate(tx *sqlTx, from int) error {
	if from == 0 {
		_, err := tx.Exec(createTables(tx.pg, schemaVersion))
		return err
	}
	steps := sqliteMigrations
	if tx.pg {
		steps = postgresMigrations
	}
	for v := from + 1; v <= schemaVersion; v++ {
		var step migration
		for _, m := range steps {
			if m.to == v {
				step = m
			}
		}
		for _, q := range []string{step.before, createTables(tx.pg, v), step.after} {
			if strings.TrimSpace(q) == "" {
				continue
			}
			if _, err := tx.Exec(q); err != nil {
				return fmt.Errorf("migrating to schema %d: %w", v, err)
			}
		}
	}
	return nil
}

// upgrade creates the schema in a new state and migrates an older one,
// in one transaction: a failure leaves the state as it was.
func upgrade(db *sqlDB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var version int
	if db.pg {
		if version, err = postgresVersion(tx); err != nil {
			return err
		}
	} else if version, err = sqliteVersion(tx); err != nil {
		return err
	}
	switch {
	case version == schemaVersion:
		return nil
	case version > schemaVersion:
		return fmt.Errorf("written by a newer kumo (schema %d; this kumo knows %d): upgrade kumo", version, schemaVersion)
	}
	if err := migrate(tx, version); err != nil {
		return err
	}
	if db.pg {
		if _, err := tx.Exec(`DELETE FROM kumo_schema`); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO kumo_schema(version) VALUES(?)`, schemaVersion); err != nil {
			return err
		}
	} else if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

// sqliteVersion is a file's schema version: 0 for a new file, 1 for
// one from before versions were kept (it has a cells table).
func sqliteVersion(tx *sqlTx) (int, error) {
	var version int
	if err := tx.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return 0, err
	}
	if version == 0 {
		var hasCells int
		tx.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type='table' AND name='cells'`).Scan(&hasCells)
		if hasCells > 0 {
			version = 1
		}
	}
	return version, nil
}

// postgresVersion is an environment's schema version (0: new), made
// under the environment's own advisory lock for this transaction: two
// admins opening one new environment at once do not race, and nobody
// else waits (terraform#33217).
func postgresVersion(tx *sqlTx) (int, error) {
	var schemaName string
	if err := tx.QueryRow(`SELECT current_setting('search_path')`).Scan(&schemaName); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtext('kumo schema ' || ?))`, schemaName); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(`CREATE SCHEMA IF NOT EXISTS ` + pgx.Identifier{schemaName}.Sanitize()); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(`CREATE TABLE IF NOT EXISTS kumo_schema (version BIGINT NOT NULL)`); err != nil {
		return 0, err
	}
	var version int
	err := tx.QueryRow(`SELECT coalesce(max(version), 0) FROM kumo_schema`).Scan(&version)
	return version, err
}
