package sse

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The rest of the suite runs with Config.Poll under -sse.poll; the tests
// here check what only the poller does, whatever the flags say.

// hubRunning counts the goroutines of h that run fn (a method of Hub).
func hubRunning(h *Hub, fn string) int {
	n := 0
	for _, g := range hubGoroutines(h) {
		if strings.Contains(g, "sse.(*Hub)."+fn+"(") {
			n++
		}
	}
	return n
}

// pollHub returns a hub with Config.Hijack and Poll, no heartbeat, cfg's
// other settings, and the channel its OnDisconnect reports each stream's
// end on (room of them buffered).
func pollHub(t *testing.T, cfg Config, room int) (*Hub, chan DisconnectReason) {
	t.Helper()
	gone := make(chan DisconnectReason, room)
	cfg.Hijack, cfg.Poll, cfg.Heartbeat = true, true, -1
	cfg.OnDisconnect = func(_ StreamInfo, r DisconnectReason) { gone <- r }
	h, err := NewHub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h, gone
}

func skipUnlessPollable(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("Config.Poll watches connections with epoll, on Linux only")
	}
}

// readData reads br up to the next data line and returns its value.
func readData(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			return strings.TrimSuffix(d, "\n")
		}
	}
}

// With Config.Poll, idle taken-over streams hold no goroutine: one poller
// watches them all, notices each client leaving at once, and stops once it
// has nothing to watch; the next stream starts it again.
func TestPollHoldsNoGoroutinePerStream(t *testing.T) {
	skipUnlessPollable(t)
	h, gone := pollHub(t, Config{}, 8)
	srv, states := hijackServer(t, h, func(w http.ResponseWriter) http.ResponseWriter { return w })
	for round := range 2 {
		var conns []net.Conn
		var bodies []*bufio.Reader
		for range 3 {
			conn, _, br := rawStream(t, srv.Listener.Addr().String())
			conns, bodies = append(conns, conn), append(bodies, br)
		}
		waitStreams(t, h, 3)
		if _, err := h.Broadcast(data("to all")); err != nil {
			t.Fatal(err)
		}
		for i, br := range bodies {
			if d := readData(t, br); d != "to all" {
				t.Fatalf("round %d, stream %d: got %q", round, i, d)
			}
		}
		waitFor(t, "the drains to return", func() bool { return hubRunning(h, "drain") == 0 })
		if n, m := hubRunning(h, "watch"), hubRunning(h, "watchAll"); n != 0 || m != 1 {
			t.Fatalf("round %d: %d readers and %d pollers for 3 idle streams, want 0 and 1", round, n, m)
		}
		for i, conn := range conns {
			conn.Close()
			awaitClientGone(t, gone)
			waitStreams(t, h, 2-i)
		}
		waitFor(t, "the poller to stop", func() bool { return len(hubGoroutines(h)) == 0 })
	}
	if states.count() != 6 {
		t.Fatalf("%d of 6 connections taken over", states.count())
	}
}

// A client that sends something after its request gets a reader, which
// reads it as the stream goes on; its leaving is noticed all the same.
func TestPollReaderForAClientThatTalks(t *testing.T) {
	skipUnlessPollable(t)
	h, gone := pollHub(t, Config{}, 2)
	srv, _ := hijackServer(t, h, func(w http.ResponseWriter) http.ResponseWriter { return w })
	quiet, _, _ := rawStream(t, srv.Listener.Addr().String())
	talker, _, br := rawStream(t, srv.Listener.Addr().String())
	waitStreams(t, h, 2)
	if _, err := talker.Write([]byte("GET /again HTTP/1.1\r\nHost: test\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a reader for the talking client", func() bool { return hubRunning(h, "watch") == 1 })
	if _, err := h.Broadcast(data("still streaming")); err != nil {
		t.Fatal(err)
	}
	if d := readData(t, br); d != "still streaming" {
		t.Fatalf("got %q", d)
	}
	talker.Close()
	awaitClientGone(t, gone)
	quiet.Close()
	awaitClientGone(t, gone)
	waitStreams(t, h, 0)
	waitFor(t, "the hub's goroutines to return", func() bool { return len(hubGoroutines(h)) == 0 })
}

// Over TLS the poller watches the socket under the *tls.Conn: a client
// that leaves is noticed, with no reader.
func TestPollOverTLS(t *testing.T) {
	skipUnlessPollable(t)
	h, gone := pollHub(t, Config{}, 2)
	srv := httptest.NewTLSServer(h)
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	c := dial(t, srv.Client(), srv.URL, nil)
	waitStreams(t, h, 1)
	if _, err := h.Broadcast(data("over TLS")); err != nil {
		t.Fatal(err)
	}
	if ev := c.next(); string(ev.Data) != "over TLS" {
		t.Fatalf("got %q", ev.Data)
	}
	waitFor(t, "the drain to return", func() bool { return hubRunning(h, "drain") == 0 })
	if n := hubRunning(h, "watch"); n != 0 {
		t.Fatalf("%d readers for an idle TLS stream", n)
	}
	c.close()
	awaitClientGone(t, gone)
	waitFor(t, "the hub's goroutines to return", func() bool { return len(hubGoroutines(h)) == 0 })
}

// A connection without a descriptor to poll (a net.Pipe) gets a reader.
func TestPollFallsBackToAReader(t *testing.T) {
	serverEnd, clientEnd := net.Pipe()
	defer clientEnd.Close()
	h, gone := pollHub(t, Config{Retry: -1}, 1)
	defer h.Close()
	go h.ServeHTTP(&hijackable{header: http.Header{}, conn: serverEnd}, httptest.NewRequest(http.MethodGet, "/", nil))
	br := bufio.NewReader(clientEnd)
	waitStreams(t, h, 1) // registered, its start blocked on the pipe
	if _, err := h.Broadcast(data("through a pipe")); err != nil {
		t.Fatal(err)
	}
	_ = clientEnd.SetReadDeadline(time.Now().Add(testTimeout))
	if d := readData(t, br); d != "through a pipe" {
		t.Fatalf("got %q", d)
	}
	if n, m := hubRunning(h, "watch"), hubRunning(h, "watchAll"); n != 1 || m != 0 {
		t.Fatalf("%d readers and %d pollers for a pipe, want 1 and 0", n, m)
	}
	clientEnd.Close()
	awaitClientGone(t, gone)
}
