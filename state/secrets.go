package state

import (
	"database/sql"
	"errors"
	"time"
)

// A SealedSecret is a secret kumo generated, as the state keeps it:
// sealed (encrypted and authenticated) with a key that lives outside the
// state file (see builtins/secret), so the file alone never gives it
// away.
type SealedSecret struct {
	Name    string
	Sealed  []byte
	Kind    string // how it was generated: "alnum 32"
	Run     string // the run that generated it
	Created time.Time
}

// AddSecret stores s unless a secret of that name exists, and returns
// the one stored: two runs generating one name get the same value.
func (s *Store) AddSecret(sec SealedSecret) (SealedSecret, error) {
	_, err := s.DB.Exec(`INSERT INTO secrets(name, sealed, kind, run, created_at) VALUES(?,?,?,?,?) ON CONFLICT(name) DO NOTHING`,
		sec.Name, sec.Sealed, sec.Kind, sec.Run, now())
	if err != nil {
		return SealedSecret{}, err
	}
	return s.Secret(sec.Name)
}

// Secret returns the generated secret called name (ErrNotFound if none).
func (s *Store) Secret(name string) (SealedSecret, error) {
	var sec SealedSecret
	var created int64
	err := s.DB.QueryRow(`SELECT name, sealed, kind, run, created_at FROM secrets WHERE name=?`, name).Scan(&sec.Name, &sec.Sealed, &sec.Kind, &sec.Run, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return sec, ErrNotFound
	}
	sec.Created = time.UnixMilli(created)
	return sec, err
}

// Secrets lists the generated secrets, by name.
func (s *Store) Secrets() ([]SealedSecret, error) {
	rows, err := s.DB.Query(`SELECT name, sealed, kind, run, created_at FROM secrets ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SealedSecret
	for rows.Next() {
		var sec SealedSecret
		var created int64
		if err := rows.Scan(&sec.Name, &sec.Sealed, &sec.Kind, &sec.Run, &created); err != nil {
			return nil, err
		}
		sec.Created = time.UnixMilli(created)
		out = append(out, sec)
	}
	return out, rows.Err()
}

// DeleteSecret forgets a generated secret; the next generate makes a new
// value. It reports whether there was one.
func (s *Store) DeleteSecret(name string) (bool, error) {
	res, err := s.DB.Exec(`DELETE FROM secrets WHERE name=?`, name)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}
