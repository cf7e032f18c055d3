package sse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// This file tests the Go client (client.go) against a Hub and against
// plain net/http handlers that misbehave.

// streamHandler serves one answer per request, numbered from 1, with the
// headers of an event stream already set; serve may write and flush
// through the returned flush function.
func streamHandler(t *testing.T, serve func(n int, w http.ResponseWriter, r *http.Request, flush func())) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		serve(int(n.Add(1)), w, r, func() {
			if err := rc.Flush(); err != nil {
				t.Errorf("Flush: %v", err)
			}
		})
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections() // a handler still waiting for its client must not hang Close
		srv.Close()
	})
	return srv, &n
}

// testCtx returns a context that ends with the test, or after testTimeout
// so that a hang fails instead of stalling the suite.
func testCtx(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx, cancel
}

// result is what one range over Client.Connect yielded.
type result struct {
	events []Event
	resets []*ResetError
	err    error // the final error, nil if the sequence just ended
}

func (r result) data() []string {
	var out []string
	for _, ev := range r.events {
		out = append(out, string(ev.Data))
	}
	return out
}

// collect ranges over seq until it ends, or until stop returns true for an
// event.
func collect(seq func(func(Event, error) bool), stop func(Event) bool) result {
	var r result
	for ev, err := range seq {
		var reset *ResetError
		if errors.As(err, &reset) {
			r.resets = append(r.resets, reset)
			continue
		}
		if err != nil {
			r.err = err
			break
		}
		r.events = append(r.events, ev)
		if stop != nil && stop(ev) {
			break
		}
	}
	return r
}

// fast is a Client with reconnection times short enough for tests.
func fast() *Client {
	return &Client{Retry: time.Millisecond, MaxBackoff: 4 * time.Millisecond}
}

func TestClientRequestHeaders(t *testing.T) {
	var mu sync.Mutex
	var got []http.Header
	srv, _ := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		if n == 3 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		fmt.Fprintf(w, "id: e%d\ndata: %d\n\n", n, n)
	})
	ctx, _ := testCtx(t)
	c := fast()
	c.Header = http.Header{"Authorization": {"Bearer secret"}, "Last-Event-Id": {"spoofed"}}
	var prepared atomic.Int64
	c.Prepare = func(req *http.Request) error {
		req.Header.Set("X-Attempt", fmt.Sprint(prepared.Add(1)))
		return nil
	}
	r := collect(c.Connect(ctx, srv.URL), nil)
	if r.err != nil || len(r.events) != 2 {
		t.Fatalf("got %+v, want 2 events and a clean end (204)", r)
	}
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	for i, h := range got {
		if h.Get("Accept") != "text/event-stream" || h.Get("Cache-Control") != "no-cache" {
			t.Errorf("request %d: Accept %q, Cache-Control %q", i+1, h.Get("Accept"), h.Get("Cache-Control"))
		}
		if h.Get("Authorization") != "Bearer secret" || h.Get("X-Attempt") != fmt.Sprint(i+1) {
			t.Errorf("request %d: Authorization %q, X-Attempt %q", i+1, h.Get("Authorization"), h.Get("X-Attempt"))
		}
	}
	// No Last-Event-ID before the client has one (a caller's own is
	// replaced), then the last id it received.
	for i, want := range [][]string{nil, {"e1"}, {"e2"}} {
		if v := got[i].Values("Last-Event-ID"); strings.Join(v, ",") != strings.Join(want, ",") {
			t.Errorf("request %d: Last-Event-ID %q, want %q", i+1, v, want)
		}
	}
}

func TestClientSeededLastEventID(t *testing.T) {
	var first atomic.Value
	srv, _ := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		first.Store(r.Header.Get("Last-Event-ID"))
		w.WriteHeader(http.StatusNoContent)
	})
	ctx, _ := testCtx(t)
	c := fast()
	c.LastEventID = "seed-41"
	if r := collect(c.Connect(ctx, srv.URL), nil); r.err != nil || len(r.events) != 0 {
		t.Fatalf("got %+v", r)
	}
	if first.Load() != "seed-41" {
		t.Fatalf("first request's Last-Event-ID %q, want seed-41", first.Load())
	}
}

