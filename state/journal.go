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
// resources the call made (or found already made by the same call
// before) and deleted: with them the runner tells which cell to run
// again when something it made has vanished from the world, and which
// cells changed a unit group or unit that a later cell uses.
type Call struct {
	Cell       int64 // the cell record's ID
	Seq        int
	Builtin    string
	ArgsDigest string
	Args       string
	Result     string // the encoded Starlark value
	Duration   time.Duration
	Made       []Effect
	Deleted    []Effect
}

// An Effect is a resource a call made or deleted: its token, and the
// group and unit it belongs to (a group's own Unit is "").
type Effect struct {
	Token string `json:"token"`
	Group string `json:"group,omitempty"`
	Unit  string `json:"unit,omitempty"`
	// Detail tells one change of a kept resource from another (a digest
	// of a group's variables after the call set them).
	Detail string `json:"detail,omitempty"`
}

// EffectOf is the effect on r.
func EffectOf(r Resource) Effect { return Effect{Token: r.Token, Group: r.Group, Unit: r.Unit} }

// In reports whether the effect is on the unit group, or on the unit
// when unit is set (the group's own record counts for its units).
func (e Effect) In(group, unit string) bool {
	return e.Group == group && (unit == "" || e.Unit == unit || e.Unit == "")
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
		c.Made, c.Deleted = effectList(made), effectList(deleted)
		out = append(out, c)
	}
	return out, rows.Err()
}

// AppendCall journals one call. It is a transaction of its own, committed
// durably before the builtin's result reaches the recipe.
func (s *Store) AppendCall(run string, c Call) error {
	_, err := s.DB.Exec(`INSERT INTO journal(run, cell, seq, builtin, args_digest, args, result, duration_ms, made, deleted) VALUES(?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(run, cell, seq) DO UPDATE SET builtin=excluded.builtin, args_digest=excluded.args_digest, args=excluded.args,
		result=excluded.result, duration_ms=excluded.duration_ms, made=excluded.made, deleted=excluded.deleted`,
		run, c.Cell, c.Seq, c.Builtin, c.ArgsDigest, c.Args, c.Result, c.Duration.Milliseconds(), effectText(c.Made), effectText(c.Deleted))
	return err
}

// CellEffects are what a cell's journal says it made and deleted.
type CellEffects struct {
	Made, Deleted []Effect
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
		e.Made = append(e.Made, effectList(made)...)
		e.Deleted = append(e.Deleted, effectList(deleted)...)
		out[cell] = e
	}
	return out, rows.Err()
}

func effectText(effects []Effect) string {
	if len(effects) == 0 {
		return ""
	}
	b, _ := json.Marshal(effects)
	return string(b)
}

// effectList reads a journal's effects; a state written before they had
// a scope holds bare tokens.
func effectList(s string) []Effect {
	if s == "" {
		return nil
	}
	var out []Effect
	if json.Unmarshal([]byte(s), &out) == nil {
		return out
	}
	out = nil // what the failed decode left
	var tokens []string
	json.Unmarshal([]byte(s), &tokens)
	for _, t := range tokens {
		out = append(out, Effect{Token: t})
	}
	return out
}

// Effects collects what one call makes and deletes. The resource engine
// adds to it from its goroutines while the call runs; the journal reads
// it when the call returns.
type Effects struct {
	mu      sync.Mutex
	made    []Effect
	deleted []Effect
}

// Made notes that the call made (or kept) r.
func (e *Effects) Made(r Resource) {
	if e == nil {
		return
	}
	e.mu.Lock()
	e.made = append(e.made, EffectOf(r))
	e.mu.Unlock()
}

// Changed notes that the call changed r (kept, as Made), detail telling
// how.
func (e *Effects) Changed(r Resource, detail string) {
	if e == nil {
		return
	}
	x := EffectOf(r)
	x.Detail = detail
	e.mu.Lock()
	e.made = append(e.made, x)
	e.mu.Unlock()
}

// Deleted notes that the call deleted r.
func (e *Effects) Deleted(r Resource) {
	if e == nil {
		return
	}
	e.mu.Lock()
	e.deleted = append(e.deleted, EffectOf(r))
	e.mu.Unlock()
}

// Lists returns what was noted so far.
func (e *Effects) Lists() (made, deleted []Effect) {
	if e == nil {
		return nil, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Effect(nil), e.made...), append([]Effect(nil), e.deleted...)
}
