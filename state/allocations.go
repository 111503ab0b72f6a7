package state

import (
	"database/sql"
	"errors"
)

// Allocations record which existing (on-prem) hosts are in use, and by
// which node, so that two runs never get the same host. The host column
// is the primary key: a second allocation of a host fails in the
// database, whichever process tries it.

// An Allocation is one host in use.
type Allocation struct {
	Host, Token, Run, Inventory string
}

// Allocate gives host to the node with token. ok is false when the host
// is already taken.
func (s *Store) Allocate(a Allocation) (ok bool, err error) {
	res, err := s.DB.Exec(`INSERT INTO allocations(host, token, run, inventory, allocated_at) VALUES(?,?,?,?,?) ON CONFLICT DO NOTHING`,
		a.Host, a.Token, a.Run, a.Inventory, now())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Allocated returns the allocation of token, or ok=false.
func (s *Store) Allocated(token string) (Allocation, bool, error) {
	return s.allocation(`token=?`, token)
}

// AllocationOf returns the allocation of host, or ok=false.
func (s *Store) AllocationOf(host string) (Allocation, bool, error) {
	return s.allocation(`host=?`, host)
}

func (s *Store) allocation(where string, arg string) (Allocation, bool, error) {
	var a Allocation
	err := s.DB.QueryRow(`SELECT host, token, run, inventory FROM allocations WHERE `+where, arg).Scan(&a.Host, &a.Token, &a.Run, &a.Inventory)
	if errors.Is(err, sql.ErrNoRows) {
		return a, false, nil
	}
	return a, err == nil, err
}

// Allocations lists allocations, those of one run if run is not "".
func (s *Store) Allocations(run string) ([]Allocation, error) {
	rows, err := s.DB.Query(`SELECT host, token, run, inventory FROM allocations WHERE ?='' OR run=? ORDER BY host`, run, run)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Allocation
	for rows.Next() {
		var a Allocation
		if err := rows.Scan(&a.Host, &a.Token, &a.Run, &a.Inventory); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Release returns host to the pool.
func (s *Store) Release(host string) error {
	_, err := s.DB.Exec(`DELETE FROM allocations WHERE host=?`, host)
	return err
}
