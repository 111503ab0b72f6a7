package openstack

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
)

// poller waits for server statuses. However many servers wait, each
// round is one GET /servers/detail: 100 nodes made together are polled
// with one call per round, inside the cloud's rate limits.
type poller struct {
	c        *client
	interval time.Duration
	window   time.Duration

	mu      sync.Mutex
	waiters []*waiter
	running bool
}

type waiter struct {
	id, status string
	done       chan waitResult
	ctx        context.Context
	since      time.Time // listings started before this cannot judge it
}

type waitResult struct {
	srv *servers.Server
	err error
}

// wait returns the server once its status is status; "DELETED" waits
// until it is gone.
func (p *poller) wait(ctx context.Context, id, status string) (*servers.Server, error) {
	w := &waiter{id: id, status: status, done: make(chan waitResult, 1), ctx: ctx, since: time.Now()}
	p.mu.Lock()
	p.waiters = append(p.waiters, w)
	if !p.running {
		p.running = true
		go p.loop()
	}
	p.mu.Unlock()
	select {
	case r := <-w.done:
		return r.srv, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *poller) loop() {
	time.Sleep(p.window) // let the servers made together join one round
	failures := 0
	for {
		started := time.Now()
		all, err := p.c.allServers(context.Background())
		p.mu.Lock()
		var keep []*waiter
		for _, w := range p.waiters {
			if w.ctx.Err() != nil {
				continue
			}
			if w.since.After(started) {
				keep = append(keep, w) // it joined while this listing was under way
				continue
			}
			if err != nil {
				if failures >= 5 {
					w.done <- waitResult{err: fmt.Errorf("openstack: waiting for %s: %w", w.id, err)}
					continue
				}
				keep = append(keep, w)
				continue
			}
			var found *servers.Server
			for i := range all {
				if all[i].ID == w.id {
					found = &all[i]
				}
			}
			switch {
			case found == nil && w.status == "DELETED":
				w.done <- waitResult{}
			case found == nil:
				w.done <- waitResult{err: fmt.Errorf("openstack: server %s disappeared while waiting for %s", w.id, w.status)}
			case found.Status == w.status:
				w.done <- waitResult{srv: found}
			case found.Status == "ERROR":
				msg := found.Fault.Message
				w.done <- waitResult{err: fmt.Errorf("openstack: server %s went to ERROR: %s", w.id, msg)}
			default:
				keep = append(keep, w)
			}
		}
		if err != nil {
			failures++
		} else {
			failures = 0
		}
		p.waiters = keep
		if len(keep) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		time.Sleep(p.interval)
	}
}
