package providers

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// A Poller waits for the states of many cloud resources with one listing
// per round, however many wait: 100 nodes created together are polled
// with one call per round instead of 100, which keeps a large unit
// inside the cloud's request rate limits and makes N nodes take about as
// long as one. A resource that reaches its state is answered at once;
// the others keep waiting.
type Poller[T any] struct {
	// List returns, by id, those of ids the cloud has (a resource it no
	// longer has is absent).
	List     func(ctx context.Context, ids []string) (map[string]T, error)
	Interval time.Duration // between rounds (default 2s)
	// Window lets the resources made together join the first round
	// (default 100ms).
	Window time.Duration

	mu      sync.Mutex
	waiters []*pollWaiter[T]
	running bool
}

// A Check judges a resource in one round: done ends the wait, an error
// ends it failed. found is false when the cloud does not have it.
type Check[T any] func(v T, found bool) (done bool, err error)

type pollWaiter[T any] struct {
	id    string
	check Check[T]
	ctx   context.Context
	done  chan pollResult[T]
}

type pollResult[T any] struct {
	v   T
	err error
}

// listFailures is how many rounds in a row may fail before the waiters
// are told.
const listFailures = 5

// Wait returns the resource once check says it is done.
func (p *Poller[T]) Wait(ctx context.Context, id string, check Check[T]) (T, error) {
	w := &pollWaiter[T]{id: id, check: check, ctx: ctx, done: make(chan pollResult[T], 1)}
	p.mu.Lock()
	p.waiters = append(p.waiters, w)
	if !p.running {
		p.running = true
		go p.loop()
	}
	p.mu.Unlock()
	select {
	case r := <-w.done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func (p *Poller[T]) loop() {
	window, interval := p.Window, p.Interval
	if window == 0 {
		window = 100 * time.Millisecond
	}
	if interval == 0 {
		interval = 2 * time.Second
	}
	time.Sleep(window)
	failures := 0
	for {
		// Only the waiters asked about in this round are judged by it;
		// those that join meanwhile wait for the next.
		p.mu.Lock()
		asked := map[*pollWaiter[T]]bool{}
		var ids []string
		for _, w := range p.waiters {
			asked[w] = true
			ids = append(ids, w.id)
		}
		p.mu.Unlock()
		found, err := p.List(context.Background(), ids)
		if err != nil {
			failures++
		} else {
			failures = 0
		}
		p.mu.Lock()
		var keep []*pollWaiter[T]
		for _, w := range p.waiters {
			switch {
			case w.ctx.Err() != nil:
				continue // its caller has gone
			case !asked[w]:
				keep = append(keep, w)
				continue
			case err != nil && failures >= listFailures:
				w.done <- pollResult[T]{err: fmt.Errorf("waiting for %s: %w", w.id, err)}
				continue
			case err != nil:
				keep = append(keep, w)
				continue
			}
			v, ok := found[w.id]
			done, cerr := w.check(v, ok)
			switch {
			case cerr != nil:
				w.done <- pollResult[T]{err: cerr}
			case done:
				w.done <- pollResult[T]{v: v}
			default:
				keep = append(keep, w)
			}
		}
		p.waiters = keep
		if len(keep) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		time.Sleep(interval)
	}
}