func TestClientPrepareError(t *testing.T) {
	srv, n := streamHandler(t, func(int, http.ResponseWriter, *http.Request, func()) {})
	ctx, _ := testCtx(t)
	boom := errors.New("no token")
	c := fast()
	c.Prepare = func(*http.Request) error { return boom }
	if r := collect(c.Connect(ctx, srv.URL), nil); !errors.Is(r.err, boom) {
		t.Fatalf("err %v, want one wrapping %v", r.err, boom)
	}
	if n.Load() != 0 {
		t.Fatalf("%d requests sent", n.Load())
	}
}

// The hub's position events move the resume point without reaching the
// caller, and a stream the hub ends resumes exactly: no gap, no duplicate.
func TestClientResumesFromHub(t *testing.T) {
	h, srv := newTestHub(t, Config{
		Retry:    time.Millisecond,
		ClientID: func(r *http.Request) (string, error) { return r.Header.Get("X-User"), nil },
	})
	ctx, _ := testCtx(t)
	c := fast()
	c.Header = http.Header{"X-User": {"ann"}}
	var retries atomic.Int64
	c.OnRetry = func(error, time.Duration) { retries.Add(1) }
	go func() {
		waitStreams(t, h, 1)
		for i := 1; i <= 3; i++ {
			h.Broadcast(Event{Data: []byte(fmt.Sprint(i))})
		}
	}()
	var want []string
	for i := 1; i <= 6; i++ {
		want = append(want, fmt.Sprint(i))
	}
	var ids []string
	r := collect(c.Connect(ctx, srv.URL), func(ev Event) bool {
		ids = append(ids, ev.ID)
		if string(ev.Data) == "3" {
			// Cut the stream and publish while the client is away.
			h.Disconnect("ann")
			for i := 4; i <= 6; i++ {
				h.Broadcast(Event{Data: []byte(fmt.Sprint(i))})
			}
		}
		return string(ev.Data) == "6"
	})
	if r.err != nil || len(r.resets) != 0 || strings.Join(r.data(), ",") != strings.Join(want, ",") {
		t.Fatalf("got %q, resets %v, err %v; want %q", r.data(), r.resets, r.err, want)
	}
	for _, ev := range r.events {
		if ev.Type != "" {
			t.Errorf("event of type %q reached the caller", ev.Type)
		}
	}
	if retries.Load() != 1 {
		t.Errorf("%d reconnections, want 1", retries.Load())
	}
	for i, id := range ids {
		if id == "" || i > 0 && id == ids[i-1] {
			t.Errorf("ids %q: every event has its own", ids)
			break
		}
	}
}

// A hub that cannot replay sends a reset: the client reports it as a
// *ResetError, then the snapshot, then live events.
func TestClientResetFromHub(t *testing.T) {
	h, srv := newTestHub(t, Config{
		Retry:    time.Millisecond,
		History:  2,
		ClientID: func(r *http.Request) (string, error) { return r.Header.Get("X-User"), nil },
	})
	ctx, _ := testCtx(t)
	c := fast()
	c.Header = http.Header{"X-User": {"ann"}}
	away := make(chan struct{}) // closed once the events the client misses are published
	var attempts atomic.Int64
	c.Prepare = func(*http.Request) error {
		if attempts.Add(1) == 2 {
			<-away
		}
		return nil
	}
	go func() {
		waitStreams(t, h, 1)
		h.Broadcast(Event{Key: "p1", Data: []byte("p1=1")})
	}()
	var lastSeen string
	var order []string
	for ev, err := range c.Connect(ctx, srv.URL) {
		var reset *ResetError
		switch {
		case errors.As(err, &reset):
			order = append(order, "reset:"+reset.Reason)
			if reset.LastEventID != lastSeen {
				t.Errorf("reset names Last-Event-ID %q, want %q", reset.LastEventID, lastSeen)
			}
			continue
		case err != nil:
			t.Fatalf("stream ended: %v (so far %q)", err, order)
		}
		order = append(order, string(ev.Data))
		lastSeen = ev.ID
		if string(ev.Data) == "p1=1" {
			h.Disconnect("ann")
			waitStreams(t, h, 0)
			for i := 2; i <= 5; i++ { // more than History: p1=2 is evicted
				h.Broadcast(Event{Key: "p1", Data: []byte(fmt.Sprint("p1=", i))})
			}
			for i := 1; i <= 3; i++ {
				h.Broadcast(Event{Data: []byte(fmt.Sprint("x", i))})
			}
			close(away)
			go func() {
				waitStreams(t, h, 1)
				h.Broadcast(Event{Data: []byte("live")})
			}()
		}
		if string(ev.Data) == "live" {
			break
		}
	}
	want := "p1=1,reset:expired,p1=5,live"
	if strings.Join(order, ",") != want {
		t.Fatalf("got %q, want %q", strings.Join(order, ","), want)
	}
}

