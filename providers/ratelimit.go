package providers

import (
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
	return &http.Client{Transport: &limitedTransport{base: http.DefaultTransport, bucket: newBucket(rate, burst)}}
}

// Doer is what SDKs call to send a request (aws.HTTPClient).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// RateLimitedDoer wraps an SDK's own HTTP client with the same budget.
func RateLimitedDoer(base Doer, rate, burst float64) Doer {
	return &limitedDoer{base: base, bucket: newBucket(rate, burst)}
}

type limitedDoer struct {
	base   Doer
	bucket *bucket
}

func (d *limitedDoer) Do(r *http.Request) (*http.Response, error) {
	if err := d.bucket.wait(r); err != nil {
		return nil, err
	}
	return d.base.Do(r)
}

type limitedTransport struct {
	base   http.RoundTripper
	bucket *bucket
}

func (t *limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := t.bucket.wait(r); err != nil {
		return nil, err
	}
	return t.base.RoundTrip(r)
}

type bucket struct {
	mu          sync.Mutex
	rate, burst float64
	tokens      float64
	last        time.Time
}

func newBucket(rate, burst float64) *bucket {
	return &bucket{rate: rate, burst: burst, tokens: burst, last: time.Now()}
}

// wait takes a token, sleeping until one is free or the request is cancelled.
func (b *bucket) wait(r *http.Request) error {
	for {
		b.mu.Lock()
		now := time.Now()
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
		if b.tokens >= 1 {
			b.tokens--
			b.mu.Unlock()
			return nil
		}
		wait := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		b.mu.Unlock()
		select {
		case <-time.After(wait):
		case <-r.Context().Done():
			return r.Context().Err()
		}
	}
}
