package sse

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A client that never reads (with a tiny socket buffer) is ended as slow
// while 100 others receive every event in order, and a client that connects
// afterwards is served at once.
func TestSlowClientDoesNotStallOthers(t *testing.T) {
	const (
		fast  = 100
		burst = 32 // events per round: each fast queue has room for a round
		size  = 1024
	)
	reasons := make(chan DisconnectReason, fast+2)
	h, err := NewHub(testConfig(Config{
		QueueBytes:   64 << 10,
		WriteTimeout: time.Hour, // a slow stream must end at once, not when its write times out
		Heartbeat:    -1,
		ClientID:     func(r *http.Request) (string, error) { return r.URL.Query().Get("id"), nil },
		OnDisconnect: func(s StreamInfo, r DisconnectReason) {
			if s.ClientID == "slow" {
				reasons <- r
			}
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	srv := smallBufferServer(t, h)
	defer h.Close()
	neverReader(t, srv, "/?id=slow")

	clients := make([]*testClient, fast)
	for i := range clients {
		clients[i] = dial(t, nil, fmt.Sprintf("%s?id=fast%d", srv.URL, i), nil)
	}
	waitStreams(t, h, fast+1)

	payload := strings.Repeat("x", size)
	sent := 0
	round := func() {
		t.Helper()
		for range burst {
			if _, err := h.Broadcast(data(fmt.Sprintf("%06d %s", sent, payload))); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		for i, c := range clients {
			for k := sent - burst; k < sent; k++ {
				ev := c.next()
				if got := string(ev.Data[:6]); got != fmt.Sprintf("%06d", k) {
					t.Fatalf("fast client %d: got event %s, want %06d", i, got, k)
				}
			}
		}
	}
	// The slow stream's queue fills once the socket buffers do.
	for h.Stats().SlowDisconnects == 0 {
		if sent > 50_000 {
			t.Fatalf("no slow disconnect after %d events", sent)
		}
		round()
	}
	t.Logf("slow disconnect after %d events of %d bytes", sent, size)
	for range 3 {
		round() // the others carry on
	}
	if st := h.Stats(); st.SlowDisconnects != 1 {
		t.Fatalf("stats %+v: only the never-reading client may be slow", st)
	}
	select {
	case r := <-reasons:
		if r != ReasonSlow {
			t.Fatalf("slow client ended with %v", r)
		}
	case <-time.After(testTimeout):
		t.Fatal("the slow stream never ended")
	}
	// A new client is served at once.
	late := dial(t, nil, srv.URL+"?id=late", nil)
	waitStreams(t, h, fast+1)
	h.Broadcast(data("welcome"))
	if ev := late.next(); string(ev.Data) != "welcome" {
		t.Fatalf("late client got %q", ev.Data)
	}
}

// smallBufferServer serves h on a loopback server whose connections have
// small send buffers (fixed, so the kernel does not grow them to
// megabytes): a client that does not read backs up into the hub soon. It
// is closed when the test ends.
func smallBufferServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallBufferListener{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// neverReader opens a stream at path on srv over a raw connection with a
// tiny receive buffer, and never reads a byte of it. The connection is
// closed when the test ends.
func neverReader(t *testing.T, srv *httptest.Server, path string) {
	t.Helper()
	addr := strings.TrimPrefix(srv.URL, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.(*net.TCPConn).SetReadBuffer(1024); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", path, addr)
}

// newHTTP2Server serves h over TLS with HTTP/2 negotiated by ALPN. It is
// closed when the test ends.
func newHTTP2Server(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// smallBufferListener gives every accepted connection a 16 KiB send buffer.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		err = c.(*net.TCPConn).SetWriteBuffer(16 << 10)
	}
	return c, err
}

// Over HTTP/2 a client that stops reading is ended as slow too, and the
// other streams carry on.
func TestSlowClientHTTP2(t *testing.T) {
	h, err := NewHub(testConfig(Config{QueueBytes: 64 << 10, WriteTimeout: time.Hour, Heartbeat: -1}))
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTP2Server(t, h)
	defer h.Close()

	// Separate connections: HTTP/2 flow control is per stream and per
	// connection, and the stalled one must not hold the reader's window.
	stalledClient := srv.Client()
	stalledClient.Transport = stalledClient.Transport.(*http.Transport).Clone()
	stalled, resp := tryDial(t, stalledClient, srv.URL, nil)
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s", resp.Proto)
	}
	_ = stalled // never read
	reader := dial(t, srv.Client(), srv.URL, nil)
	waitStreams(t, h, 2)

	payload := strings.Repeat("y", 1024)
	for sent := 0; h.Stats().SlowDisconnects == 0; {
		if sent > 100_000 {
			t.Fatalf("no slow disconnect after %d events", sent)
		}
		for range 32 {
			h.Broadcast(data(payload))
			sent++
		}
		for range 32 {
			reader.next()
		}
	}
	waitStreams(t, h, 1)
	h.Broadcast(data("still flowing"))
	if ev := reader.next(); string(ev.Data) != "still flowing" {
		t.Fatalf("got %q", ev.Data)
	}
}
