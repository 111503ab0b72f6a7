package state

import (
	"database/sql"
	"encoding/json"
	"time"
)

// CellStatus is what the store knows of a cell's last live execution.
type CellStatus string

const (
	CellRunning CellStatus = "running" // started and not finished: it runs now, or its run was killed
	CellOK      CellStatus = "ok"
	CellFailed  CellStatus = "failed"
)

// A CellRecord is what the store knows of one cell of a run.
//
// A record has an ID of its own rather than being keyed by the cell's
// position: the runner matches the recipe's cells to their records by
// content (runner's alignment), so a cell keeps its journal, and
// the resources it made stay its own, when cells are inserted, removed
// or moved around it.
type CellRecord struct {
	ID         int64
	Index      int // the cell's position when it last ran
	Title      string
	SourceHash string
	Status     CellStatus
	Output     Output
	Duration   time.Duration
	Error      string
	// Inputs are digests of the values the cell read when it last
	// succeeded, by name; nil when not recorded (a file of an older kumo).
	Inputs map[string]string
	// Outputs are digests of the values it defined, by name.
	Outputs map[string]string
	// LiveGen grows each time the cell succeeds live: cells declared to
	// run after it ([after: ...]) compare it with the one they saw.
	LiveGen   int64
	UpdatedAt time.Time
}

const cellCols = `id, idx, title, source_hash, status, output, duration_ms, error, inputs, outputs, live_gen, updated_at`

// Cells returns the recorded cells of a run, in recipe order.
func (s *Store) Cells(run string) ([]CellRecord, error) {
	rows, err := s.DB.Query(`SELECT `+cellCols+` FROM cells WHERE run=? ORDER BY idx, id`, run)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CellRecord
	for rows.Next() {
		var c CellRecord
		var ms, upd int64
		var inputs sql.NullString
		var outputs, output string
		if err := rows.Scan(&c.ID, &c.Index, &c.Title, &c.SourceHash, &c.Status, &output, &ms, &c.Error, &inputs, &outputs, &c.LiveGen, &upd); err != nil {
			return nil, err
		}
		c.Output = decodeOutput(output)
		c.Duration = time.Duration(ms) * time.Millisecond
		c.UpdatedAt = time.UnixMilli(upd)
		if inputs.Valid {
			c.Inputs = map[string]string{}
			json.Unmarshal([]byte(inputs.String), &c.Inputs)
		}
		json.Unmarshal([]byte(outputs), &c.Outputs)
		out = append(out, c)
	}
	return out, rows.Err()
}

// Realign records where the recipe's cells are now: positions maps a
// record's id to its cell's index, and the records in drop (cells no
// longer in the recipe) are forgotten with their journals.
func (s *Store) Realign(run string, positions map[int64]int, drop []int64) error {
	return s.inTx(func(tx *sqlTx) error {
		for id, idx := range positions {
			if _, err := tx.Exec(`UPDATE cells SET idx=? WHERE run=? AND id=?`, idx, run, id); err != nil {
				return err
			}
		}
		for _, id := range drop {
			if _, err := tx.Exec(`DELETE FROM cells WHERE run=? AND id=?`, run, id); err != nil {
				return err
			}
			if _, err := tx.Exec(`DELETE FROM journal WHERE run=? AND cell=?`, run, id); err != nil {
				return err
			}
		}
		return nil
	})
}

