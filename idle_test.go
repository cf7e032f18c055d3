package sse

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests here run a taken-over stream (with Config.Poll where the
// platform has it) whatever the flags say: what they check happens to a
// stream that holds no goroutine while it is idle.

// leanConfig is cfg with Hijack on, and Poll where epoll is.
func leanConfig(cfg Config) Config {
	cfg.Hijack = true
	cfg.Poll = runtime.GOOS == "linux"
	return cfg
}

// awaitIdle waits until h runs no goroutine for its streams' writing or
// reading: every stream is idle, watched by the poller at most.
func awaitIdle(t *testing.T, h *Hub) {
	t.Helper()
	waitFor(t, "the streams to be idle", func() bool {
		return hubRunning(h, "drain") == 0 && hubRunning(h, "quickWrite") == 0 &&
			(runtime.GOOS != "linux" || hubRunning(h, "watch") == 0)
	})
}

// A stream that is idle, with no writer and (polled) no reader goroutine,
// still ends promptly for every reason a stream ends for besides its
// client: its credential's expiry, MaxLifetime, Disconnect, Shutdown. Each
// writes what was queued first, is counted, and leaves no goroutine.
func TestIdleStreamEndsForEveryReason(t *testing.T) {
	var tk tokens
	reasons := make(chan string, 8)
	h, srv := newTestHub(t, leanConfig(Config{Authenticate: tk.authenticate, Heartbeat: -1,
		MaxLifetime: time.Hour,
		OnDisconnect: func(s StreamInfo, r DisconnectReason) {
			reasons <- s.ClientID + " " + r.String()
		}}))
	tk.set("ann", "ann", time.Now().Add(time.Hour))
	tk.set("bob", "bob", time.Now().Add(time.Hour))
	tk.set("cat", "cat", time.Now().Add(time.Hour))
	ann := dial(t, nil, srv.URL, token("ann"))
	bob := dial(t, nil, srv.URL, token("bob"))
	cat := dial(t, nil, srv.URL, token("cat"))
	waitStreams(t, h, 3)
	for _, id := range []string{"ann", "bob", "cat"} {
		h.Send(id, data("last of "+id))
	}
	for _, c := range []*testClient{ann, bob, cat} {
		c.next()
	}
	awaitIdle(t, h)

	expect := func(c *testClient, id, reason string) {
		t.Helper()
		rest, err := c.drain()
		if err == nil || len(rest) != 1 || string(rest[0].Data) != "queued for "+id {
			t.Fatalf("%s got %v, then %v; want what was queued, then its end", id, rest, err)
		}
		if got := <-reasons; got != id+" "+reason {
			t.Fatalf("ended: %q, want %q", got, id+" "+reason)
		}
	}

	// Its credential expires: the test brings its appointment forward
	// rather than wait for a clock, and the heap's goroutine ends it.
	h.Send("ann", data("queued for ann"))
	awaitIdle(t, h)
	h.mu.RLock()
	s := h.reg.byID["ann"][0]
	h.mu.RUnlock()
	h.unschedule(s)
	h.schedule(s, time.Now(), ReasonExpired)
	expect(ann, "ann", ReasonExpired.String())

	h.Send("bob", data("queued for bob"))
	awaitIdle(t, h)
	if n := h.Disconnect("bob"); n != 1 {
		t.Fatalf("Disconnect ended %d streams", n)
	}
	expect(bob, "bob", ReasonDisconnected.String())

	h.Send("cat", data("queued for cat"))
	awaitIdle(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	expect(cat, "cat", ReasonShutdown.String())
	if st := h.Stats(); st.Expired != 1 || st.Streams != 0 {
		t.Fatalf("stats %+v", st)
	}
	noHubGoroutines(t, h)
}

// MaxLifetime ends idle polled streams too, each counted.
func TestIdleStreamsReachTheirLifetime(t *testing.T) {
	const n = 20
	var ended sync.WaitGroup
	ended.Add(n)
	h, srv := newTestHub(t, leanConfig(Config{MaxLifetime: 300 * time.Millisecond, Heartbeat: -1,
		OnDisconnect: func(_ StreamInfo, r DisconnectReason) {
			if r != ReasonLifetime {
				t.Errorf("ended as %v, want %v", r, ReasonLifetime)
			}
			ended.Done()
		}}))
	var cs []*testClient
	for range n {
		cs = append(cs, dial(t, nil, srv.URL, nil))
	}
	for _, c := range cs {
		if _, err := c.drain(); err == nil {
			t.Fatal("a stream ended with no error")
		}
	}
	ended.Wait()
	if st := h.Stats(); st.LifetimeEnds != n || st.Streams != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A client that stops reading in the middle of its replay (on a socket
// that cannot take the replay) is ended by the write timeout, counted, and
// neither holds up the others nor Shutdown.
func TestStalledReplayEndsByTheWriteTimeout(t *testing.T) {
	for _, name := range []string{"hijack", "poll"} {
		t.Run(name, func(t *testing.T) {
			cfg := Config{Hijack: true, Heartbeat: -1, WriteTimeout: 300 * time.Millisecond, QueueBytes: 64 << 10}
			if name == "poll" {
				cfg = leanConfig(cfg)
			}
			reasons := make(chan DisconnectReason, 2)
			cfg.OnDisconnect = func(_ StreamInfo, r DisconnectReason) { reasons <- r }
			h, err := NewHub(cfg)
			if err != nil {
				t.Fatal(err)
			}
			srv := smallBufferServer(t, h)
			payload := strings.Repeat("x", 4<<10)
			for i := range 500 { // 2 MB of replay, far more than the socket buffers
				h.Broadcast(Event{ID: fmt.Sprint(i), Data: []byte(payload)})
			}

			addr := strings.TrimPrefix(srv.URL, "http://")
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.(*net.TCPConn).SetReadBuffer(1024)
			fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nLast-Event-ID: 0\r\n\r\n", addr)
			br := bufio.NewReader(conn)
			if _, err := br.Peek(1); err != nil { // it started, then stops reading
				t.Fatal(err)
			}

			other := dial(t, nil, srv.URL, nil)
			select {
			case r := <-reasons:
				if r != ReasonWriteFailed && r != ReasonSlow {
					t.Fatalf("the stalled stream ended as %v", r)
				}
			case <-time.After(testTimeout):
				t.Fatal("the stream that stopped reading mid-replay never ended")
			}
			if n, _ := h.Broadcast(data("still serving")); n != 1 {
				t.Fatalf("Broadcast reached %d streams, want 1", n)
			}
			if ev := other.next(); string(ev.Data) != "still serving" {
				t.Fatalf("the other client got %q", ev.Data)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := h.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			noHubGoroutines(t, h)
		})
	}
}

// The hooks may call every method of the hub on a taken-over, polled
// stream too, whatever ends it: its client leaving (noticed by the
// poller), Disconnect, its lifetime; the last calls Shutdown.
func TestLeanHooksCallEveryMethod(t *testing.T) {
	var h *Hub
	var mu sync.Mutex
	ended := map[string]DisconnectReason{}
	shut := make(chan error, 1)
	everything := func(id string) {
		h.Send(id, data("to "+id))
		h.Broadcast(data("to all"))
		h.Publish("t", data("to t"))
		h.Subscribe(id, "t")
		h.Unsubscribe(id, "t")
		h.Disconnect("nobody")
		_ = h.Stats()
	}
	h, srv := newTestHub(t, leanConfig(Config{ClientID: headerID, Heartbeat: -1, MaxLifetime: time.Hour,
		Topics: queryTopics,
		OnConnect: func(s StreamInfo) {
			everything(s.ClientID)
			if s.ClientID == "bob" {
				h.Disconnect("bob") // itself, at once
			}
		},
		OnDisconnect: func(s StreamInfo, r DisconnectReason) {
			everything(s.ClientID)
			h.Disconnect(s.ClientID)
			mu.Lock()
			ended[s.ClientID] = r
			last := len(ended) == 3
			mu.Unlock()
			if last {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				shut <- h.Shutdown(ctx)
			}
		}}))
	ann := dial(t, nil, srv.URL, user("ann"))
	bob := dial(t, nil, srv.URL, user("bob"))
	if _, err := bob.drain(); err == nil {
		t.Fatal("bob's stream ended with no error")
	}
	cat := dial(t, nil, srv.URL, user("cat"))
	waitStreams(t, h, 2)
	awaitIdle(t, h)
	ann.close()
	waitStreams(t, h, 1)
	h.Disconnect("cat")
	cat.drain()
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown from OnDisconnect: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Shutdown from OnDisconnect did not return")
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]DisconnectReason{"ann": ReasonClientGone, "bob": ReasonDisconnected, "cat": ReasonDisconnected}
	for id, r := range want {
		if ended[id] != r {
			t.Errorf("%s ended as %v, want %v", id, ended[id], r)
		}
	}
	noHubGoroutines(t, h)
}

// shutdownStreams is how many idle streams TestShutdownManyIdlePolledStreams
// opens: 1,000 by default, under the race detector's limit of 8,128
// goroutines, which Shutdown's drains would pass at 10,000 (run it with
// -sse.shutdown-streams 10000 without -race for that).
var shutdownStreams = flag.Int("sse.shutdown-streams", 1000, "idle streams for TestShutdownManyIdlePolledStreams")

// Shutdown with a context shorter than the streams take to end returns by
// its deadline, and every goroutine of the hub's ends afterwards, with
// many idle polled streams (not a measure: a check that nothing waits for
// what the context cut short). The clients are another process's, so that
// this one holds only the hub's end of each connection.
func TestShutdownManyIdlePolledStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("opens a thousand connections")
	}
	n := *shutdownStreams
	h, srv := newTestHub(t, leanConfig(Config{Heartbeat: -1, MaxStreams: -1}))
	before := runtime.NumGoroutine()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SSE_TEST_CLIENTS_ADDR="+srv.Listener.Addr().String(), fmt.Sprintf("SSE_TEST_CLIENTS_N=%d", n))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe() // the clients hang up when it closes
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { in.Close(); _ = cmd.Wait() }()
	waitStreams(t, h, n)
	awaitIdle(t, h)
	// net/http's goroutines for the connections return once each is
	// taken over; then the idle streams hold none (the poller's is one).
	waitFor(t, "the idle streams to hold no goroutine", func() bool {
		return runtime.NumGoroutine() <= before+2
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	began := time.Now()
	if err := h.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	t.Logf("Shutdown returned after %v", time.Since(began))
	// Each stream's drain writes its end and lingers (lingerTime) for its
	// client, which does not close: ten thousand of them take a while.
	waitFor(t, "the hub's goroutines to end", func() bool { return len(hubGoroutines(h)) == 0 })
	waitFor(t, "the goroutines to return to their number before", func() bool {
		return runtime.NumGoroutine() <= before
	})
	t.Logf("%d streams' goroutines ended %v after Shutdown began", n, time.Since(began))
}

// clientsProcess is a whole program: n streams of the server at addr, each
// a connection that sent its request and reads nothing; it hangs up when
// its standard input ends. See TestShutdownManyIdlePolledStreams.
func clientsProcess(addr string, n int) {
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "clients:", err)
			os.Exit(2)
		}
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		conns = append(conns, c)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

// A broadcast while streams register and end around it reaches every
// stream that was open throughout, each event once and in order, and the
// registry ends up holding exactly the open streams.
func TestBroadcastDuringRegistrationChurn(t *testing.T) {
	const stable, churners, rounds, events = 10, 4, 25, 200
	h, srv := newTestHub(t, Config{Heartbeat: -1})
	var cs []*testClient
	for range stable {
		cs = append(cs, dial(t, nil, srv.URL, nil))
	}
	waitStreams(t, h, stable)
	var wg sync.WaitGroup
	for range churners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				resp, err := http.DefaultClient.Do(mustRequest(t, srv.URL, nil))
				if err != nil {
					t.Error(err)
					return
				}
				buf := make([]byte, 1)
				_, _ = resp.Body.Read(buf) // the stream started
				resp.Body.Close()
			}
		}()
	}
	for i := range events {
		if _, err := h.Broadcast(data(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for k, c := range cs {
		for i := range events {
			if ev := c.next(); string(ev.Data) != fmt.Sprint(i) {
				t.Fatalf("stream %d: got %q, want %d", k, ev.Data, i)
			}
		}
	}
	waitStreams(t, h, stable)
	if n := len(registered(h)); n != stable {
		t.Fatalf("the registry holds %d streams, want %d", n, stable)
	}
}
