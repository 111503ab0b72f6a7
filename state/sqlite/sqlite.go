// Package sqlite links SQLite into a binary, as database/sql drivers are
// linked: import it for its effect, and state.Open can open state files.
// It stands apart from state because SQLite is C (cgo): the packages that
// never open a state file (the language, the builtins' core, export) then
// link without it, and their test binaries link in a third of the time.
// session imports it, so every command has it.
package sqlite

import (
	"errors"

	"github.com/mattn/go-sqlite3"

	"github.com/kumo-dev/kumo/state"
)

func init() { state.UseSQLite("sqlite3", Code) }

// Code is SQLite's primary result code carried by err, if it has one.
func Code(err error) (int, bool) {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return 0, false
	}
	return int(se.Code), true
}
