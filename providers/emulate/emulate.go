// Package emulate holds what kumo's cloud API emulators (aws/ec2emu,
// openstack/osemu) share: serving on loopback, the faults they inject
// (latency, throttling, 5xx, a rate limit), call counts, and the nodes
// that stand for their instances.
//
// Instances are container nodes where this host can run them: each
// emulator is then a site of its own (a bridge and private range, NAT,
// no route to other sites' private addresses), as a cloud's VPC is, and
// its public addresses are on the sites' internet. Elsewhere they are
// local nodes: processes on this host, running as whoever runs the
// emulator, which is what recipes that change the system must not meet.
package emulate

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kumo-dev/kumo/providers"
	"github.com/kumo-dev/kumo/providers/container"
	"github.com/kumo-dev/kumo/providers/local"
)

// Backing is what stands for an emulator's instances.
type Backing string

const (
	// LocalBacking: local nodes, processes on this host running as the
	// emulator's user. Anyone can have them; they share the host.
	LocalBacking Backing = "local"
	// ContainerBacking: container nodes, machines of their own on the
	// emulator's site (root, systemd-nspawn and the image).
	ContainerBacking Backing = "container"
	// AutoBacking is containers where the host can run them, else local.
	AutoBacking Backing = "auto"
)

// ChooseBacking resolves want ("", auto, local or container) on this
// host; why says what decided, for the emulator's first lines.
func ChooseBacking(want Backing) (b Backing, why string, err error) {
	switch want {
	case LocalBacking:
		return LocalBacking, "as asked (--backing local)", nil
	case ContainerBacking, AutoBacking, "":
		cannot := container.New(os.TempDir()).Validate(context.Background(), "", map[string]any{})
		if cannot == nil {
			return ContainerBacking, "this host runs container nodes", nil
		}
		if want == ContainerBacking {
			return "", "", cannot
		}
		return LocalBacking, cannot.Error(), nil
	}
	return "", "", fmt.Errorf("no backing %q (have: auto, container, local)", want)
}

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
	Backing Backing
	// Security groups' filters waiting for the worker (FilterLater).
	filterMu   sync.Mutex
	filters    map[string]container.Inbound
	filterKick chan struct{}
	// Nodes stand for instances: Local or Containers.
	Nodes      providers.Provider
	Local      *local.Provider
	Containers *container.Provider
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
	publics    map[string]bool // holders of public addresses (floating IPs)
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

