// Package emulate holds what kumo's cloud API emulators (aws/ec2emu,
// openstack/osemu) share: serving on loopback, the faults they inject
// (latency, throttling, 5xx, a rate limit), call counts, and the local
// nodes that stand for their instances.
package emulate

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/providers/local"
)

// Faults are what an emulator does to requests, as real clouds do.
type Faults struct {
	Latency       time.Duration // added to every request
	ThrottleEvery int           // every Nth request is throttled (0: never)
	FailEvery     int           // every Nth request fails with a 5xx (0: never)
	RatePerSecond float64       // sustained requests per second before throttling (0: unlimited)
	Burst         float64       // requests allowed at once (default: RatePerSecond)
}

// Base is embedded by the emulators.
type Base struct {
	Local *local.Provider // the nodes that stand for instances

	faults    Faults
	bucket    *providers.TokenBucket
	requests  int64
	throttled int64

	mu    sync.Mutex
	calls map[string]int64
	nodes []string
}

// NewBase keeps nodes under dir; serverCommand starts a node server (nil:
// this executable's node-server command).
func NewBase(dir string, serverCommand []string, f Faults) *Base {
	lp := local.New(dir)
	lp.ServerCommand = serverCommand
	b := &Base{Local: lp, faults: f, calls: map[string]int64{}}
	if f.RatePerSecond > 0 {
		b.bucket = providers.NewTokenBucket(f.RatePerSecond, f.Burst)
	}
	return b
}

// Admit starts every request: it waits the injected latency, counts the
// call, and says whether the request is to be throttled or failed.
func (b *Base) Admit(call string) (throttle, fail bool) {
	if b.faults.Latency > 0 {
		time.Sleep(b.faults.Latency)
	}
	n := atomic.AddInt64(&b.requests, 1)
	b.mu.Lock()
	b.calls[call]++
	b.mu.Unlock()
	if b.faults.ThrottleEvery > 0 && n%int64(b.faults.ThrottleEvery) == 0 || b.bucket != nil && !b.bucket.Take() {
		atomic.AddInt64(&b.throttled, 1)
		return true, false
	}
	return false, b.faults.FailEvery > 0 && n%int64(b.faults.FailEvery) == 0
}

// Calls reports how many times each call was made.
func (b *Base) Calls() map[string]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int64{}
	for k, v := range b.calls {
		out[k] = v
	}
	return out
}

// Throttled counts the requests refused for the rate limit.
func (b *Base) Throttled() int64 { return atomic.LoadInt64(&b.throttled) }

// Track records a node to delete on Shutdown.
func (b *Base) Track(id string) {
	b.mu.Lock()
	b.nodes = append(b.nodes, id)
	b.mu.Unlock()
}

// Shutdown deletes every node the emulator made.
func (b *Base) Shutdown() {
	b.mu.Lock()
	ids := append([]string(nil), b.nodes...)
	b.mu.Unlock()
	for _, id := range ids {
		b.Local.Delete(context.Background(), providers.Ref{ID: id})
	}
}

// Serve serves h on addr until ctx ends and returns its base URL.
func Serve(ctx context.Context, addr string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	return "http://" + ln.Addr().String(), nil
}
