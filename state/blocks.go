package state

import (
	"database/sql"
	"errors"
	"time"
)

// Capacity blocks record placement candidates that answered they had no
// room, so that placements skip them for a while instead of asking
// again at once (as SkyPilot blocks a zone). They belong to the state
// file, not a run: every run on it meets the same clouds.

// A Block is a candidate skipped until Until.
type Block struct {
	Candidate string // the spec's identity (provider, flavor and fields)
	Label     string // what a reader calls it: aws/small
	Reason    string // the provider's answer
	Since     time.Time
	Until     time.Time
}

// BlockCandidate records b, replacing an older block of its candidate.
func (s *Store) BlockCandidate(b Block) error {
	_, err := s.DB.Exec(`INSERT INTO capacity_blocks(candidate, label, reason, since, until) VALUES(?,?,?,?,?)
		ON CONFLICT(candidate) DO UPDATE SET label=excluded.label, reason=excluded.reason, since=excluded.since, until=excluded.until`,
		b.Candidate, b.Label, b.Reason, b.Since.UnixMilli(), b.Until.UnixMilli())
	return err
}

// Blocked returns candidate's block if it lasts beyond at.
func (s *Store) Blocked(candidate string, at time.Time) (Block, bool, error) {
	b := Block{Candidate: candidate}
	var since, until int64
	err := s.DB.QueryRow(`SELECT label, reason, since, until FROM capacity_blocks WHERE candidate=? AND until>?`, candidate, at.UnixMilli()).
		Scan(&b.Label, &b.Reason, &since, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return b, false, nil
	}
	b.Since, b.Until = time.UnixMilli(since), time.UnixMilli(until)
	return b, err == nil, err
}
