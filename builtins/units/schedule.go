package units

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.starlark.net/starlark"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/state"
)

var scheduleBuiltin = &builtins.Def{
	Name: "schedule",
	Doc: `schedule(rules=None, otherwise=None, file=None, name="schedule")
Returns the value a schedule gives now, such as a node count: the value
of the first rule whose window holds the current local time, otherwise
otherwise. rules is a dict from windows to values:

    compute_nodes = schedule({"mon-fri 09:00-18:00": 8}, otherwise = 2)

A window is [DAYS] HH:MM-HH:MM: DAYS is daily (the default), weekdays,
weekends, or days and ranges such as mon-fri or sat,sun; a window whose
end is not after its start runs past midnight (fri 22:00-06:00 ends on
Saturday). file= reads the rules from a file beside the recipe instead,
one "WINDOW VALUE" a line and "otherwise VALUE", # for comments. Put it
in the [parameters] cell: that cell runs on every run, so the cells that
read the value replay while it holds and run when it changes (kumo watch
runs the recipe on a period). The run records what the schedule gives
and when it changes next, which kumo status shows under name.`,
	Fn: scheduleFn,
}

// A window is a rule's days and time of day.
type window struct {
	text       string
	days       [7]bool // by time.Weekday
	start, end int     // minutes of the day; end <= start runs past midnight
}

type rule struct {
	win   window
	value starlark.Value
}

func scheduleFn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var rulesArg, otherwise, fileArg starlark.Value = starlark.None, starlark.None, starlark.None
	name := "schedule"
	if err := builtins.Unpack(b, args, kwargs, "rules?", &rulesArg, "otherwise?", &otherwise, "file?", &fileArg, "name?", &name); err != nil {
		return nil, err
	}
	var rules []rule
	switch {
	case rulesArg != starlark.None && fileArg != starlark.None:
		return nil, builtins.Inputf(b, "give rules or file, not both")
	case fileArg != starlark.None:
		file, ok := starlark.AsString(fileArg)
		if !ok {
			return nil, builtins.Inputf(b, "for parameter file: got %s, want string", fileArg.Type())
		}
		var err error
		if rules, otherwise, err = readSchedule(thread, file, otherwise); err != nil {
			return nil, builtins.Inputf(b, "%v", err)
		}
	case rulesArg != starlark.None:
		d, ok := rulesArg.(*starlark.Dict)
		if !ok {
			return nil, builtins.Inputf(b, "for parameter rules: got %s, want dict of window to value", rulesArg.Type())
		}
		for _, item := range d.Items() {
			text, ok := starlark.AsString(item[0])
			if !ok {
				return nil, builtins.Inputf(b, "rules: got %s key, want a window such as \"mon-fri 09:00-18:00\"", item[0].Type())
			}
			w, err := parseWindow(text)
			if err != nil {
				return nil, builtins.Inputf(b, "rules: %v", err)
			}
			rules = append(rules, rule{w, item[1]})
		}
	default:
		return nil, builtins.Inputf(b, "give rules (a dict of window to value) or file=")
	}
	if otherwise == starlark.None {
		return nil, builtins.Inputf(b, "otherwise= is missing: what the schedule gives outside its windows")
	}
	now := time.Now()
	value, why := valueAt(rules, otherwise, now)
	if env, err := builtins.FromThread(thread); err == nil && env.Store != nil && !env.Planning {
		sc := state.Schedule{Run: env.Run, Name: name, Value: value.String(), Rule: why, UpdatedAt: now}
		if at, next, nextWhy, ok := nextChange(rules, otherwise, now); ok {
			sc.NextAt, sc.NextValue, sc.NextRule = at, next.String(), nextWhy
		}
		if err := env.Store.SetSchedule(sc); err != nil {
			return nil, err
		}
	}
	return value, nil
}

// valueAt is the value the schedule gives at t, and the rule giving it.
func valueAt(rules []rule, otherwise starlark.Value, t time.Time) (starlark.Value, string) {
	for _, r := range rules {
		if r.win.holds(t) {
			return r.value, r.win.text
		}
	}
	return otherwise, "otherwise"
}