// An id-only block moves the resume point and yields nothing; an event cut
// off by the end of the stream is discarded; a 204 ends the sequence
// cleanly.
func TestClientIDOnlyBlockAndUnfinishedEvent(t *testing.T) {
	var second atomic.Value
	srv, n := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		switch n {
		case 1:
			io.WriteString(w, "id: 7\n\ndata: cut off")
		case 2:
			second.Store(r.Header.Get("Last-Event-ID"))
			io.WriteString(w, "data: whole\n\n")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	ctx, _ := testCtx(t)
	r := collect(fast().Connect(ctx, srv.URL), nil)
	if r.err != nil || len(r.events) != 1 || string(r.events[0].Data) != "whole" || r.events[0].ID != "7" {
		t.Fatalf("got %+v, want only the whole event, with id 7, and a clean end", r)
	}
	if second.Load() != "7" || n.Load() != 3 {
		t.Fatalf("second request's Last-Event-ID %q, %d requests; want 7, 3", second.Load(), n.Load())
	}
}

func TestClientNoContentStops(t *testing.T) {
	srv, n := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		w.WriteHeader(http.StatusNoContent)
	})
	ctx, _ := testCtx(t)
	if r := collect(fast().Connect(ctx, srv.URL), nil); r.err != nil || len(r.events) != 0 {
		t.Fatalf("got %+v, want a clean end", r)
	}
	if n.Load() != 1 {
		t.Fatalf("%d requests after a 204, want 1", n.Load())
	}
}

// Answers that are not an event stream end it with a *ResponseError, after
// one request.
func TestClientResponseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, ctype string
		status      int
		body        string
		retry       bool // Client.RetryServerErrors, which must not matter here
	}{
		{"500", "text/plain", http.StatusInternalServerError, "database down", false},
		{"429 without the option", "text/plain", http.StatusTooManyRequests, "slow down", false},
		{"401", "text/plain", http.StatusUnauthorized, "who are you", true},
		{"text/html", "text/html; charset=utf-8", http.StatusOK, "<html>login</html>", true},
		{"no Content-Type", "", http.StatusOK, "data: x\n\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				w.Header()["Content-Type"] = []string{tc.ctype}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			ctx, _ := testCtx(t)
			c := fast()
			c.RetryServerErrors = tc.retry
			r := collect(c.Connect(ctx, srv.URL), nil)
			var re *ResponseError
			if !errors.As(r.err, &re) {
				t.Fatalf("err %v, want a *ResponseError", r.err)
			}
			if re.StatusCode != tc.status || re.ContentType() != tc.ctype || string(re.Body) != tc.body || re.URL != srv.URL {
				t.Errorf("got %+v", re)
			}
			if !strings.Contains(re.Error(), fmt.Sprint(tc.status)) || !strings.Contains(re.Error(), strings.TrimSpace(tc.body)) {
				t.Errorf("message %q names neither the status nor the body", re.Error())
			}
			if len(r.events) != 0 || n.Load() != 1 {
				t.Errorf("%d events, %d requests; want 0, 1", len(r.events), n.Load())
			}
		})
	}
}

