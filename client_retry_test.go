package sse

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// This file tests how a Client follows the server's retry field.

// "retry: 0" sets the reconnection time to zero, as the spec says: the
// client comes back at once after a healthy connection, and attempts that
// fail still back off from a millisecond, so a failing server is not
// hammered in a tight loop.
func TestClientRetryZero(t *testing.T) {
	srv, n := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		switch {
		case n == 1:
			io.WriteString(w, "retry: 0\ndata: a\n\n")
		case n <= 4:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	ctx, cancel := testCtx(t)
	c := &Client{Retry: time.Hour, MaxBackoff: time.Hour, RetryServerErrors: true}
	var waits []time.Duration
	c.OnRetry = func(_ error, d time.Duration) {
		waits = append(waits, d)
		if d > time.Second {
			cancel() // the server's retry: 0 was ignored: fail now, not in an hour
		}
	}
	r := collect(c.Connect(ctx, srv.URL), nil)
	if r.err != nil || len(r.events) != 1 || n.Load() != 5 {
		t.Fatalf("got %+v after %d requests (waits %v)", r, n.Load(), waits)
	}
	ms := time.Millisecond
	// After the healthy first connection, then after each 503.
	ceil := []time.Duration{0, 2 * ms, 4 * ms, 8 * ms}
	if len(waits) != len(ceil) {
		t.Fatalf("waits %v, want %d", waits, len(ceil))
	}
	for i, d := range waits {
		if d < ceil[i]/2 || d > ceil[i] {
			t.Errorf("wait %d = %v, want within [%v, %v] (all %v)", i+1, d, ceil[i]/2, ceil[i], waits)
		}
	}
}
