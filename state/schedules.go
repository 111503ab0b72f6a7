package state

import "time"

// A Schedule is what a schedule() of a run decided when it last ran, and
// what it will do next: what `kumo status` says of it.
type Schedule struct {
	Run       string
	Name      string
	Value     string // now, as the recipe reads it
	Rule      string // the rule that gives it ("otherwise" when none does)
	NextAt    time.Time
	NextValue string // zero NextAt: the value never changes
	NextRule  string
	UpdatedAt time.Time
}

// SetSchedule records sc, replacing what its run's schedule of that name
// recorded before.
func (s *Store) SetSchedule(sc Schedule) error {
	next := int64(0)
	if !sc.NextAt.IsZero() {
		next = sc.NextAt.UnixMilli()
	}
	_, err := s.DB.Exec(`INSERT INTO schedules(run, name, value, rule, next_at, next_value, next_rule, updated_at) VALUES(?,?,?,?,?,?,?,?)
		ON CONFLICT(run, name) DO UPDATE SET value=excluded.value, rule=excluded.rule, next_at=excluded.next_at,
		next_value=excluded.next_value, next_rule=excluded.next_rule, updated_at=excluded.updated_at`,
		sc.Run, sc.Name, sc.Value, sc.Rule, next, sc.NextValue, sc.NextRule, sc.UpdatedAt.UnixMilli())
	return err
}

// Schedules returns the schedules run recorded, by name.
func (s *Store) Schedules(run string) ([]Schedule, error) {
	rows, err := s.DB.Query(`SELECT name, value, rule, next_at, next_value, next_rule, updated_at FROM schedules WHERE run=? ORDER BY name`, run)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Schedule
	for rows.Next() {
		sc := Schedule{Run: run}
		var next, updated int64
		if err := rows.Scan(&sc.Name, &sc.Value, &sc.Rule, &next, &sc.NextValue, &sc.NextRule, &updated); err != nil {
			return nil, err
		}
		if next != 0 {
			sc.NextAt = time.UnixMilli(next)
		}
		sc.UpdatedAt = time.UnixMilli(updated)
		out = append(out, sc)
	}
	return out, rows.Err()
}
