package units

import (
	"strings"
	"testing"
	"time"

	"go.starlark.net/starlark"
)

func TestScheduleWindows(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("Mon 2006-01-02 15:04", s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	office, err := parseWindow("mon-fri 09:00-18:00")
	if err != nil {
		t.Fatal(err)
	}
	night, err := parseWindow("fri 22:00-06:00")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		w    window
		at   string
		want bool
	}{
		{office, "Mon 2026-11-30 09:00", true},
		{office, "Mon 2026-11-30 08:59", false},
		{office, "Fri 2026-12-04 17:59", true},
		{office, "Fri 2026-12-04 18:00", false},
		{office, "Sat 2026-12-05 12:00", false},
		{night, "Fri 2026-12-04 23:30", true},
		{night, "Sat 2026-12-05 05:59", true},
		{night, "Sat 2026-12-05 06:00", false},
		{night, "Thu 2026-12-03 23:30", false},
		{night, "Fri 2026-12-04 05:00", false}, // Thursday's night is not in it
	} {
		if got := c.w.holds(at(c.at)); got != c.want {
			t.Errorf("%q holds %s = %v, want %v", c.w.text, c.at, got, c.want)
		}
	}
	rules := []rule{{office, starlark.MakeInt(8)}}
	two := starlark.MakeInt(2)
	next, v, why, ok := nextChange(rules, two, at("Fri 2026-12-04 17:30"))
	if !ok || !next.Equal(at("Fri 2026-12-04 18:00")) || v.String() != "2" || why != "otherwise" {
		t.Errorf("next change from Friday 17:30 = %v %v %q %v", next, v, why, ok)
	}
	next, v, why, _ = nextChange(rules, two, at("Fri 2026-12-04 18:00"))
	if !next.Equal(at("Mon 2026-12-07 09:00")) || v.String() != "8" || why != office.text {
		t.Errorf("next change from Friday 18:00 = %v %v %q", next, v, why)
	}
	if _, _, _, ok := nextChange(nil, two, at("Fri 2026-12-04 18:00")); ok {
		t.Error("a schedule without rules changes")
	}
	for _, bad := range []string{"mon-fri", "9-18", "funday 09:00-10:00", "09:00-09:00", "mon 25:00-26:00", "a b c"} {
		if _, err := parseWindow(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("parseWindow(%q) = %v, want an error naming it", bad, err)
		}
	}
}
