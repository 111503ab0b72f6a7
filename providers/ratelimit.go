package providers

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Default API request budget of the cloud providers: 90% of EC2's
// documented token bucket for describe calls (burst 100, 20 per second),
// which OpenStack deployments' limits are usually well above. Staying
// under it means a unit of 100 nodes is created without being throttled.
const (
	DefaultAPIRate  = 18.0
	DefaultAPIBurst = 90.0
)

// RateLimitedClient is an HTTP client that sends at most burst requests
// at once and rate per second after that, waiting rather than failing.
func RateLimitedClient(rate, burst float64) *http.Client {
	return &http.Client{Transport: &limitedTransport{base: http.DefaultTransport, bucket: NewTokenBucket(rate, burst)}}
}

// Doer is what SDKs call to send a request (aws.HTTPClient).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// RateLimitedDoer wraps an SDK's own HTTP client with the same budget.
func RateLimitedDoer(base Doer, rate, burst float64) Doer {
	return &limitedDoer{base: base, bucket: NewTokenBucket(rate, burst)}
}

type limitedDoer struct {
	base   Doer
	bucket *TokenBucket
}

func (d *limitedDoer) Do(r *http.Request) (*http.Response, error) {
	if err := d.bucket.Wait(r.Context()); err != nil {
		return nil, err
	}
	return d.base.Do(r)
}

type limitedTransport struct {
	base   http.RoundTripper
	bucket *TokenBucket
}

func (t *limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := t.bucket.Wait(r.Context()); err != nil {
		return nil, err
	}
	return t.base.RoundTrip(r)
}

// A TokenBucket allows burst events at once and rate per second after.
type TokenBucket struct {
	mu          sync.Mutex
	rate, burst float64
	tokens      float64
	last        time.Time
}

// NewTokenBucket returns a full bucket.
func NewTokenBucket(rate, burst float64) *TokenBucket {
	return &TokenBucket{rate: rate, burst: max(burst, rate), tokens: max(burst, rate), last: time.Now()}
}

// Take takes a token if one is free.
func (b *TokenBucket) Take() bool {
	ok, _ := b.take()
	return ok
}

func (b *TokenBucket) take() (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// Wait takes a token, sleeping until one is free or ctx ends.
func (b *TokenBucket) Wait(ctx context.Context) error {
	for {
		ok, wait := b.take()
		if ok {
			return nil
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
