package sse

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Abuse tests: each feeds the hub one kind of hostile or broken input and
// checks that it gets a clear error or a bounded refusal while a bystander
// stream keeps receiving. (CR, LF and NUL in an event's ID or Type are
// TestBadEventsAreRefused.)

// bystander opens a stream that must keep working, and returns a check that
// a broadcast still reaches it.
func bystander(t *testing.T, h *Hub, url string, header http.Header) func() {
	t.Helper()
	c, _ := dialAt(t, url, header)
	return func() {
		t.Helper()
		if _, err := h.Broadcast(data("still here")); err != nil {
			t.Fatal(err)
		}
		if ev := c.next(); string(ev.Data) != "still here" {
			t.Fatalf("the bystander got %q", ev.Data)
		}
	}
}

// A CR in data is a line break like LF and CRLF: the client receives LF,
// and no CR ever reaches the wire where it could end a field early.
func TestAbuseCRInData(t *testing.T) {
	h, srv := newTestHub(t, Config{Heartbeat: -1})
	c, _ := dialAt(t, srv.URL, nil)
	h.Broadcast(Event{Type: "x", Data: []byte("a\rid: forged\r\rb\r\nc")})
	ev := c.next()
	if ev.Type != "x" || string(ev.Data) != "a\nid: forged\n\nb\nc" || ev.ID == "forged" {
		t.Fatalf("got %+v", ev)
	}
	frame, err := AppendEvent(nil, Event{Data: []byte("a\rb")})
	if err != nil || bytes.ContainsRune(frame, '\r') {
		t.Fatalf("frame %q, %v", frame, err)
	}
}

// A 1 MiB Last-Event-ID (net/http's default header bound lets it through)
// gets a reset ("unknown") and a log line holding 48 bytes of it, not a
// megabyte.
func TestAbuseHugeLastEventID(t *testing.T) {
	var logged syncBuffer
	h, srv := newTestHub(t, Config{Heartbeat: -1, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	check := bystander(t, h, srv.URL, nil)
	huge := strings.Repeat("x", 1<<20)
	c, resp := tryDial(t, nil, srv.URL, lastEventID(huge))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s", resp.Status)
	}
	c.start(huge)
	if ev := c.next(); ev.Type != ResetEvent || string(ev.Data) != "unknown" {
		t.Fatalf("got %s %q, want a reset", ev.Type, ev.Data)
	}
	check()
	if out := logged.String(); len(out) > 64<<10 || !strings.Contains(out, "(1048576 bytes)") {
		t.Fatalf("the log holds %d bytes: %.300q", len(out), out)
	}
}

// 10,000 topics in one request are refused with 400 (Config.MaxTopics);
// up to the bound they are served.
func TestAbuseManyTopics(t *testing.T) {
	topics := func(r *http.Request) ([]string, error) { return strings.Split(r.URL.Query().Get("t"), ","), nil }
	h, srv := newTestHub(t, Config{Topics: topics, Heartbeat: -1})
	check := bystander(t, h, srv.URL+"?t=a", nil)
	many := make([]string, 10_000)
	for i := range many {
		many[i] = fmt.Sprint("t", i)
	}
	resp, err := http.Get(srv.URL + "?t=" + strings.Join(many, ","))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("10,000 topics: %s, want 400", resp.Status)
	}
	c, _ := dialAt(t, srv.URL+"?t="+strings.Join(many[:DefaultMaxTopics], ","), nil)
	h.Publish(many[DefaultMaxTopics-1], data("last topic"))
	if ev := c.next(); string(ev.Data) != "last topic" {
		t.Fatalf("got %q", ev.Data)
	}
	check()
	if st := h.Stats(); st.Streams != 2 {
		t.Fatalf("%d streams, want 2", st.Streams)
	}
}