// A hub's refusal of a client ID (StatusError) is a *ResponseError.
func TestClientHubRefusal(t *testing.T) {
	_, srv := newTestHub(t, Config{ClientID: func(*http.Request) (string, error) {
		return "", &StatusError{Code: http.StatusForbidden, Err: errors.New("banned")}
	}})
	ctx, _ := testCtx(t)
	var re *ResponseError
	if r := collect(fast().Connect(ctx, srv.URL), nil); !errors.As(r.err, &re) || re.StatusCode != http.StatusForbidden {
		t.Fatalf("err %v, want a 403 *ResponseError", r.err)
	}
}

// With RetryServerErrors, 5xx and 429 reconnect, honouring Retry-After.
func TestClientRetryServerErrors(t *testing.T) {
	srv, n := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		case 2:
			w.WriteHeader(http.StatusBadGateway)
		case 3:
			io.WriteString(w, "data: ok\n\n")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	ctx, _ := testCtx(t)
	c := fast()
	c.RetryServerErrors = true
	var waits []time.Duration
	var statuses []int
	c.OnRetry = func(err error, wait time.Duration) {
		var re *ResponseError
		if errors.As(err, &re) {
			statuses = append(statuses, re.StatusCode)
		}
		waits = append(waits, wait)
	}
	r := collect(c.Connect(ctx, srv.URL), nil)
	if r.err != nil || strings.Join(r.data(), ",") != "ok" || n.Load() != 4 {
		t.Fatalf("got %+v after %d requests", r, n.Load())
	}
	if fmt.Sprint(statuses) != "[429 502]" || len(waits) != 3 {
		t.Fatalf("retried after %v, waits %v", statuses, waits)
	}
	if waits[0] < time.Second || waits[1] > c.MaxBackoff {
		t.Fatalf("waits %v: want at least the Retry-After (1s), then a backoff", waits)
	}
}

func TestClientEventTooLarge(t *testing.T) {
	big := strings.Repeat("x", 2<<20) // 2 MiB, above the default limit
	srv, n := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		io.WriteString(w, "data: small\n\n")
		io.WriteString(w, "data: "+big+"\n\n")
	})
	t.Run("default limit", func(t *testing.T) {
		ctx, _ := testCtx(t)
		n.Store(0)
		r := collect(fast().Connect(ctx, srv.URL), nil)
		if !errors.Is(r.err, ErrEventTooLarge) {
			t.Fatalf("err %v, want one wrapping ErrEventTooLarge", r.err)
		}
		if strings.Join(r.data(), ",") != "small" || n.Load() != 1 {
			t.Fatalf("events %q after %d requests; want the small one, no reconnect", r.data(), n.Load())
		}
	})
	t.Run("raised limit", func(t *testing.T) {
		ctx, _ := testCtx(t)
		c := fast()
		c.MaxEventSize = 3 << 20
		r := collect(c.Connect(ctx, srv.URL), func(ev Event) bool { return len(ev.Data) == len(big) })
		if r.err != nil || len(r.events) != 2 || string(r.events[1].Data) != big {
			t.Fatalf("err %v, %d events", r.err, len(r.events))
		}
	})
}

// Bytes that are not an event stream yield nothing, and a line that never
// ends is too large rather than a silent stall.
func TestClientGarbage(t *testing.T) {
	srv, _ := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		switch n {
		case 1:
			io.WriteString(w, "\x00\xff\xfe\x80garbage\n{\"json\": true}\nretry: soon\n: comment\n\nevent\n\ndata: ok\n\n")
		default:
			junk := []byte(strings.Repeat("\x01\xfe", 1<<20)) // 2 MiB without a line end
			w.Write(junk)
		}
	})
	ctx, _ := testCtx(t)
	var retries []error
	c := fast()
	c.OnRetry = func(err error, _ time.Duration) { retries = append(retries, err) }
	r := collect(c.Connect(ctx, srv.URL), nil)
	if strings.Join(r.data(), ",") != "ok" || r.events[0].Type != "" {
		t.Fatalf("events %+v, want only ok", r.events)
	}
	if !errors.Is(r.err, ErrEventTooLarge) || len(retries) != 1 {
		t.Fatalf("err %v after retries %v, want ErrEventTooLarge on the second connection", r.err, retries)
	}
}

