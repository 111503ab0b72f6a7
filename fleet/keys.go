package fleet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kumo-dev/kumo/state"
	"github.com/kumo-dev/kumo/state/seal"
)

// A unit group's nodes take the group's SSH key. Beside a SQLite state
// the private key is a file only (keys/RUN/GROUP). A shared state
// (PostgreSQL) keeps it too, sealed with the secrets key the team shares
// ($KUMO_SECRET_KEY_FILE): another admin's kumo, on another machine,
// unseals it into that file the first time it needs it.

func groupKeyName(run, group string) string { return "group key " + run + "/" + group }

// shareGroupKey keeps the private key at path in a shared state.
func shareGroupKey(store Records, run, group, path string) error {
	if !store.Shared() {
		return nil
	}
	private, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	key, err := seal.LoadKey(true)
	if err != nil {
		return fmt.Errorf("the key that seals unit group %s's SSH key in the shared state (%s): %w", group, seal.KeyFile(), err)
	}
	sealed, err := seal.Seal(key, groupKeyName(run, group), string(private))
	if err != nil {
		return err
	}
	return store.PutGroupKey(run, group, sealed)
}

// groupKeyFile is the file of unit group g's private key, unsealed from
// a shared state when this machine has none yet.
func groupKeyFile(store Records, g state.Resource) (string, error) {
	path := store.GroupKeyFile(g)
	if _, err := os.Stat(path); err == nil || !store.Shared() {
		return path, nil
	}
	sealed, err := store.GroupKey(g.Run, g.Name)
	if errors.Is(err, state.ErrNotFound) {
		return path, nil // nothing shared: made where it was made
	}
	if err != nil {
		return "", err
	}
	key, err := seal.LoadKey(false)
	if err != nil {
		return "", fmt.Errorf("unit group %s's SSH key is in the shared state, sealed with the team's secrets key, and this machine has none (%s: %v): copy the team's key file there, or point $KUMO_SECRET_KEY_FILE at it", g.Name, seal.KeyFile(), err)
	}
	private, err := seal.Unseal(key, groupKeyName(g.Run, g.Name), sealed)
	if err != nil {
		return "", fmt.Errorf("unit group %s's SSH key in the shared state: %v (%s is not the team's secrets key)", g.Name, err, seal.KeyFile())
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(private), 0o600); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}