// Thousands of streams for one client ID: up to
// DefaultMaxStreamsPerClient are served, the rest refused with a retry and
// no events, and the other IDs' streams go on.
func TestAbuseManyStreamsForOneID(t *testing.T) {
	h, srv := newTestHub(t, Config{ClientID: headerID, Heartbeat: -1, RefuseRetry: time.Hour})
	check := bystander(t, h, srv.URL, http.Header{"X-User": {"other"}})
	const n = 2000
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var served, refused atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var open []*http.Response
	var mu sync.Mutex
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			req.Header.Set("X-User", "greedy")
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			br := bufio.NewReader(resp.Body)
			line, _ := br.ReadString('\n') // the retry line both kinds of answer start with
			if !strings.HasPrefix(line, "retry: ") {
				t.Errorf("first line %q", line)
			}
			if rest, err := io.ReadAll(io.LimitReader(br, 1)); err == nil && len(rest) == 0 {
				refused.Add(1) // ended after its retry line
				resp.Body.Close()
				return
			}
			served.Add(1)
			mu.Lock()
			open = append(open, resp)
			mu.Unlock()
		}()
	}
	wg.Wait()
	// A served stream's start (its position) arrived; a refused one ended.
	if served.Load() != DefaultMaxStreamsPerClient || refused.Load() != n-DefaultMaxStreamsPerClient {
		t.Fatalf("served %d, refused %d; want %d and %d", served.Load(), refused.Load(), DefaultMaxStreamsPerClient, n-DefaultMaxStreamsPerClient)
	}
	if st := h.Stats(); st.Refused != n-DefaultMaxStreamsPerClient {
		t.Fatalf("Stats.Refused %d", st.Refused)
	}
	check()
	for _, resp := range open {
		resp.Body.Close()
	}
}

// A ClientID or Topics function that panics takes down only its own
// request (net/http recovers the panic and closes that connection); one
// that blocks holds only its own, and Shutdown does not wait for it.
func TestAbusePanickingAndBlockingClientID(t *testing.T) {
	release := make(chan struct{})
	var blocked atomic.Int64
	h, srv := newTestHub(t, Config{
		Heartbeat: -1,
		ClientID: func(r *http.Request) (string, error) {
			switch r.URL.Query().Get("do") {
			case "panic":
				panic("ClientID bug")
			case "block":
				blocked.Add(1)
				<-release
			}
			return "ok", nil
		},
		Topics: func(r *http.Request) ([]string, error) {
			if r.URL.Query().Get("do") == "topics-panic" {
				panic("Topics bug")
			}
			return nil, nil
		},
	})
	srv.Config.ErrorLog = quietLog() // net/http logs the recovered panics
	check := bystander(t, h, srv.URL, nil)
	for _, do := range []string{"panic", "topics-panic"} {
		resp, err := http.Get(srv.URL + "?do=" + do)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("?do=%s answered %s", do, resp.Status)
		}
	}
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.URL + "?do=block")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && len(b) > 0 && !bytes.HasPrefix(b, []byte("retry:")) {
				err = fmt.Errorf("a request whose ClientID returned after Shutdown got %q", b)
			}
		}
		done <- err
	}()
	waitFor(t, "ClientID to block", func() bool { return blocked.Load() == 1 })
	check()
	if st := h.Stats(); st.Streams != 1 {
		t.Fatalf("%d streams, want only the bystander's", st.Streams)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a ClientID blocked: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := h.Stats(); st.Streams != 0 {
		t.Fatalf("%d streams after Shutdown", st.Streams)
	}
}

// quietLog discards net/http's server log.
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

// A hook that panics takes down only its own stream's request, is counted
// in Stats.HookPanics, and the hub goes on serving; with Config.Hijack an
// OnDisconnect that panics on the hub's own goroutine is logged, not fatal.
func TestAbuseHooksThatPanic(t *testing.T) {
	var logged syncBuffer
	h, srv := newTestHub(t, Config{
		ClientID:  headerID,
		Heartbeat: -1,
		Logger:    slog.New(slog.NewTextHandler(&logged, nil)),
		OnConnect: func(info StreamInfo) {
			if info.ClientID == "bad" {
				panic("OnConnect bug")
			}
		},
		OnDisconnect: func(info StreamInfo, _ DisconnectReason) {
			if info.ClientID == "leaving" {
				panic("OnDisconnect bug")
			}
		},
	})
	srv.Config.ErrorLog = quietLog()
	check := bystander(t, h, srv.URL, http.Header{"X-User": {"good"}})

	// net/http recovers the panic and aborts the connection, before or
	// after the response head: either way the request ends.
	if resp, err := http.DefaultClient.Do(mustRequest(t, srv.URL, http.Header{"X-User": {"bad"}})); err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && !*hijackAll {
			t.Fatalf("the panicking OnConnect's request ended cleanly")
		}
	}
	waitFor(t, "the OnConnect panic to be counted", func() bool { return h.Stats().HookPanics == 1 })

	leaving, _ := dialAt(t, srv.URL, http.Header{"X-User": {"leaving"}})
	_ = leaving
	h.Disconnect("leaving")
	waitFor(t, "the OnDisconnect panic to be counted", func() bool { return h.Stats().HookPanics == 2 })
	check()
	waitFor(t, "only the bystander to be left", func() bool { return h.Stats().Streams == 1 })
	if *hijackAll {
		if !strings.Contains(logged.String(), "OnDisconnect bug") {
			t.Fatalf("the panic on the hub's goroutine was not logged: %q", logged.String())
		}
	}
}