// A connection that drops in the middle of an event loses that event only:
// the client resumes from the last whole one.
func TestClientDropMidEvent(t *testing.T) {
	var resumed atomic.Value
	srv, _ := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		if n == 1 {
			io.WriteString(w, "id: 1\ndata: one\n\nid: 2\ndata: tw")
			flush()
			panic(http.ErrAbortHandler) // the connection is cut, not ended
		}
		resumed.Store(r.Header.Get("Last-Event-ID"))
		io.WriteString(w, "id: 2\ndata: two\n\n")
		flush()
		<-r.Context().Done()
	})
	ctx, _ := testCtx(t)
	var retried []error
	c := fast()
	c.OnRetry = func(err error, _ time.Duration) { retried = append(retried, err) }
	r := collect(c.Connect(ctx, srv.URL), func(ev Event) bool { return ev.ID == "2" })
	if r.err != nil || strings.Join(r.data(), ",") != "one,two" {
		t.Fatalf("got %+v", r)
	}
	if resumed.Load() != "1" || len(retried) != 1 || retried[0] == nil {
		t.Fatalf("resumed from %q after %v", resumed.Load(), retried)
	}
}

// A connection that stalls, between events or inside one, ends as soon as
// the context does.
func TestClientCancelWhileStalled(t *testing.T) {
	for _, tail := range []string{"", "data: half an ev"} {
		srv, _ := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
			io.WriteString(w, "data: first\n\n"+tail)
			flush()
			<-r.Context().Done()
		})
		ctx, cancel := testCtx(t)
		var timer *time.Timer
		r := collect(fast().Connect(ctx, srv.URL), func(Event) bool {
			timer = time.AfterFunc(20*time.Millisecond, cancel) // while the next read waits
			return false
		})
		if timer != nil {
			timer.Stop()
		}
		if !errors.Is(r.err, context.Canceled) || strings.Join(r.data(), ",") != "first" {
			t.Fatalf("tail %q: got %+v, want first and context.Canceled", tail, r)
		}
	}
}

// IdleTimeout drops a stalled connection and reconnects; heartbeats keep
// one alive.
func TestClientIdleTimeout(t *testing.T) {
	srv, n := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		switch n {
		case 1:
			flush()
			<-r.Context().Done() // stalls
		case 2:
			// Heartbeats for well over the idle timeout, then an event.
			for range 8 {
				io.WriteString(w, ":\n")
				flush()
				time.Sleep(50 * time.Millisecond)
			}
			io.WriteString(w, "data: ok\n\n")
			flush()
			<-r.Context().Done()
		}
	})
	ctx, _ := testCtx(t)
	var retried []error
	c := fast()
	c.IdleTimeout = 300 * time.Millisecond
	c.OnRetry = func(err error, _ time.Duration) { retried = append(retried, err) }
	r := collect(c.Connect(ctx, srv.URL), func(Event) bool { return true })
	if r.err != nil || strings.Join(r.data(), ",") != "ok" || n.Load() != 2 {
		t.Fatalf("got %+v after %d requests", r, n.Load())
	}
	if len(retried) != 1 || !strings.Contains(retried[0].Error(), "nothing received for 300ms") {
		t.Fatalf("retried after %v, want one idle timeout", retried)
	}
}

