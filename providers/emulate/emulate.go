// Package emulate holds what kumo's cloud API emulators (aws/ec2emu,
// openstack/osemu) share: serving on loopback, the faults they inject
// (latency, throttling, 5xx, a rate limit), call counts, and the local
// nodes that stand for their instances.
package emulate

import (
	"context"
	"fmt"
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
	// APIOnly: instances have no nodes behind them (they run at once, on
	// made-up addresses in 198.18.0.0/15), so the API can be measured
	// with thousands of them, and fuzzed without starting processes.
	APIOnly bool
	fakeIPs uint32
	name    string

	faults    Faults
	bucket    *providers.TokenBucket
	requests  int64
	throttled int64

	mu         sync.Mutex
	calls      map[string]int64
	nodes      []string
	stormUntil time.Time
	stormKind  StormKind
}

// StormKind is what a storm answers every request with.
type StormKind int

const (
	ThrottleStorm StormKind = iota // the cloud's throttling error
	FailureStorm                   // a 5xx
)

// Storm makes every request fail with kind for d, as a cloud's bad
// minutes do (tests).
func (b *Base) Storm(kind StormKind, d time.Duration) {
	b.mu.Lock()
	b.stormKind, b.stormUntil = kind, time.Now().Add(d)
	b.mu.Unlock()
}

// NewBase keeps the nodes of emulator name (their run) under dir;
// serverCommand starts a node server (nil: this executable's node-server
// command).
func NewBase(name, dir string, serverCommand []string, f Faults) *Base {
	lp := local.New(dir)
	lp.ServerCommand = serverCommand
	b := &Base{Local: lp, name: name, faults: f, calls: map[string]int64{}}
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
	storm, kind := time.Now().Before(b.stormUntil), b.stormKind
	b.mu.Unlock()
	if storm {
		if kind == ThrottleStorm {
			atomic.AddInt64(&b.throttled, 1)
		}
		return kind == ThrottleStorm, kind == FailureStorm
	}
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

// Boot makes the node that stands for instance id (name, with the SSH
// key pub) and returns where it answers.
func (b *Base) Boot(id, name, pub string) (ip string, port int, err error) {
	if b.APIOnly {
		n := atomic.AddUint32(&b.fakeIPs, 1)
		// 198.18.0.0/15: the benchmarking range, never routed anywhere.
		return fmt.Sprintf("198.%d.%d.%d", 18+(n>>16)&1, (n>>8)&0xff, n&0xff), 22, nil
	}
	b.mu.Lock()
	b.nodes = append(b.nodes, id)
	b.mu.Unlock()
	node, err := b.Local.Create(context.Background(), providers.NodeRequest{
		Token: id, Run: b.name, Name: name, AuthorizedKey: pub, Spec: map[string]any{},
	})
	return node.IP, node.Port, err
}

// PowerOff stops instance id's node.
func (b *Base) PowerOff(id string) error {
	if b.APIOnly {
		return nil
	}
	return b.Local.PowerOff(context.Background(), providers.Ref{ID: id})
}

// PowerOn starts instance id's node again and returns where it answers
// (ip is "" when the address did not change).
func (b *Base) PowerOn(id string) (ip string, port int, err error) {
	if b.APIOnly {
		return "", 22, nil
	}
	node, err := b.Local.PowerOn(context.Background(), providers.Ref{ID: id})
	return node.IP, node.Port, err
}

// Remove deletes instance id's node.
func (b *Base) Remove(id string) error {
	if b.APIOnly {
		return nil
	}
	return b.Local.Delete(context.Background(), providers.Ref{ID: id})
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
