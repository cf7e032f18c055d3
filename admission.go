package sse

import (
	"sync"
	"time"
)

// Rate is a bound on how fast something may happen: Burst at once, then
// PerSecond on average (a token bucket). The zero Rate means no bound.
type Rate struct {
	PerSecond float64 // the average rate; zero or less means no bound
	Burst     int     // how many at once; less than 1 means 1
}

// limited reports whether r bounds anything.
func (r Rate) limited() bool { return r.PerSecond > 0 }

// maxBuckets bounds the keys a rateLimiter remembers: past it, all are
// forgotten (a forgotten key starts again with a full bucket, so a flood
// from more keys than this is bounded by MaxStreams only).
const maxBuckets = 1 << 16

// rateLimiter is a token bucket per key (a remote address, a client ID).
// It remembers only keys that used their bucket recently: a bucket full
// again is as good as none. It is safe for concurrent use.
type rateLimiter struct {
	rate  Rate
	mu    sync.Mutex
	now   func() time.Time
	keys  map[string]*bucket
	swept time.Time
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

func newRateLimiter(r Rate) *rateLimiter {
	if r.Burst < 1 {
		r.Burst = 1
	}
	return &rateLimiter{rate: r, now: time.Now, keys: make(map[string]*bucket)}
}

// allow takes a token from key's bucket and reports whether there was one.
func (l *rateLimiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.keys[key]
	if b == nil {
		l.sweep(now)
		b = &bucket{tokens: float64(l.rate.Burst), at: now}
		l.keys[key] = b
	} else {
		b.refill(now, l.rate)
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// refill adds the tokens earned since b.at, up to the burst.
func (b *bucket) refill(now time.Time, r Rate) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(float64(r.Burst), b.tokens+d.Seconds()*r.PerSecond)
		b.at = now
	}
}

// sweep forgets the keys whose bucket is full again, at most once a
// second, and all of them when too many are left. Callers hold l.mu.
func (l *rateLimiter) sweep(now time.Time) {
	if len(l.keys) < maxBuckets && now.Sub(l.swept) < time.Second {
		return
	}
	l.swept = now
	full := float64(l.rate.Burst)
	for k, b := range l.keys {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate.PerSecond >= full {
			delete(l.keys, k)
		}
	}
	if len(l.keys) >= maxBuckets {
		// Still too many (a flood from as many keys): forget them all.
		// Each then starts again with a full bucket; MaxStreams still
		// bounds what they can open.
		clear(l.keys)
	}
}