// A long wait before reconnecting ends as soon as the context does.
func TestClientCancelWhileWaiting(t *testing.T) {
	srv, n := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		io.WriteString(w, "retry: 3600000\ndata: a\n\n")
	})
	ctx, cancel := testCtx(t)
	c := fast()
	var wait time.Duration
	c.OnRetry = func(_ error, d time.Duration) {
		wait = d
		time.AfterFunc(20*time.Millisecond, cancel) // while the client waits
	}
	r := collect(c.Connect(ctx, srv.URL), nil)
	if !errors.Is(r.err, context.Canceled) || len(r.events) != 1 || n.Load() != 1 {
		t.Fatalf("got %+v after %d requests", r, n.Load())
	}
	if wait < 30*time.Minute || wait > time.Hour {
		t.Fatalf("wait %v, want within the upper half of the server's retry (1h)", wait)
	}
}

// The server's retry field sets the reconnection time; waits double after
// each attempt that fails, up to MaxBackoff, and start over after a healthy
// connection.
func TestClientBackoff(t *testing.T) {
	srv, _ := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		switch {
		case n == 1, n == 5:
			io.WriteString(w, "retry: 2\ndata: healthy\n\n")
		case n <= 8:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	ctx, _ := testCtx(t)
	c := &Client{Retry: time.Hour, MaxBackoff: 5 * time.Millisecond, RetryServerErrors: true}
	var waits []time.Duration
	c.OnRetry = func(_ error, d time.Duration) { waits = append(waits, d) }
	r := collect(c.Connect(ctx, srv.URL), nil)
	if r.err != nil || len(r.events) != 2 {
		t.Fatalf("got %+v", r)
	}
	ms := time.Millisecond
	// Upper bounds: after the healthy 1, failures 2-4, healthy 5, failures 6-8.
	ceil := []time.Duration{2 * ms, 4 * ms, 5 * ms, 5 * ms, 2 * ms, 4 * ms, 5 * ms, 5 * ms}
	if len(waits) != len(ceil) {
		t.Fatalf("waits %v, want %d", waits, len(ceil))
	}
	for i, d := range waits {
		if d < ceil[i]/2 || d > ceil[i] {
			t.Errorf("wait %d = %v, want within [%v, %v] (all %v)", i+1, d, ceil[i]/2, ceil[i], waits)
		}
	}
}

// A connection that only moved the resume point (an id-only block) was
// healthy too: the waits after it do not grow.
func TestClientIDOnlyConnectionIsHealthy(t *testing.T) {
	srv, _ := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		if n > 4 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		fmt.Fprintf(w, "retry: 2\nid: %d\n\n", n)
	})
	ctx, _ := testCtx(t)
	c := &Client{MaxBackoff: time.Hour}
	var waits []time.Duration
	c.OnRetry = func(_ error, d time.Duration) { waits = append(waits, d) }
	if r := collect(c.Connect(ctx, srv.URL), nil); r.err != nil || len(r.events) != 0 {
		t.Fatalf("got %+v", r)
	}
	if len(waits) != 4 {
		t.Fatalf("waits %v, want 4", waits)
	}
	for _, d := range waits {
		if d > 2*time.Millisecond {
			t.Fatalf("waits %v, want each at most the retry field's 2ms", waits)
		}
	}
}

// MaxRetries gives up after that many failed attempts in a row, naming the
// last failure: here a server that is gone.
func TestClientMaxRetries(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	ctx, _ := testCtx(t)
	c := fast()
	c.MaxRetries = 3
	retries := 0
	c.OnRetry = func(error, time.Duration) { retries++ }
	r := collect(c.Connect(ctx, url), nil)
	if !errors.Is(r.err, ErrRetriesExhausted) || !strings.Contains(r.err.Error(), "after 3 retries") || !strings.Contains(r.err.Error(), "refused") {
		t.Fatalf("err %v", r.err)
	}
	if retries != 3 {
		t.Fatalf("%d retries, want 3", retries)
	}
}

