package main

import (
	"sort"
	"strings"
	"testing"

	"github.com/kumo-dev/kumo/builtins/all"
	"github.com/kumo-dev/kumo/builtins/units"
	"github.com/kumo-dev/kumo/lang"
)

func complete(c *completer, line string) ([]string, int) {
	out, n := c.Do([]rune(line), len([]rune(line)))
	var s []string
	for _, r := range out {
		s = append(s, string(r))
	}
	sort.Strings(s)
	return s, n
}

func TestCompleter(t *testing.T) {
	s := lang.NewSession(".", all.Globals())
	s.Globals["ug"] = &units.UnitGroup{Run: "r", Name: "g"}
	c := &completer{s: s}

	got, n := complete(c, "x = ssh_")
	if strings.Join(got, ",") != "run" || n != 4 {
		t.Errorf("ssh_ completes to %v (replacing %d), want run", got, n)
	}
	got, _ = complete(c, "wait_")
	if strings.Join(got, ",") != "http,port" {
		t.Errorf("wait_ completes to %v", got)
	}
	got, n = complete(c, "ug.find")
	if strings.Join(got, ",") != "_ip_addresses" || n != 4 {
		t.Errorf("ug.find completes to %v (replacing %d)", got, n)
	}
	got, _ = complete(c, "ug.")
	if len(got) != 6 || got[0] != "create_unit" {
		t.Errorf("ug. completes to %v, want name and the group's methods", got)
	}
	got, _ = complete(c, "le")
	if strings.Join(got, ",") != "n" {
		t.Errorf("le completes to %v, want the universe's len", got)
	}
}
