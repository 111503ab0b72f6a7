package state

import (
	"fmt"
	"strings"
)

// stateTables are the tables of a state, in the order a copy fills them.
var stateTables = []string{"runs", "cells", "journal", "resources", "allocations", "secrets",
	"capacity_blocks", "cell_history", "schedules", "group_keys", "host_keys"}

// identities are the columns a backend numbers itself, by table.
var identities = map[string]string{"resources": "id", "cell_history": "seq"}

// Copy writes everything src holds into dst, which must hold nothing:
// every row of every table, ids included, in one transaction of dst (a
// failure leaves it empty). Between SQLite and PostgreSQL both ways, so
// a state moves to a team's server and back with nothing lost.
func Copy(dst, src *Store) error {
	for _, t := range stateTables {
		var n int
		if err := dst.DB.QueryRow(`SELECT count(*) FROM ` + t).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%s already holds a state (%d rows in %s): kumo copies into an empty one only", dst.Path, n, t)
		}
	}
	tx, err := dst.DB.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, t := range stateTables {
		cols, all, err := src.tableRows(t)
		if err != nil {
			return err
		}
		insert := fmt.Sprintf(`INSERT INTO %s(%s) VALUES(%s)`, t, strings.Join(cols, ", "), strings.TrimSuffix(strings.Repeat("?,", len(cols)), ","))
		for _, vals := range all {
			for i, v := range vals {
				if b, ok := v.([]byte); ok && !dst.DB.pg && !isBlob(t, cols[i]) {
					vals[i] = string(b) // SQLite keeps TEXT as text
				}
			}
			if _, err := tx.Exec(insert, vals...); err != nil {
				return fmt.Errorf("copying %s: %w", t, err)
			}
		}
		if col, ok := identities[t]; ok && dst.DB.pg && len(all) > 0 {
			// The server's numbering goes on after the copied ids.
			if _, err := tx.Exec(fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s', '%s'), (SELECT max(%s) FROM %s))`, t, col, col, t)); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// tableRows reads every row of a table as the driver gives its values.
func (s *Store) tableRows(table string) (cols []string, all [][]any, err error) {
	rows, err := s.DB.Query(`SELECT * FROM ` + table)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	if cols, err = rows.Columns(); err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		all = append(all, vals)
	}
	return cols, all, rows.Err()
}

// isBlob reports whether a column holds bytes rather than text.
func isBlob(table, col string) bool {
	return col == "sealed" && (table == "secrets" || table == "group_keys")
}
