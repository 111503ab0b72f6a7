package state

import (
	"errors"
	"fmt"
)

// SQLite is linked by state/sqlite (it is C): the database/sql driver's
// name, and how to read SQLite's result code from an error.
var (
	sqliteDriver string
	sqliteCode   func(error) (int, bool)
)

// UseSQLite is how state/sqlite links SQLite in.
func UseSQLite(driver string, code func(error) (int, bool)) {
	sqliteDriver, sqliteCode = driver, code
}

// SQLite's primary result codes (sqlite.org/rcode.html) that Explain
// turns into advice.
const (
	sqlitePerm     = 3
	sqliteReadonly = 8
	sqliteIOErr    = 10
	sqliteCorrupt  = 11
	sqliteFull     = 13
	sqliteCantOpen = 14
	sqliteNotADB   = 26
)

// A DamagedError is a state file that SQLite cannot read as a sound
// database: truncated, overwritten, not a database at all. kumo refuses
// it and writes nothing to it. The CLI exits 2: running again as it is
// would fail the same way.
type DamagedError struct {
	Path string
	Err  error
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("the state %s is damaged (%v); kumo will not write to it. Keep a copy: sqlite3's .recover may save its records. "+
		"Moving it away starts afresh, but what its runs made is then no longer tracked", e.Path, e.Err)
}
func (e *DamagedError) Unwrap() error  { return e.Err }
func (e *DamagedError) BadInput() bool { return true }

// A StorageError is the state's file failing to be written: its disk
// full, or the file or its folder read-only. Nothing recorded is lost;
// once the cause is fixed, the same command resumes.
type StorageError struct {
	Path, Advice string
	Err          error
}

func (e *StorageError) Error() string {
	return fmt.Sprintf("the state %s: %s (%v)", e.Path, e.Advice, e.Err)
}
func (e *StorageError) Unwrap() error { return e.Err }

// unwritable is the advice for a state that cannot be written.
const unwritable = "cannot be written: make it and its folder writable (or give --state a file elsewhere)"

// Explain turns SQLite's errors on the state file at path into what
// happened and what to do; other errors come back as they are.
func Explain(err error, path string) error {
	var done1 *DamagedError
	var done2 *StorageError
	if err == nil || sqliteCode == nil || errors.As(err, &done1) || errors.As(err, &done2) {
		return err
	}
	code, ok := sqliteCode(err)
	if !ok {
		return err
	}
	switch code {
	case sqliteFull:
		return &StorageError{path, "its disk is full: free space there (or give --state a file elsewhere) and run the same command again; what was recorded is kept", err}
	case sqliteReadonly, sqlitePerm, sqliteCantOpen:
		return &StorageError{path, unwritable + " and run the same command again; what was recorded is kept", err}
	case sqliteIOErr:
		return &StorageError{path, "could not be read or written: check the disk, then run the same command again", err}
	case sqliteCorrupt, sqliteNotADB:
		return &DamagedError{path, err}
	}
	return err
}
