package state

import (
	"errors"

	"github.com/mattn/go-sqlite3"
)

// state's own tests link SQLite as state/sqlite does (they cannot import
// it: it imports state).
func init() {
	UseSQLite("sqlite3", func(err error) (int, bool) {
		var se sqlite3.Error
		if !errors.As(err, &se) {
			return 0, false
		}
		return int(se.Code), true
	})
}
