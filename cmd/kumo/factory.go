package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/term"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/providers/aws"
	"github.com/kumo-dev/kumo/providers/container"
	"github.com/kumo-dev/kumo/providers/local"
	"github.com/kumo-dev/kumo/providers/onprem"
	"github.com/kumo-dev/kumo/providers/openstack"
	"github.com/kumo-dev/kumo/state"
)

// stateName is where a recipe's state lives, relative to the recipe's
// folder: the state goes with the recipe, so that it is found from any
// working directory.
const stateName = ".kumo/state.db"

// factory gives commands what they share: IO and the state.
type factory struct {
	IO
	statePath *string // --state; "" for the default
}

// teamStateFile, beside recipes (or in a folder above them), names the
// state they share: one line, a PostgreSQL URL without credentials
// (postgres://db.example.org/kumo?environment=class). Every admin's kumo
// in a checkout of the recipes finds the team's state through it.
const teamStateFile = "kumo.state"

// statePathFor is the state of the recipe file (or of the working
// directory when file is ""): --state, else $KUMO_STATE, else the one a
// kumo.state file beside it or above it names, else .kumo/state.db
// beside it.
func (f *factory) statePathFor(file string) string {
	if loc := f.namedState(); loc != "" {
		return loc
	}
	dir := "."
	if file != "" {
		dir = filepath.Dir(file)
	}
	if loc, _ := teamState(dir); loc != "" {
		return loc
	}
	if file == "" {
		return stateName
	}
	return filepath.Join(filepath.Dir(file), stateName)
}

// namedState is the state --state or $KUMO_STATE names, "" if neither.
func (f *factory) namedState() string {
	if *f.statePath != "" {
		return *f.statePath
	}
	return os.Getenv("KUMO_STATE")
}

// teamState reads the kumo.state file in dir or the nearest folder above
// it: the location it names and the folder it is in.
func teamState(dir string) (location, in string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", ""
	}
	for {
		if b, err := os.ReadFile(filepath.Join(abs, teamStateFile)); err == nil {
			return strings.TrimSpace(string(b)), abs
		}
		parent := filepath.Dir(abs)
		if parent == abs {
			return "", ""
		}
		abs = parent
	}
}

// storeFor opens (creating it if needed) the state of the recipe file.
func (f *factory) storeFor(file string) func() (*state.Store, error) {
	return func() (*state.Store, error) {
		dir := "."
		if file != "" {
			dir = filepath.Dir(file)
		}
		return openState(f.statePathFor(file), filepath.Join(dir, ".kumo"))
	}
}

// openExistingStore opens the state for commands about runs that exist
// (status, logs, destroy): --state or $KUMO_STATE, else the state a
// kumo.state file here or above names, else .kumo/state.db in the
// working directory or the nearest folder above it that has one, as git
// finds .git. They never leave a new state file behind.
func (f *factory) openExistingStore() (*state.Store, error) {
	path := f.namedState()
	local := ".kumo"
	if path == "" {
		if loc, in := teamState("."); loc != "" {
			path, local = loc, filepath.Join(in, ".kumo")
		}
	}
	if state.IsPostgres(path) {
		return openState(path, local)
	}
	if path == "" {
		path = findState()
	}
	if path == "" {
		return nil, usageError{error: fmt.Errorf("no kumo state here: no %s in this folder or above it. Run this from the recipe's folder, or give --state", stateName)}
	}
	if _, err := os.Stat(path); err != nil {
		return nil, usageError{error: fmt.Errorf("no state at %s: no run has used it yet (give --state to use another file)", path)}
	}
	return openState(path, filepath.Dir(path))
}

