package session

import (
	"sort"
	"strings"

	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/fleet"
	"github.com/kumo-dev/kumo/state"
)

// PickRun resolves --name for commands about an existing run: the name
// given, or the only run there is.
func PickRun(store *state.Store, name string) (string, error) {
	runs, err := store.Runs()
	if err != nil {
		return "", err
	}
	if name != "" {
		for _, r := range runs {
			if r.Name == name {
				return name, nil
			}
		}
		// A run with resources but no row (an interrupted REPL) still counts.
		if holds, err := fleet.New(store, name, nil).Holds(); err == nil && holds {
			return name, nil
		}
		return "", starkit.Inputf("no run named %q in %s%s", name, store.Path, RunList(runs))
	}
	switch len(runs) {
	case 0:
		return "", starkit.Inputf("no runs in %s", store.Path)
	case 1:
		return runs[0].Name, nil
	}
	return "", starkit.Inputf("several runs in %s; pick one with --name%s", store.Path, RunList(runs))
}

// RunList names the runs, for a message: " (runs: a, b)".
func RunList(runs []state.Run) string {
	if len(runs) == 0 {
		return ""
	}
	var names []string
	for _, r := range runs {
		names = append(names, r.Name)
	}
	sort.Strings(names)
	return " (runs: " + strings.Join(names, ", ") + ")"
}

// ValidRunName keeps run names usable in file names.
func ValidRunName(s string) error {
	if s == "" || strings.ContainsAny(s, "/\\\x00") || s == "." || s == ".." {
		return starkit.Inputf("bad run name %q", s)
	}
	return nil
}