// NewBase keeps the nodes of emulator name (their run) under dir, as
// backing says ("" is local); serverCommand starts a local node server
// (nil: this executable's node-server command).
func NewBase(name, dir string, backing Backing, serverCommand []string, f Faults) *Base {
	b := &Base{Backing: LocalBacking, name: name, faults: f, calls: map[string]int64{}}
	if backing == ContainerBacking {
		b.Backing = ContainerBacking
		b.Containers = container.New(dir)
		b.Nodes = b.Containers
	} else {
		b.Local = local.New(dir)
		b.Local.ServerCommand = serverCommand
		b.Nodes = b.Local
	}
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

// CallsPath answers how many times each API call was made, as JSON: what
// tests and benchmarks count from outside kumo (a replay makes none).
const CallsPath = "/_kumo/calls"

// ServeCalls answers a request for CallsPath and reports whether it was
// one; such requests are not counted.
func (b *Base) ServeCalls(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != CallsPath || r.Method != http.MethodGet {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(b.Calls())
	return true
}

// Throttled counts the requests refused for the rate limit.
func (b *Base) Throttled() int64 { return atomic.LoadInt64(&b.throttled) }

// A Machine is what a booted instance's node gives its emulator.
type Machine struct {
	IP     string // where its SSH server answers, from kumo's host
	Port   int
	Public string // its public address ("" without one)
}

// BootRequest asks for the node of one instance.
type BootRequest struct {
	ID, Name      string
	AuthorizedKey string
	User          string // the image's login user (containers make it)
	Public        bool   // give it a public address (an EC2 instance in a default VPC)
}

// Boot makes the node that stands for instance req.ID.
func (b *Base) Boot(req BootRequest) (Machine, error) {
	if b.APIOnly {
		n := atomic.AddUint32(&b.fakeIPs, 1)
		// 198.18.0.0/15: the benchmarking range, never routed anywhere.
		return Machine{IP: fmt.Sprintf("198.%d.%d.%d", 18+(n>>16)&1, (n>>8)&0xff, n&0xff), Port: 22}, nil
	}
	b.mu.Lock()
	b.nodes = append(b.nodes, req.ID)
	b.mu.Unlock()
	spec := map[string]any{}
	if b.Backing == ContainerBacking {
		spec = map[string]any{"user": req.User, "public": req.Public}
	}
	// Every instance is in one unit group: the emulator's site.
	node, err := b.Nodes.Create(context.Background(), providers.NodeRequest{
		Token: req.ID, Run: b.name, Group: "site", Unit: "instances", Name: req.Name, AuthorizedKey: req.AuthorizedKey, Spec: spec,
	})
	if err != nil {
		// The instance fails (terminated, ERROR): what its node took, an
		// address among it, goes back.
		b.Nodes.Delete(context.Background(), providers.Ref{ID: req.ID, Token: req.ID})
	}
	return machine(node), err
}

// machine reads a node's addresses: a container node with a public
// address is reached there, and its private one is its own.
func machine(node providers.Instance) Machine {
	m := Machine{IP: node.IP, Port: node.Port}
	if node.PrivateIP != "" && node.IP != node.PrivateIP {
		m.IP, m.Public = node.PrivateIP, node.IP
	}
	return m
}

// PowerOff stops instance id's node.
func (b *Base) PowerOff(id string) error {
	if b.APIOnly {
		return nil
	}
	return b.Nodes.PowerOff(context.Background(), providers.Ref{ID: id, Token: id})
}

// PowerOn starts instance id's node again and returns where it answers
// (IP is "" when the address did not change).
func (b *Base) PowerOn(id string) (Machine, error) {
	if b.APIOnly {
		return Machine{Port: 22}, nil
	}
	node, err := b.Nodes.PowerOn(context.Background(), providers.Ref{ID: id, Token: id})
	return machine(node), err
}

// Remove deletes instance id's node.
func (b *Base) Remove(id string) error {
	if b.APIOnly {
		return nil
	}
	return b.Nodes.Delete(context.Background(), providers.Ref{ID: id, Token: id})
}

// PublicAddress gives holder (a floating IP) a public address mapped to
// instance id's node (none for ""); elsewhere than on containers there
// is no NAT, and the address is the node's own.
func (b *Base) PublicAddress(holder, id, nodeAddr string) (string, error) {
	if b.Containers == nil {
		if nodeAddr == "" {
			nodeAddr = "127.0.0.1"
		}
		return nodeAddr, nil
	}
	b.mu.Lock()
	if b.publics == nil {
		b.publics = map[string]bool{}
	}
	b.publics[holder] = true
	b.mu.Unlock()
	return b.Containers.PublicAddress(holder, id)
}

// An Open port is one a security group lets in from anywhere.
type Open struct {
	Protocol string // "tcp" or "udp"; others are not filtered by port
	Port     int
}

// FilterLater has instance id's public address let in, from now on, the
// TCP and UDP ports its security groups open to anywhere, as a cloud's
// firewall does. A worker applies each instance's latest filter soon,
// outside the emulator's lock (the firewall is the host's, shared by
// every kumo process). Local backing has no public addresses to filter.
func (b *Base) FilterLater(id string, open []Open) {
	if b.Containers == nil || b.APIOnly {
		return
	}
	var in container.Inbound
	for _, o := range open {
		switch o.Protocol {
		case "tcp":
			in.TCP = append(in.TCP, o.Port)
		case "udp":
			in.UDP = append(in.UDP, o.Port)
		}
	}
	b.filterMu.Lock()
	if b.filters == nil {
		b.filters = map[string]container.Inbound{}
		b.filterKick = make(chan struct{}, 1)
		go b.filterWorker()
	}
	b.filters[id] = in
	b.filterMu.Unlock()
	select {
	case b.filterKick <- struct{}{}:
	default: // a kick is pending: the worker reads the latest then
	}
}

func (b *Base) filterWorker() {
	for range b.filterKick {
		b.filterMu.Lock()
		todo := b.filters
		b.filters = map[string]container.Inbound{}
		b.filterMu.Unlock()
		for id, in := range todo {
			if err := b.Containers.SetInbound(id, &in); err != nil {
				fmt.Fprintf(os.Stderr, "%s: %s's security groups: %v\n", b.name, id, err)
			}
		}
	}
}

// ReleasePublic gives holder's public address back.
func (b *Base) ReleasePublic(holder string) error {
	if b.Containers == nil {
		return nil
	}
	b.mu.Lock()
	delete(b.publics, holder)
	b.mu.Unlock()
	return b.Containers.ReleasePublic(holder)
}

// Shutdown deletes every node the emulator made, and gives back the
// public addresses its floating IPs held.
func (b *Base) Shutdown() {
	b.mu.Lock()
	ids := append([]string(nil), b.nodes...)
	var holders []string
	for h := range b.publics {
		holders = append(holders, h)
	}
	b.mu.Unlock()
	for _, h := range holders {
		b.ReleasePublic(h)
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.Nodes.Delete(context.Background(), providers.Ref{ID: id, Token: id})
		}()
	}
	wg.Wait()
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
