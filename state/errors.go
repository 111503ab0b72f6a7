package state

import (
	"errors"
	"fmt"

	"github.com/mattn/go-sqlite3"
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
	var se sqlite3.Error
	var done1 *DamagedError
	var done2 *StorageError
	if err == nil || !errors.As(err, &se) || errors.As(err, &done1) || errors.As(err, &done2) {
		return err
	}
	switch se.Code {
	case sqlite3.ErrFull:
		return &StorageError{path, "its disk is full: free space there (or give --state a file elsewhere) and run the same command again; what was recorded is kept", err}
	case sqlite3.ErrReadonly, sqlite3.ErrPerm, sqlite3.ErrCantOpen:
		return &StorageError{path, unwritable + " and run the same command again; what was recorded is kept", err}
	case sqlite3.ErrIoErr:
		return &StorageError{path, "could not be read or written: check the disk, then run the same command again", err}
	case sqlite3.ErrCorrupt, sqlite3.ErrNotADB:
		return &DamagedError{path, err}
	}
	return err
}
