package state

import (
	"encoding/json"
	"sync"
	"time"
)

// A Call is one journaled call of an effectful builtin.
//
// Args holds a readable rendering of the arguments (secrets appear as
// <secret NAME>, never their value) so that a divergence can show both
// sides; ArgsDigest is what replay compares. Made and Deleted are the
// tokens of the resources the call made (or found already made by the
// same call before) and deleted: with them the runner tells which cell
// to run again when something it made has vanished from the world.
type Call struct {
	Cell       int64 // the cell record's ID
	Seq        int
	Builtin    string
	ArgsDigest string
	Args       string
	Result     string // the encoded Starlark value
	Duration   time.Duration
	Made       []string
	Deleted    []string
}

// Calls returns the journal of one cell, in call order.
func (s *Store) Calls(run string, cell int64) ([]Call, error) {
	rows, err := s.DB.Query(`SELECT cell, seq, builtin, args_digest, args, result, duration_ms, made, deleted FROM journal WHERE run=? AND cell=? ORDER BY seq`, run, cell)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Call
	for rows.Next() {
		var c Call
		var ms int64
		var made, deleted string
		if err := rows.Scan(&c.Cell, &c.Seq, &c.Builtin, &c.ArgsDigest, &c.Args, &c.Result, &ms, &made, &deleted); err != nil {
			return nil, err
		}
		c.Duration = time.Duration(ms) * time.Millisecond
		c.Made, c.Deleted = tokenList(made), tokenList(deleted)
		out = append(out, c)
	}
	return out, rows.Err()
}

// AppendCall journals one call. It is a transaction of its own, committed
// durably before the builtin's result reaches the recipe.
func (s *Store) AppendCall(run string, c Call) error {
	_, err := s.DB.Exec(`INSERT OR REPLACE INTO journal(run, cell, seq, builtin, args_digest, args, result, duration_ms, made, deleted) VALUES(?,?,?,?,?,?,?,?,?,?)`,
		run, c.Cell, c.Seq, c.Builtin, c.ArgsDigest, c.Args, c.Result, c.Duration.Milliseconds(), tokenText(c.Made), tokenText(c.Deleted))
	return err
}

// CellEffects are the tokens a cell's journal says it made and deleted.
type CellEffects struct {
	Made, Deleted []string
}

// Effects returns, per cell record ID, what the journaled calls of the
// run's cells made and deleted.
func (s *Store) Effects(run string) (map[int64]CellEffects, error) {
	rows, err := s.DB.Query(`SELECT cell, made, deleted FROM journal WHERE run=? AND (made != '' OR deleted != '') ORDER BY cell, seq`, run)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]CellEffects{}
	for rows.Next() {
		var cell int64
		var made, deleted string
		if err := rows.Scan(&cell, &made, &deleted); err != nil {
			return nil, err
		}
		e := out[cell]
		e.Made = append(e.Made, tokenList(made)...)
		e.Deleted = append(e.Deleted, tokenList(deleted)...)
		out[cell] = e
	}
	return out, rows.Err()
}

func tokenText(tokens []string) string {
	if len(tokens) == 0 {
		return ""
	}
	b, _ := json.Marshal(tokens)
	return string(b)
}

func tokenList(s string) []string {
	var out []string
	if s != "" {
		json.Unmarshal([]byte(s), &out)
	}
	return out
}

// Effects collects what one call makes and deletes. The resource engine
// adds to it from its goroutines while the call runs; the journal reads
// it when the call returns.
type Effects struct {
	mu      sync.Mutex
	made    []string
	deleted []string
}

// Made notes that the call made (or kept) the resource with token.
func (e *Effects) Made(token string) {
	if e == nil {
		return
	}
	e.mu.Lock()
	e.made = append(e.made, token)
	e.mu.Unlock()
}

// Deleted notes that the call deleted the resource with token.
func (e *Effects) Deleted(token string) {
	if e == nil {
		return
	}
	e.mu.Lock()
	e.deleted = append(e.deleted, token)
	e.mu.Unlock()
}

// Lists returns the tokens noted so far.
func (e *Effects) Lists() (made, deleted []string) {
	if e == nil {
		return nil, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.made...), append([]string(nil), e.deleted...)
}