// nextChange finds the first minute within a week after t at which the
// schedule gives another value.
func nextChange(rules []rule, otherwise starlark.Value, t time.Time) (time.Time, starlark.Value, string, bool) {
	now, _ := valueAt(rules, otherwise, t)
	m := t.Truncate(time.Minute)
	for i := 1; i <= 8*24*60; i++ {
		at := m.Add(time.Duration(i) * time.Minute)
		if v, why := valueAt(rules, otherwise, at); !equalValues(v, now) {
			return at, v, why, true
		}
	}
	return time.Time{}, nil, "", false
}

func equalValues(a, b starlark.Value) bool {
	eq, err := starlark.Equal(a, b)
	return err == nil && eq
}

func (w window) holds(t time.Time) bool {
	tod := t.Hour()*60 + t.Minute()
	day := t.Weekday()
	if w.start < w.end {
		return w.days[day] && tod >= w.start && tod < w.end
	}
	yesterday := (day + 6) % 7
	return w.days[day] && tod >= w.start || w.days[yesterday] && tod < w.end
}

var dayNames = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// parseWindow reads "[DAYS] HH:MM-HH:MM".
func parseWindow(text string) (window, error) {
	w := window{text: text}
	fields := strings.Fields(strings.ToLower(text))
	if len(fields) == 0 || len(fields) > 2 {
		return w, fmt.Errorf("window %q: want [DAYS] HH:MM-HH:MM, as \"mon-fri 09:00-18:00\"", text)
	}
	days := "daily"
	if len(fields) == 2 {
		days = fields[0]
	}
	if err := w.setDays(days); err != nil {
		return w, fmt.Errorf("window %q: %v", text, err)
	}
	span := fields[len(fields)-1]
	from, to, ok := strings.Cut(span, "-")
	var err error
	if ok {
		if w.start, err = minuteOfDay(from); err == nil {
			w.end, err = minuteOfDay(to)
		}
	}
	if !ok || err != nil {
		return w, fmt.Errorf("window %q: want its times as HH:MM-HH:MM, as 09:00-18:00", text)
	}
	if w.start == w.end {
		return w, fmt.Errorf("window %q is empty: its start and end are the same time", text)
	}
	return w, nil
}

func (w *window) setDays(days string) error {
	switch days {
	case "daily":
		days = "sun-sat"
	case "weekdays":
		days = "mon-fri"
	case "weekends":
		days = "sat,sun"
	}
	for _, part := range strings.Split(days, ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, okA := dayNames[from]
		b, okB := dayNames[to]
		if !isRange {
			b, okB = a, okA
		}
		if !okA || !okB {
			return fmt.Errorf("unknown days %q: use daily, weekdays, weekends, or mon..sun as mon-fri or sat,sun", part)
		}
		for d := a; ; d = (d + 1) % 7 {
			w.days[d] = true
			if d == b {
				break
			}
		}
	}
	return nil
}

func minuteOfDay(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh > 24 || hh == 24 && mm != 0 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return hh*60 + mm, nil
}

// readSchedule reads a schedule file beside the recipe: "WINDOW VALUE"
// lines and "otherwise VALUE". An otherwise= given to the call counts
// when the file has none.
func readSchedule(thread *starlark.Thread, file string, otherwise starlark.Value) ([]rule, starlark.Value, error) {
	if dir := starkit.RecipeDir(thread); dir != "" && !filepath.IsAbs(file) {
		file = filepath.Join(dir, file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the schedule: %v", err)
	}
	var rules []rule
	for i, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		where := fmt.Sprintf("%s:%d", filepath.Base(file), i+1)
		if len(fields) < 2 {
			return nil, nil, fmt.Errorf("%s: want WINDOW VALUE, as \"mon-fri 09:00-18:00 8\", or \"otherwise VALUE\"", where)
		}
		value := scheduleValue(fields[len(fields)-1])
		if len(fields) == 2 && strings.ToLower(fields[0]) == "otherwise" {
			otherwise = value
			continue
		}
		w, err := parseWindow(strings.Join(fields[:len(fields)-1], " "))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v", where, err)
		}
		rules = append(rules, rule{w, value})
	}
	return rules, otherwise, nil
}

// scheduleValue reads a value of a schedule file: a number, or text.
func scheduleValue(s string) starlark.Value {
	if n, err := strconv.Atoi(s); err == nil {
		return starlark.MakeInt(n)
	}
	return starlark.String(strings.Trim(s, `"`))
}