// A hub over its stream limit answers 200 with only a retry field: not a
// healthy connection, so the client backs off instead of hammering it.
func TestClientBacksOffFromHubLimit(t *testing.T) {
	h, srv := newTestHub(t, Config{MaxStreams: 1, RefuseRetry: time.Millisecond})
	dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	ctx, _ := testCtx(t)
	c := &Client{MaxBackoff: time.Hour, MaxRetries: 4}
	var waits []time.Duration
	c.OnRetry = func(_ error, d time.Duration) { waits = append(waits, d) }
	r := collect(c.Connect(ctx, srv.URL), nil)
	if !errors.Is(r.err, ErrRetriesExhausted) || !errors.Is(r.err, io.EOF) || len(r.events) != 0 {
		t.Fatalf("got %+v", r)
	}
	if len(waits) != 4 || waits[3] < 4*waits[0]/2 {
		t.Fatalf("waits %v, want four, growing", waits)
	}
}

// Breaking out of the loop closes the connection.
func TestClientBreakCloses(t *testing.T) {
	h, srv := newTestHub(t, Config{})
	ctx, _ := testCtx(t)
	go func() {
		waitStreams(t, h, 1)
		h.Broadcast(Event{Data: []byte("one")})
	}()
	r := collect(Connect(ctx, srv.URL), func(Event) bool { return true })
	if r.err != nil || strings.Join(r.data(), ",") != "one" {
		t.Fatalf("got %+v", r)
	}
	waitStreams(t, h, 0)
}

// No goroutine outlives a range, however it ends.
func TestClientNoGoroutineLeak(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/500":
			w.WriteHeader(http.StatusInternalServerError)
			return
		case "/eof":
			io.WriteString(w, "retry: 3600000\ndata: a\n\n")
			return
		case "/big":
			io.WriteString(w, "data: "+strings.Repeat("x", 2<<20)+"\n\n")
			return
		}
		io.WriteString(w, "data: a\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	defer func() {
		srv.CloseClientConnections() // after a failure, so that Close returns
		srv.Close()
	}()
	tr := &http.Transport{}
	hc := &http.Client{Transport: tr}
	// Counted with the server listening and no connection open: a
	// connection the client left open holds goroutines on both sides.
	before := runtime.NumGoroutine()
	run := func(path string, stop func(Event) bool, onRetry func(context.CancelFunc)) {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		c := &Client{HTTPClient: hc, Retry: time.Millisecond, IdleTimeout: time.Hour}
		if onRetry != nil {
			c.OnRetry = func(error, time.Duration) { onRetry(cancel) }
		}
		if stop == nil {
			stop = func(Event) bool {
				time.AfterFunc(10*time.Millisecond, cancel)
				return false
			}
		}
		collect(c.Connect(ctx, srv.URL+path), stop)
		waitNoClientGoroutines(t, path)
	}
	// A loop that breaks out leaves nothing behind even while its context
	// lives on.
	c := &Client{HTTPClient: hc, IdleTimeout: time.Hour}
	collect(c.Connect(context.Background(), srv.URL+"/stall"), func(Event) bool { return true })
	waitNoClientGoroutines(t, "break")
	run("/stall", nil, nil) // cancelled mid-read
	run("/eof", func(Event) bool { return false }, func(cancel context.CancelFunc) {
		time.AfterFunc(10*time.Millisecond, cancel) // cancelled while waiting
	})
	run("/204", nil, nil)
	run("/500", nil, nil)
	run("/big", nil, nil)
	// A restart's watcher ends with its connection.
	restart := make(chan struct{}, 1)
	c = &Client{HTTPClient: hc, Retry: time.Millisecond, IdleTimeout: time.Hour, Restart: restart}
	seen := 0
	collect(c.Connect(context.Background(), srv.URL+"/stall"), func(Event) bool {
		if seen++; seen == 1 {
			restart <- struct{}{}
		}
		return seen == 2
	})
	waitNoClientGoroutines(t, "restart")
	// What is left is the transport's pool of idle connections (the 204
	// and the 500 were read to their end), as after any net/http request.
	tr.CloseIdleConnections()
	waitGoroutines(t, before)
}

