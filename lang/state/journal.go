package state

import "time"

// A Call is one journaled call of an effectful builtin.
//
// Args holds a readable rendering of the arguments (secrets appear as
// <secret NAME>, never their value) so that a divergence can show both
// sides; ArgsDigest is what replay compares.
type Call struct {
	Cell       int
	Seq        int
	Builtin    string
	ArgsDigest string
	Args       string
	Result     string // the encoded Starlark value
	Duration   time.Duration
}

// Calls returns the journal of one cell, in call order.
func (s *Store) Calls(run string, cell int) ([]Call, error) {
	rows, err := s.DB.Query(`SELECT cell, seq, builtin, args_digest, args, result, duration_ms FROM journal WHERE run=? AND cell=? ORDER BY seq`, run, cell)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Call
	for rows.Next() {
		var c Call
		var ms int64
		if err := rows.Scan(&c.Cell, &c.Seq, &c.Builtin, &c.ArgsDigest, &c.Args, &c.Result, &ms); err != nil {
			return nil, err
		}
		c.Duration = time.Duration(ms) * time.Millisecond
		out = append(out, c)
	}
	return out, rows.Err()
}

// AppendCall journals one call. It is a transaction of its own, committed
// durably before the builtin's result reaches the recipe.
func (s *Store) AppendCall(run string, c Call) error {
	_, err := s.DB.Exec(`INSERT OR REPLACE INTO journal(run, cell, seq, builtin, args_digest, args, result, duration_ms) VALUES(?,?,?,?,?,?,?,?)`,
		run, c.Cell, c.Seq, c.Builtin, c.ArgsDigest, c.Args, c.Result, c.Duration.Milliseconds())
	return err
}
