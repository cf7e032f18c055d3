package sse

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A token bucket per key: Burst at once, then PerSecond; keys do not share
// buckets, and a bucket full again is forgotten.
func TestRateLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newRateLimiter(Rate{PerSecond: 2, Burst: 3})
	l.now = func() time.Time { return now }
	for i := range 3 {
		if !l.allow("a") {
			t.Fatalf("take %d of a burst of 3 refused", i+1)
		}
	}
	if l.allow("a") {
		t.Fatal("a fourth take at once allowed")
	}
	if !l.allow("b") {
		t.Fatal("another key shares a's bucket")
	}
	now = now.Add(500 * time.Millisecond) // one token back
	if !l.allow("a") || l.allow("a") {
		t.Fatal("after half a second at 2/s, want exactly one more")
	}
	now = now.Add(time.Hour)
	l.allow("c") // a new key sweeps
	if _, ok := l.keys["b"]; ok {
		t.Fatal("a bucket full again is still remembered")
	}
	for i := range maxBuckets + 10 {
		l.allow(fmt.Sprint("k", i))
	}
	if len(l.keys) > maxBuckets {
		t.Fatalf("%d keys remembered, over %d", len(l.keys), maxBuckets)
	}
}

// Over its connect rate, an address (before authentication) or a client ID
// is refused as over a limit: 200 with a retry hint, counted; others are
// served.
func TestConnectRates(t *testing.T) {
	var authenticated atomic.Int64
	h, srv := newTestHub(t, Config{
		ClientID:              func(r *http.Request) (string, error) { authenticated.Add(1); return headerID(r) },
		ConnectRatePerAddress: Rate{PerSecond: 0.001, Burst: 3},
		ConnectRatePerClient:  Rate{PerSecond: 0.001, Burst: 2},
		RefuseRetry:           time.Second,
	})
	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	one := from("127.0.0.1")
	dial(t, one, srv.URL, user("ann"))
	dial(t, one, srv.URL, user("ann"))
	waitStreams(t, h, 2)
	before := authenticated.Load()
	resp, err := one.Do(mustRequest(t, srv.URL, user("ann"))) // ann's third
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "retry: ") || strings.Contains(string(body), "data:") {
		t.Fatalf("ann's third stream got %q, want a refusal", body)
	}
	if st := h.Stats(); st.RateLimited != 1 {
		t.Fatalf("stats %+v, want one refusal by rate", st)
	}
	// The address has had 3: a fourth, another user's, is refused before
	// authentication.
	resp, err = one.Do(mustRequest(t, srv.URL, user("bob")))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if n := authenticated.Load() - before - 1; !strings.HasPrefix(string(body), "retry: ") || n != 0 {
		t.Fatalf("bob from a busy address got %q; ClientID called %d times for it, want 0", body, n)
	}
	if runtime.GOOS == "linux" { // another loopback address is another peer
		dial(t, from("127.0.0.2"), srv.URL, user("bob"))
		waitStreams(t, h, 3)
	}
}
