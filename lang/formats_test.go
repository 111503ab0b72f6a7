package lang

import (
	"testing"

	"go.starlark.net/starlark"
)

// The static check refuses exactly the formats Starlark refuses when it
// runs them.
func TestFormatCheckAgreesWithStarlark(t *testing.T) {
	percent := []string{"%s", "%-10s", "%5d", "%.2f", "%d%%", "%(a)s", "%x %X %o %c", "%+d", "% d", "%r", "%10.3g", "%e"}
	for _, f := range percent {
		arg := `("x",)`
		switch {
		case f == "%(a)s":
			arg = `{"a": 1}`
		case f == "%x %X %o %c":
			arg = `(1, 2, 3, 65)`
		case f != "%s" && f != "%-10s" && f != "%r":
			arg = `(1,)`
		}
		_, err := starlark.Eval(&starlark.Thread{}, "f", `"`+f+`" % `+arg, nil)
		if refused, flagged := err != nil, badPercent(f) != ""; refused != flagged {
			t.Errorf("%q: Starlark error %v, static check flags it: %v", f, err, flagged)
		}
	}
	braces := []string{"{}", "{0}", "{name}", "{:>8}", "{0:d}", "{{}}", "{!r}", "{x!s:10}"}
	for _, f := range braces {
		_, err := starlark.Eval(&starlark.Thread{}, "f", `"`+f+`".format(1, name = 2, x = 3)`, nil)
		if refused, flagged := err != nil, badBraces(f) != ""; refused != flagged {
			t.Errorf("%q: Starlark error %v, static check flags it: %v", f, err, flagged)
		}
	}
}
