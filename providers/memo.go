package providers

import "sync"

// A Memo remembers what keys resolved to: a region's API client, an
// image name's id, a unit group's key pair. The first caller of a key
// resolves it and callers meanwhile wait for its answer, so 100 nodes
// created together make one lookup, not 100. Failures are not
// remembered: callers waiting get the failure, the next caller tries
// again.
type Memo[V any] struct {
	mu      sync.Mutex
	entries map[string]*memoEntry[V]
}

type memoEntry[V any] struct {
	done chan struct{}
	v    V
	err  error
}

// Get returns what key resolved to, calling resolve if nobody has.
func (m *Memo[V]) Get(key string, resolve func() (V, error)) (V, error) {
	m.mu.Lock()
	if m.entries == nil {
		m.entries = map[string]*memoEntry[V]{}
	}
	e, ok := m.entries[key]
	if !ok {
		e = &memoEntry[V]{done: make(chan struct{})}
		m.entries[key] = e
	}
	m.mu.Unlock()
	if ok {
		<-e.done
		return e.v, e.err
	}
	e.v, e.err = resolve()
	if e.err != nil {
		m.mu.Lock()
		if m.entries[key] == e {
			delete(m.entries, key)
		}
		m.mu.Unlock()
	}
	close(e.done)
	return e.v, e.err
}

// Forget drops what key resolved to (a deleted key pair).
func (m *Memo[V]) Forget(key string) {
	m.mu.Lock()
	delete(m.entries, key)
	m.mu.Unlock()
}