// After a 204 with the default HTTP client, what remains is the default
// transport's idle keep-alive connection, which Connect's doc admits to, and
// nothing of the client's: CloseIdleConnections ends the rest.
func TestClientNoGoroutineLeakAfterNoContent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	tr := http.DefaultTransport.(*http.Transport)
	tr.CloseIdleConnections()
	before := runtime.NumGoroutine()
	ctx, _ := testCtx(t)
	if r := collect(Connect(ctx, srv.URL), nil); r.err != nil || len(r.events) != 0 {
		t.Fatalf("got %+v, want a clean end", r)
	}
	waitNoClientGoroutines(t, "204")
	tr.CloseIdleConnections()
	waitGoroutines(t, before)
}

// clientFiles are the files of the client's code, as a goroutine's stack
// names them.
var clientFiles = func() []string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	return []string{dir + "/client.go:", dir + "/decoder.go:", dir + "/backoff.go:"}
}()

// clientGoroutines returns the stacks of the goroutines, other than the
// caller's, that run the client's code or were started by it.
func clientGoroutines() []string {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n")[1:] { // the caller's comes first
		for _, f := range clientFiles {
			if strings.Contains(g, f) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// waitNoClientGoroutines fails the test if goroutines of the client's are
// still there after a few seconds.
func waitNoClientGoroutines(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := clientGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d goroutines of the client outlive the range:\n%s", what, len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitGoroutines fails the test if more than want goroutines are still
// there after a few seconds.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", want, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBackoff(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		base, limit time.Duration
		n           int
		u           float64
		want        time.Duration
	}{
		{10 * ms, time.Second, 0, 0, 5 * ms},
		{10 * ms, time.Second, 0, 0.999999, 10 * ms},
		{10 * ms, time.Second, 3, 0, 40 * ms},
		{10 * ms, time.Second, 3, 0.5, 60 * ms},
		{10 * ms, time.Second, 60, 0, 500 * ms},          // capped, no overflow
		{time.Minute, time.Second, 5, 0, 30 * 1000 * ms}, // the cap never undercuts the server's retry
		{0, time.Second, 0, 0, 0},                        // retry: 0 reconnects at once after a healthy stream...
		{0, time.Second, 2, 0, 2 * ms},                   // ...but failures still back off
	} {
		if got := backoff(tc.base, tc.limit, tc.n, tc.u); got < tc.want-time.Microsecond || got > tc.want+time.Microsecond {
			t.Errorf("backoff(%v, %v, %d, %v) = %v, want %v", tc.base, tc.limit, tc.n, tc.u, got, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"120":                           2 * time.Minute,
		" 5 ":                           5 * time.Second,
		"-3":                            0,
		"soon":                          0,
		"Tue, 01 Dec 2026 12:00:30 GMT": 30 * time.Second,
		"Tue, 01 Dec 2026 11:59:00 GMT": 0, // in the past
	} {
		h := http.Header{}
		if v != "" {
			h.Set("Retry-After", v)
		}
		if got := retryAfter(h, now); got != want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
}

// A connection that stays open a while without an event (a resumed stream
// that only gets heartbeats) is healthy: MaxRetries counts only attempts
// that fail at once, so a quiet stream whose server restarts now and then
// is never given up on.
func TestClientQuietConnectionIsHealthy(t *testing.T) {
	srv, n := streamHandler(t, func(_ int, w http.ResponseWriter, r *http.Request, flush func()) {
		_, _ = io.WriteString(w, ":\n")
		flush()
		select {
		case <-time.After(healthyAfter + 100*time.Millisecond):
		case <-r.Context().Done():
		}
	})
	ctx, cancel := testCtx(t)
	c := fast()
	c.MaxRetries = 1
	c.OnRetry = func(error, time.Duration) {
		if n.Load() >= 3 {
			cancel()
		}
	}
	r := collect(c.Connect(ctx, srv.URL), nil)
	if !errors.Is(r.err, context.Canceled) || n.Load() != 3 {
		t.Fatalf("after %d quiet connections: %v, want the context's end", n.Load(), r.err)
	}
}