// A hook that blocks holds only its own stream: the others keep receiving,
// Shutdown gives up by its context, and the stream ends once the hook
// returns.
func TestAbuseHookThatBlocks(t *testing.T) {
	release := make(chan struct{})
	var entered atomic.Int64
	h, err := NewHub(testConfig(Config{ClientID: headerID, Heartbeat: -1, OnConnect: func(info StreamInfo) {
		if info.ClientID == "slow" {
			entered.Add(1)
			<-release
		}
	}}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	check := bystander(t, h, srv.URL, http.Header{"X-User": {"good"}})
	go func() {
		if resp, err := http.DefaultClient.Do(mustRequest(t, srv.URL, http.Header{"X-User": {"slow"}})); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	waitFor(t, "OnConnect to block", func() bool { return entered.Load() == 1 })
	for range 3 {
		check()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := h.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a hook blocked: %v, want its context's error", err)
	}
	close(release)
	waitFor(t, "the blocked stream to end", func() bool { return h.Stats().Streams == 0 })
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown once the hook returned: %v", err)
	}
}

// With a tenth of the clients stuck (connected, never reading), memory
// stays bounded: each stuck stream holds at most its queue until it is
// ended as slow, and every reading client gets every event.
func TestAbuseStuckClientsBoundMemory(t *testing.T) {
	const readers, stuck, events, size, batch = 18, 2, 2000, 4096, 8
	const queue = 64 << 10
	h, err := NewHub(testConfig(Config{Heartbeat: -1, QueueBytes: queue, History: -1}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallSendBuffers{srv.Listener}
	srv.Start()
	defer srv.Close()
	defer shutdown(t, h)
	addr := strings.TrimPrefix(srv.URL, "http://")
	for range stuck {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.(*net.TCPConn).SetReadBuffer(4096)
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	cs := make([]*testClient, readers)
	for i := range cs {
		cs[i], _ = dialAt(t, srv.URL, nil)
	}
	waitStreams(t, h, readers+stuck)
	runtime.GC()
	var before, now runtime.MemStats
	runtime.ReadMemStats(&before)
	payload := bytes.Repeat([]byte("x"), size)
	var peak int64
	for i := 0; i < events; i += batch {
		for range batch {
			if _, err := h.Broadcast(Event{Data: payload}); err != nil {
				t.Fatal(err)
			}
		}
		if i%(25*batch) == 0 {
			// The live heap, while the stuck streams' queues are full.
			runtime.GC()
			runtime.ReadMemStats(&now)
			peak = max(peak, int64(now.HeapAlloc)-int64(before.HeapAlloc))
		}
		for r, c := range cs {
			for n := range batch {
				if ev := c.next(); len(ev.Data) != size {
					t.Fatalf("reader %d, event %d: %d bytes", r, i+n, len(ev.Data))
				}
			}
		}
	}
	// Every queue full at once, plus slack for the test's own clients and
	// the runtime: generous, since the point is that the live heap does
	// not grow with the 8 MB published to each stuck stream.
	if limit := int64((readers+stuck)*queue + 4<<20); peak > limit {
		t.Fatalf("the heap grew by %d KiB, over %d KiB", peak>>10, limit>>10)
	}
	if st := h.Stats(); st.SlowDisconnects != stuck {
		t.Fatalf("%d slow disconnects, want the %d stuck streams ended", st.SlowDisconnects, stuck)
	}
	t.Logf("heap grew by at most %d KiB while %d KiB went to each stream", peak>>10, events*size>>10)
}

// smallSendBuffers gives each accepted connection a small send buffer, so
// that a client that stops reading fills it at once rather than after the
// megabytes a loopback socket would take.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// shutdown shuts h down within the test timeout.
func shutdown(t *testing.T, h *Hub) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
