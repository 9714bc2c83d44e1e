// Package ratelimit keeps one token bucket per key (a caller, a client IP),
// bounded in memory: the least recently seen keys are forgotten first.
package ratelimit

import (
	"math"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// maxKeys bounds the buckets kept; a forgotten key starts with a full bucket.
const maxKeys = 100_000

// Limiter allows rps requests per second per key, in bursts of burst.
type Limiter struct {
	mu      sync.Mutex
	buckets *lru.Cache[string, *rate.Limiter]
	rps     rate.Limit
	burst   int
}

// New returns a Limiter; rps <= 0 disables it (everything is allowed).
func New(rps float64, burst int) *Limiter {
	if rps <= 0 {
		return nil
	}
	c, _ := lru.New[string, *rate.Limiter](maxKeys) // fails only for a size <= 0
	if burst < 1 {
		burst = int(math.Ceil(rps))
	}
	return &Limiter{buckets: c, rps: rate.Limit(rps), burst: burst}
}

// Allow takes one request for key. When the bucket is empty it returns
// false and how long until a request would be allowed.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	b, ok := l.buckets.Get(key)
	if !ok {
		b = rate.NewLimiter(l.rps, l.burst)
		l.buckets.Add(key, b)
	}
	l.mu.Unlock()
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