// findState looks for .kumo/state.db from the working directory up.
func findState() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	if _, err := os.Stat(stateName); err == nil {
		return stateName
	}
	for {
		path := filepath.Join(dir, stateName)
		if _, err := os.Stat(path); err == nil {
			return path
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// openState opens a state file or a PostgreSQL environment (whose local
// folder, for keys, locks and local nodes, is local), saying which a
// failure is about.
func openState(path, local string) (*state.Store, error) {
	if state.IsPostgres(path) {
		if u, err := url.Parse(path); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				return nil, usageError{error: fmt.Errorf("the state URL holds a password: kumo keeps credentials out of its files and its state. Give it through PGPASSWORD, ~/.pgpass or PGSERVICE, and the URL without it")}
			}
		}
		s, err := state.OpenPostgres(path, local)
		if err != nil {
			return nil, err // it names the server and says what failed
		}
		return s, nil
	}
	s, err := state.Open(path)
	var damaged *state.DamagedError
	var storage *state.StorageError
	switch {
	case errors.As(err, &damaged), errors.As(err, &storage):
		return nil, err // they name the file and say what to do
	case err != nil:
		return nil, fmt.Errorf("opening the state %s: %w", path, err)
	}
	return s, nil
}

// providersFor returns every provider kumo knows, keeping their data
// beside the state.
func providersFor(store *state.Store) map[string]providers.Provider {
	return newProviders(store.Dir(), store)
}

// newProviders makes the providers with local nodes under dir and
// on-prem allocations in alloc.
func newProviders(dir string, alloc onprem.Allocator) map[string]providers.Provider {
	return map[string]providers.Provider{
		"local":     local.New(filepath.Join(dir, "local")),
		"container": container.New(filepath.Join(dir, "container")),
		"onprem":    onprem.New(alloc),
		"aws":       aws.New(),
		"openstack": openstack.New(),
	}
}

// newEnv is the builtins' view of run.
func newEnv(store *state.Store, run string) *builtins.Env {
	return &builtins.Env{Run: run, Store: store, Providers: providersFor(store), Secrets: &builtins.Masker{}, Fault: faultFromEnv()}
}

// faultFromEnv lets the crash tests kill kumo -9 at an exact point of
// the resource engine: with KUMO_FAULT=after-create, kumo dies right
// after a provider made a node and before the state recorded it, the
// window the intent rows cover.
func faultFromEnv() func(string) {
	want := os.Getenv("KUMO_FAULT")
	if want == "" {
		return nil
	}
	return func(point string) {
		if point == want {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
}

// heldRun is a run this process holds the lock of, with the env its
// builtins use. Commands that change a run (run, repl, destroy) take one.
type heldRun struct {
	Env  *builtins.Env
	lock *state.Lock

	mu     sync.Mutex
	joined map[string]*state.Lock // other runs whose unit groups this one works on
}

// holdRun locks run, failing at once if another live process holds it.
func holdRun(store *state.Store, run string) (*heldRun, error) {
	lock, err := store.LockRun(run)
	if err != nil {
		return nil, err
	}
	h := &heldRun{Env: newEnv(store, run), lock: lock, joined: map[string]*state.Lock{}}
	h.Env.Join = func(other string) error { return h.join(store, other) }
	return h, nil
}

// join takes the lock of another run whose unit group this run works on,
// once, and keeps it until Release: two processes never change one
// run's resources at once.
func (h *heldRun) join(store *state.Store, run string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.joined[run]; ok {
		return nil
	}
	lock, err := store.LockRun(run)
	if err != nil {
		return err
	}
	h.joined[run] = lock
	return nil
}

// Release closes the run's connections and unlocks it and the runs it
// joined.
func (h *heldRun) Release() {
	h.Env.Close()
	h.mu.Lock()
	for _, l := range h.joined {
		l.Unlock()
	}
	h.mu.Unlock()
	h.lock.Unlock()
}

// interruptible is ctx cancelled by Ctrl-C or SIGTERM, so that long
// builtins stop cleanly and the state records where the run stopped.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
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
		return "", usageError{error: fmt.Errorf("no run named %q in %s%s", name, store.Path, runList(runs))}
	}
	switch len(runs) {
	case 0:
		return "", usageError{error: fmt.Errorf("no runs in %s", store.Path)}
	case 1:
		return runs[0].Name, nil
	}
	return "", usageError{error: fmt.Errorf("several runs in %s; pick one with --name%s", store.Path, runList(runs))}
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
		return usageError{error: fmt.Errorf("bad run name %q", s)}
	}
	return nil
}
