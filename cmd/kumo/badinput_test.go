package main

import (
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestBadInput runs the bad-input corpus in testdata/badinput: recipes,
// parameters, flavors files and inventories a user could get wrong. Each
// case runs kumo once and expects exit 2 (exit2), the message that says
// where and what to do (stderr), and nothing made (nothing).
func TestBadInput(t *testing.T) {
	t.Parallel()
	cases, _ := filepath.Glob("testdata/badinput/*.txtar")
	if len(cases) < 40 {
		t.Errorf("the corpus has %d cases; it keeps at least 40", len(cases))
	}
	for _, c := range cases {
		b, _ := os.ReadFile(c)
		text := string(b)
		if !strings.Contains(text, "\nexit2 kumo ") || !strings.Contains(text, "\nstderr ") || !strings.Contains(text, "\nnothing\n") {
			t.Errorf("%s: a case runs `exit2 kumo ...`, checks stderr and ends with `nothing`", c)
		}
	}
	testscript.Run(t, scriptParams(t, "testdata/badinput"))
}

// exit2 CMD ARGS... runs a command, keeping its output for stdout and
// stderr, and wants it to exit 2.
func cmdExit2(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: exit2 command [args...]")
	}
	err := ts.Exec(args[0], args[1:]...)
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		ts.Fatalf("%s succeeded; want exit 2", strings.Join(args, " "))
	case !errors.As(err, &exitErr):
		ts.Fatalf("%s: %v", strings.Join(args, " "), err)
	case exitErr.ExitCode() != 2:
		ts.Fatalf("%s exited %d; want 2", strings.Join(args, " "), exitErr.ExitCode())
	}
}

// nothing checks, from outside kumo, that nothing was made under $WORK:
// no process, no local or container node, and no node, unit or
// allocation in any state there.
func cmdNothing(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: nothing")
	}
	work := ts.Getenv("WORK")
	if pids := processesUnder(work); len(pids) > 0 {
		ts.Fatalf("processes under $WORK: %v", pids)
	}
	filepath.WalkDir(work, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		switch {
		case d.Name() == "meta.json":
			ts.Fatalf("a node was made: %s", path)
		case d.Name() == "state.db" && filepath.Base(filepath.Dir(path)) == ".kumo":
			db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
			ts.Check(err)
			defer db.Close()
			var n int
			ts.Check(db.QueryRow(`SELECT (SELECT COUNT(*) FROM resources WHERE kind != 'group') + (SELECT COUNT(*) FROM allocations)`).Scan(&n))
			if n > 0 {
				ts.Fatalf("%s records %d units, nodes or allocations", path, n)
			}
		}
		return nil
	})
}
