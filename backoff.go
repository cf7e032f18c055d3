package sse

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxBackoff is the longest a Client waits between two reconnection
// attempts unless Client.MaxBackoff says otherwise: 30 s.
const DefaultMaxBackoff = 30 * time.Second

// backoff returns how long to wait before reconnection attempt n, counted
// from 0 for the first attempt after a healthy connection: base doubled n
// times, capped at the larger of base and limit, then jittered into its upper
// half (u, in [0, 1), picks the point), so that clients cut off together do
// not come back together. A base below a millisecond grows from one
// millisecond, so that a server's "retry: 0" cannot make a failing
// connection spin.
func backoff(base, limit time.Duration, n int, u float64) time.Duration {
	ceiling := max(base, limit)
	d := base
	if n > 0 {
		d = max(base, time.Millisecond)
		for i := 0; i < n && d < ceiling; i++ {
			d *= 2
		}
	}
	d = min(d, ceiling)
	return d/2 + time.Duration(u*float64(d-d/2))
}

// retryAfter reads a Retry-After header, in seconds or as an HTTP date, as
// the time left to wait from now. It returns 0 when the header is absent,
// invalid or in the past.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
