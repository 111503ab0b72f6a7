package providers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Many waiters, one listing per round; each is answered when its own
// resource is done, and a resource the cloud no longer has is judged by
// its waiter's check.
func TestPollerListsOncePerRoundForAllWaiters(t *testing.T) {
	var rounds atomic.Int64
	var mu sync.Mutex
	states := map[string]string{}
	for i := range 50 {
		states[fmt.Sprint(i)] = "BUILD"
	}
	p := &Poller[string]{Interval: 20 * time.Millisecond, Window: 20 * time.Millisecond,
		List: func(ctx context.Context, ids []string) (map[string]string, error) {
			rounds.Add(1)
			mu.Lock()
			defer mu.Unlock()
			out := map[string]string{}
			for id, st := range states {
				out[id] = st
			}
			// Every round, one more resource becomes ACTIVE.
			for id, st := range states {
				if st == "BUILD" {
					states[id] = "ACTIVE"
					break
				}
			}
			return out, nil
		}}
	active := func(v string, found bool) (bool, error) {
		if !found {
			return false, errors.New("gone")
		}
		return v == "ACTIVE", nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 51)
	for i := range 50 {
		wg.Go(func() {
			if v, err := p.Wait(context.Background(), fmt.Sprint(i), active); err != nil || v != "ACTIVE" {
				errs <- fmt.Errorf("waiter %d: %q, %v", i, v, err)
			}
		})
	}
	wg.Go(func() {
		if _, err := p.Wait(context.Background(), "missing", active); err == nil || err.Error() != "gone" {
			errs <- fmt.Errorf("a missing resource: %v, want the check's error", err)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// 50 resources become ACTIVE one per round: about 51 rounds for all
	// 51 waiters, not one listing per waiter per round (about 1300).
	if n := rounds.Load(); n < 50 || n > 60 {
		t.Errorf("%d listings for 51 waiters over 50 rounds", n)
	}
}

func TestPollerGivesUpAfterListingsFailInARow(t *testing.T) {
	var calls atomic.Int64
	p := &Poller[int]{Interval: time.Millisecond, Window: time.Millisecond,
		List: func(ctx context.Context, ids []string) (map[string]int, error) {
			calls.Add(1)
			return nil, errors.New("503 Service Unavailable")
		}}
	_, err := p.Wait(context.Background(), "i-1", func(int, bool) (bool, error) { return true, nil })
	if err == nil || err.Error() != "waiting for i-1: 503 Service Unavailable" || calls.Load() != listFailures {
		t.Errorf("after %d failed listings: %v", calls.Load(), err)
	}
	// A caller that gives up is answered at once.
	p = &Poller[int]{Interval: time.Hour, List: func(ctx context.Context, ids []string) (map[string]int, error) { return nil, nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Wait(ctx, "i-2", func(int, bool) (bool, error) { return false, nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled wait: %v", err)
	}
}

// Callers of one key wait for the first one's answer; a failure is not
// kept.
func TestMemoResolvesAKeyOnce(t *testing.T) {
	var m Memo[string]
	var resolved atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			v, err := m.Get("ubuntu-22.04", func() (string, error) {
				resolved.Add(1)
				<-release
				return "ami-1", nil
			})
			if v != "ami-1" || err != nil {
				t.Errorf("Get = %q, %v", v, err)
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := resolved.Load(); n != 1 {
		t.Errorf("resolved %d times, want once", n)
	}
	if _, err := m.Get("bad", func() (string, error) { return "", errors.New("no such image") }); err == nil {
		t.Error("a failing resolve: no error")
	}
	if v, err := m.Get("bad", func() (string, error) { return "ami-2", nil }); v != "ami-2" || err != nil {
		t.Errorf("after a failure, Get = %q, %v: want it resolved again", v, err)
	}
	m.Forget("ubuntu-22.04")
	if v, _ := m.Get("ubuntu-22.04", func() (string, error) { return "ami-3", nil }); v != "ami-3" {
		t.Errorf("after Forget, Get = %q", v)
	}
}

type testSpec struct {
	Image    string            `json:"image"`
	CPUs     int               `json:"cpus"`
	MemoryGB float64           `json:"memory_gb"`
	Ports    []int             `json:"ports"`
	Labels   map[string]string `json:"labels"`
	Spot     bool              `json:"spot"`
	AuthURL  string            `json:"auth_url" kumo:"located"`
}

func TestSpecsDecodeFromEveryOriginAndNameWrongTypes(t *testing.T) {
	// YAML gives int, Starlark int64, the state's JSON float64.
	for _, fields := range []map[string]any{
		{"image": "debian-12", "cpus": 2, "memory_gb": 1, "ports": []any{80}, "labels": map[string]any{"rack": "a"}},
		{"image": "debian-12", "cpus": int64(2), "memory_gb": 1.0, "ports": []any{int64(80)}, "labels": map[string]any{"rack": "a"}},
		{"image": "debian-12", "cpus": 2.0, "memory_gb": 1.0, "ports": []any{80.0}, "labels": map[string]any{"rack": "a"}, "retired_field": 1},
	} {
		s, err := ReadSpec[testSpec]("test", fields)
		if err != nil || s.Image != "debian-12" || s.CPUs != 2 || s.MemoryGB != 1 || !slices.Equal(s.Ports, []int{80}) || s.Labels["rack"] != "a" {
			t.Errorf("ReadSpec(%v) = %+v, %v", fields, s, err)
		}
	}
	for _, tt := range []struct {
		fields map[string]any
		want   string
	}{
		{map[string]any{"cpus": "two"}, "test field cpus is a string, want a whole number"},
		{map[string]any{"cpus": 1.5}, "test field cpus is 1.5, want a whole number"},
		{map[string]any{"memory_gb": "1G"}, "test field memory_gb is a string, want a number"},
		{map[string]any{"ports": 80}, "test field ports is a number, want a list of whole numbers"},
		{map[string]any{"labels": []any{"a"}}, "test field labels is a list, want a dict of strings"},
		{map[string]any{"spot": "yes"}, "test field spot is a string, want True or False"},
	} {
		_, err := ReadSpec[testSpec]("test", tt.fields)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ReadSpec(%v) = %v, want %q", tt.fields, err, tt.want)
		}
	}
	if got := SpecFieldNames(&testSpec{}); !slices.Equal(got, []string{"cpus", "image", "labels", "memory_gb", "ports", "spot"}) {
		t.Errorf("field names %v (located ones are kumo's, not the recipe's)", got)
	}
}
