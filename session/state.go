package session

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/kumo-dev/kumo/builtins/starkit"
	"github.com/kumo-dev/kumo/state"
	_ "github.com/kumo-dev/kumo/state/sqlite" // the state files are SQLite
)

// StateName is where a recipe's state lives, relative to the recipe's
// folder: the state goes with the recipe, so that it is found from any
// working directory.
const StateName = ".kumo/state.db"

// A Locator finds the state a command works on.
type Locator struct {
	Flag string // --state; "" for the default
}

// TeamStateFile, beside recipes (or in a folder above them), names the
// state they share: one line, a PostgreSQL URL without credentials
// (postgres://db.example.org/kumo?environment=class). Every admin's kumo
// in a checkout of the recipes finds the team's state through it.
const TeamStateFile = "kumo.state"

// PathFor is the state of the recipe file (or of the working
// directory when file is ""): --state, else $KUMO_STATE, else the one a
// kumo.state file beside it or above it names, else .kumo/state.db
// beside it.
func (l Locator) PathFor(file string) string {
	if loc := l.Named(); loc != "" {
		return loc
	}
	dir := "."
	if file != "" {
		dir = filepath.Dir(file)
	}
	if loc, _ := TeamState(dir); loc != "" {
		return loc
	}
	if file == "" {
		return StateName
	}
	return filepath.Join(filepath.Dir(file), StateName)
}

// Named is the state --state or $KUMO_STATE names, "" if neither.
func (l Locator) Named() string {
	if l.Flag != "" {
		return l.Flag
	}
	return os.Getenv("KUMO_STATE")
}

// TeamState reads the kumo.state file in dir or the nearest folder above
// it: the location it names and the folder it is in.
func TeamState(dir string) (location, in string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", ""
	}
	for {
		if b, err := os.ReadFile(filepath.Join(abs, TeamStateFile)); err == nil {
			return strings.TrimSpace(string(b)), abs
		}
		parent := filepath.Dir(abs)
		if parent == abs {
			return "", ""
		}
		abs = parent
	}
}

// StoreFor opens (creating it if needed) the state of the recipe file.
func (l Locator) StoreFor(file string) func() (*state.Store, error) {
	return func() (*state.Store, error) {
		dir := "."
		if file != "" {
			dir = filepath.Dir(file)
		}
		return OpenState(l.PathFor(file), filepath.Join(dir, ".kumo"))
	}
}

// OpenExisting opens the state for commands about runs that exist
// (status, logs, destroy): --state or $KUMO_STATE, else the state a
// kumo.state file here or above names, else .kumo/state.db in the
// working directory or the nearest folder above it that has one, as git
// finds .git. They never leave a new state file behind.
func (l Locator) OpenExisting() (*state.Store, error) {
	path := l.Named()
	local := ".kumo"
	if path == "" {
		if loc, in := TeamState("."); loc != "" {
			path, local = loc, filepath.Join(in, ".kumo")
		}
	}
	if state.IsPostgres(path) {
		return OpenState(path, local)
	}
	if path == "" {
		path = findState()
	}
	if path == "" {
		return nil, starkit.Inputf("no kumo state here: no %s in this folder or above it. Run this from the recipe's folder, or give --state", StateName)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, starkit.Inputf("no state at %s: no run has used it yet (give --state to use another file)", path)
	}
	return OpenState(path, filepath.Dir(path))
}

// findState looks for .kumo/state.db from the working directory up.
func findState() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	if _, err := os.Stat(StateName); err == nil {
		return StateName
	}
	for {
		path := filepath.Join(dir, StateName)
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

// OpenState opens a state file or a PostgreSQL environment (whose local
// folder, for keys, locks and local nodes, is local), saying which a
// failure is about.
func OpenState(path, local string) (*state.Store, error) {
	if state.IsPostgres(path) {
		if u, err := url.Parse(path); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				return nil, starkit.Inputf("the state URL holds a password: kumo keeps credentials out of its files and its state. Give it through PGPASSWORD, ~/.pgpass or PGSERVICE, and the URL without it")
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
