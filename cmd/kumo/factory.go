package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/term"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/lang/state"
	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/providers/local"
)

// defaultStatePath is relative to the current folder, like .git.
const defaultStatePath = ".kumo/state.db"

// factory gives commands what they share: IO and the state.
type factory struct {
	IO
	statePath *string
}

func (f *factory) openStore() (*state.Store, error) {
	return state.Open(*f.statePath)
}

// providersFor returns every provider kumo knows, keeping their data
// beside the state.
func providersFor(store *state.Store) map[string]providers.Provider {
	return map[string]providers.Provider{
		"local": local.New(filepath.Join(store.Dir(), "local")),
	}
}

// newEnv is the builtins' view of run.
func newEnv(store *state.Store, run string) *builtins.Env {
	return &builtins.Env{Run: run, Store: store, Providers: providersFor(store), Secrets: &builtins.Masker{}}
}

// isTerminal reports whether w is a terminal (colour, prompts).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// pickRun resolves --name for commands about an existing run: the name
// given, or the only run there is.
func pickRun(store *state.Store, name string) (string, error) {
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
		if rs, err := store.Resources(state.Query{Run: name}); err == nil && len(rs) > 0 {
			return name, nil
		}
		return "", usageError{fmt.Errorf("no run named %q in %s%s", name, store.Path, runList(runs))}
	}
	switch len(runs) {
	case 0:
		return "", usageError{fmt.Errorf("no runs in %s", store.Path)}
	case 1:
		return runs[0].Name, nil
	}
	return "", usageError{fmt.Errorf("several runs in %s; pick one with --name%s", store.Path, runList(runs))}
}

func runList(runs []state.Run) string {
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

// validRunName keeps run names usable in file names.
func validRunName(s string) error {
	if s == "" || strings.ContainsAny(s, "/\\\x00") || s == "." || s == ".." {
		return usageError{fmt.Errorf("bad run name %q", s)}
	}
	return nil
}
