package session

import (
	"sync"

	"github.com/kumo-dev/kumo/builtins"
	"github.com/kumo-dev/kumo/state"
)

// A Held run is one this process holds the lock of, with the env its
// builtins use. Commands that change a run (run, repl, destroy) take one.
type Held struct {
	Env  *builtins.Env
	lock *state.Lock

	mu     sync.Mutex
	joined map[string]*state.Lock // other runs whose unit groups this one works on
}

// Hold locks run, failing at once if another live process holds it.
func Hold(store *state.Store, run string) (*Held, error) {
	lock, err := store.LockRun(run)
	if err != nil {
		return nil, err
	}
	h := &Held{Env: NewEnv(store, run), lock: lock, joined: map[string]*state.Lock{}}
	h.Env.Join = func(other string) error { return h.join(store, other) }
	return h, nil
}

// join takes the lock of another run whose unit group this run works on,
// once, and keeps it until Release: two processes never change one
// run's resources at once.
func (h *Held) join(store *state.Store, run string) error {
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
func (h *Held) Release() {
	h.Env.Close()
	h.mu.Lock()
	for _, l := range h.joined {
		l.Unlock()
	}
	h.mu.Unlock()
	h.lock.Unlock()
}