// StartCell marks a cell as running live and drops its old journal: the
// calls it makes now replace the ones it made last time. A record without
// an ID is new and gets one.
func (s *Store) StartCell(run string, c *CellRecord) error {
	return s.inTx(func(tx *sqlTx) error {
		if c.ID == 0 {
			if err := tx.QueryRow(`SELECT coalesce(max(id), 0) + 1 FROM cells WHERE run=?`, run).Scan(&c.ID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(`DELETE FROM journal WHERE run=? AND cell=?`, run, c.ID); err != nil {
			return err
		}
		c.Status = CellRunning
		_, err := tx.Exec(`INSERT INTO cells(run, id, idx, title, status, updated_at) VALUES(?,?,?,?,?,?)
			ON CONFLICT(run, id) DO UPDATE SET idx=excluded.idx, title=excluded.title, status=excluded.status,
			source_hash='', output='', error='', inputs=NULL, outputs='{}', updated_at=excluded.updated_at`,
			run, c.ID, c.Index, c.Title, c.Status, now())
		return err
	})
}

// SetLiveOutput records what a running cell has printed so far, for
// kumo logs --follow in another terminal. A cell that has finished is
// left alone.
func (s *Store) SetLiveOutput(run string, id int64, o Output) error {
	_, err := s.DB.Exec(`UPDATE cells SET output=? WHERE run=? AND id=? AND status=?`,
		encodeOutput(o), run, id, CellRunning)
	return err
}

// FinishCell records the outcome of a live cell. A success gets the next
// live generation of the run.
func (s *Store) FinishCell(run string, c *CellRecord) error {
	return s.inTx(func(tx *sqlTx) error {
		if c.Status == CellOK {
			if err := tx.QueryRow(`SELECT coalesce(max(live_gen), 0) + 1 FROM cells WHERE run=?`, run).Scan(&c.LiveGen); err != nil {
				return err
			}
		}
		var inputs any // NULL when unknown
		if c.Inputs != nil {
			b, _ := json.Marshal(c.Inputs)
			inputs = string(b)
		}
		outputs, _ := json.Marshal(c.Outputs)
		if c.Outputs == nil {
			outputs = []byte("{}")
		}
		at := now()
		if _, err := tx.Exec(`UPDATE cells SET idx=?, title=?, source_hash=?, status=?, output=?, duration_ms=?, error=?,
			inputs=?, outputs=?, live_gen=?, updated_at=? WHERE run=? AND id=?`,
			c.Index, c.Title, c.SourceHash, c.Status, encodeOutput(c.Output), c.Duration.Milliseconds(), c.Error,
			inputs, string(outputs), c.LiveGen, at, run, c.ID); err != nil {
			return err
		}
		return keepHistory(tx, run, c, at)
	})
}

// HistoryPerCell is how many live runs of a cell its history keeps.
const HistoryPerCell = 50

// keepHistory adds a live run of c that printed something or failed to
// the cell's history, and forgets the oldest beyond HistoryPerCell: what
// a watch did over its ticks, not only the last time.
func keepHistory(tx *sqlTx, run string, c *CellRecord, at int64) error {
	if len(c.Output) == 0 && c.Error == "" {
		return nil
	}
	if _, err := tx.Exec(`INSERT INTO cell_history(run, cell, idx, title, status, output, duration_ms, error, finished_at) VALUES(?,?,?,?,?,?,?,?,?)`,
		run, c.ID, c.Index, c.Title, c.Status, encodeOutput(c.Output), c.Duration.Milliseconds(), c.Error, at); err != nil {
		return err
	}
	_, err := tx.Exec(`DELETE FROM cell_history WHERE run=? AND cell=? AND seq NOT IN
		(SELECT seq FROM cell_history WHERE run=? AND cell=? ORDER BY seq DESC LIMIT ?)`, run, c.ID, run, c.ID, HistoryPerCell)
	return err
}

// History returns run's cell history, oldest first: each live run of a
// cell that printed something or failed (the last HistoryPerCell of each
// cell), as CellRecords with UpdatedAt the time it finished.
func (s *Store) History(run string) ([]CellRecord, error) {
	rows, err := s.DB.Query(`SELECT cell, idx, title, status, output, duration_ms, error, finished_at FROM cell_history WHERE run=? ORDER BY seq`, run)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CellRecord
	for rows.Next() {
		var c CellRecord
		var output string
		var ms, at int64
		if err := rows.Scan(&c.ID, &c.Index, &c.Title, &c.Status, &output, &ms, &c.Error, &at); err != nil {
			return nil, err
		}
		c.Output, c.Duration, c.UpdatedAt = decodeOutput(output), time.Duration(ms)*time.Millisecond, time.UnixMilli(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
