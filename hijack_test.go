package sse

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
	"weak"
)

// The rest of the suite runs with Config.Hijack too (go test -args
// -sse.hijack, as test.sh does), and with Config.Poll (-sse.poll). The
// tests here check what only a taken-over connection does, whatever
// -sse.hijack says; under -sse.poll they run with Config.Poll.

// hijackServer serves h through handler-wrapping middleware on a real
// loopback server and records the states its connections go through.
func hijackServer(t *testing.T, h *Hub, wrap func(http.ResponseWriter) http.ResponseWriter) (*httptest.Server, *connStates) {
	t.Helper()
	states := &connStates{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Middleware", "kept")
		h.ServeHTTP(wrap(w), r)
	}))
	srv.Config.ConnState = states.record
	srv.Start()
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return srv, states
}

type connStates struct {
	mu       sync.Mutex
	hijacked int
}

func (c *connStates) record(_ net.Conn, s http.ConnState) {
	if s == http.StateHijacked {
		c.mu.Lock()
		c.hijacked++
		c.mu.Unlock()
	}
}

func (c *connStates) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hijacked
}

// rawStream sends a GET over a plain TCP connection and returns the
// response head's lines and a reader positioned at the body.
func rawStream(t *testing.T, addr string) (net.Conn, []string, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: test\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var head []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the response head: %v (so far %q)", err, head)
		}
		if line == "\r\n" {
			return conn, head, br
		}
		head = append(head, strings.TrimSuffix(line, "\r\n"))
	}
}

func TestHijackWritesTheResponseItself(t *testing.T) {
	h, err := NewHub(testConfig(Config{Hijack: true, Heartbeat: -1, Retry: 1500 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	// Through a wrapper with Unwrap, as middleware is written today.
	srv, states := hijackServer(t, h, func(w http.ResponseWriter) http.ResponseWriter {
		w.Header().Set("Content-Encoding", "gzip") // a compressing middleware that never gets to compress
		return &unwrapper{w}
	})
	_, head, br := rawStream(t, srv.Listener.Addr().String())

	if head[0] != "HTTP/1.1 200 OK" {
		t.Fatalf("status line %q", head[0])
	}
	want := []string{
		"Cache-Control: no-cache",
		"Connection: close",
		"Content-Type: text/event-stream",
		"X-Accel-Buffering: no",
		"X-Middleware: kept", // what the middleware set before the hub took over
	}
	if got := head[1:]; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("header lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := states.count(); n != 1 {
		t.Fatalf("%d connections hijacked, want 1", n)
	}

	// The body is the bare stream: no chunk sizes between the frames.
	waitStreams(t, h, 1)
	if _, err := h.Broadcast(Event{Type: "tick", Data: []byte("one\ntwo")}); err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	for !strings.HasSuffix(body.String(), "data: two\n\n") {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the body: %v (so far %q)", err, body.String())
		}
		body.WriteString(line)
	}
	if !regexp.MustCompile(`^retry: 1500\nid: \S+\nevent: sse-position\ndata:\n\nid: \S+\nevent: tick\ndata: one\ndata: two\n\n$`).MatchString(body.String()) {
		t.Fatalf("body %q", body.String())
	}
}

// Without heartbeats only the hub's reader of the connection can notice a
// client leaving: it must, at once, as net/http does for its own streams.
func TestHijackNoticesTheClientLeaving(t *testing.T) {
	gone := make(chan DisconnectReason, 1)
	h, err := NewHub(testConfig(Config{Hijack: true, Heartbeat: -1, OnDisconnect: func(_ StreamInfo, r DisconnectReason) { gone <- r }}))
	if err != nil {
		t.Fatal(err)
	}
	srv, states := hijackServer(t, h, func(w http.ResponseWriter) http.ResponseWriter { return w })
	conn, _, _ := rawStream(t, srv.Listener.Addr().String())
	waitStreams(t, h, 1)
	if states.count() != 1 {
		t.Fatal("the connection was not taken over")
	}
	conn.Close()
	awaitClientGone(t, gone)
	waitStreams(t, h, 0)
}

// awaitClientGone waits for the OnDisconnect of a client that left.
func awaitClientGone(t *testing.T, gone <-chan DisconnectReason) {
	t.Helper()
	select {
	case r := <-gone:
		if r != ReasonClientGone {
			t.Fatalf("reason %v, want %v", r, ReasonClientGone)
		}
	case <-time.After(testTimeout):
		t.Fatal("the hub never noticed the client leaving")
	}
}

// A ResponseWriter that cannot hijack (a wrapper without Unwrap) is
// streamed through net/http, as without Config.Hijack.
func TestHijackFallsBackToNetHTTP(t *testing.T) {
	h, err := NewHub(testConfig(Config{Hijack: true, Heartbeat: -1}))
	if err != nil {
		t.Fatal(err)
	}
	srv, states := hijackServer(t, h, func(w http.ResponseWriter) http.ResponseWriter { return &flushOnly{w} })
	c := dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	if _, err := h.Broadcast(Event{Data: []byte("still streams")}); err != nil {
		t.Fatal(err)
	}
	if ev := c.next(); string(ev.Data) != "still streams" {
		t.Fatalf("got %q", ev.Data)
	}
	if n := states.count(); n != 0 {
		t.Fatalf("%d connections hijacked through a wrapper that cannot", n)
	}
}

// flushOnly is middleware's ResponseWriter that flushes but offers no
// Unwrap, so http.ResponseController cannot reach Hijack.
type flushOnly struct{ w http.ResponseWriter }

func (f *flushOnly) Header() http.Header         { return f.w.Header() }
func (f *flushOnly) Write(p []byte) (int, error) { return f.w.Write(p) }
func (f *flushOnly) WriteHeader(code int)        { f.w.WriteHeader(code) }
func (f *flushOnly) Flush()                      { http.NewResponseController(f.w).Flush() }

// Shutdown ends taken-over streams, closes their connections and leaves
// none of the hub's goroutines (the connection readers included) behind.
func TestHijackShutdown(t *testing.T) {
	h, err := NewHub(testConfig(Config{Hijack: true}))
	if err != nil {
		t.Fatal(err)
	}
	srv, states := hijackServer(t, h, func(w http.ResponseWriter) http.ResponseWriter { return w })
	var bodies []*bufio.Reader
	for range 5 {
		_, _, br := rawStream(t, srv.Listener.Addr().String())
		bodies = append(bodies, br)
	}
	waitStreams(t, h, 5)
	if states.count() != 5 {
		t.Fatalf("%d of 5 connections taken over", states.count())
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for i, br := range bodies {
		// Each body ends: the hub closed the connection (a read timing out
		// instead would not be io.EOF).
		if _, err := io.ReadAll(br); err != nil {
			t.Fatalf("stream %d: %v, want its end", i, err)
		}
	}
	noHubGoroutines(t, h)
}

// Once a taken-over stream has started, its handler returns (freeing
// net/http's goroutine) while the stream goes on; middleware sees the
// request end at connect.
func TestHijackHandlerReturnsWhileStreaming(t *testing.T) {
	h, err := NewHub(testConfig(Config{Hijack: true, Heartbeat: -1}))
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		returned <- struct{}{}
	}))
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	_, _, br := rawStream(t, srv.Listener.Addr().String())
	select {
	case <-returned:
	case <-time.After(testTimeout):
		t.Fatal("the handler of a taken-over stream did not return")
	}
	if _, err := h.Broadcast(Event{Data: []byte("after the handler")}); err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(br)
	ev, err := decodeEvent(d)
	if err != nil || string(ev.Data) != "after the handler" {
		t.Fatalf("got %q, %v", ev.Data, err)
	}
}

// A panicking OnDisconnect of a taken-over stream runs on the hub's own
// goroutine, where nothing would recover it: the hub logs it and goes on.
func TestHijackPanickingOnDisconnectIsLogged(t *testing.T) {
	var logged syncBuffer
	h, err := NewHub(Config{
		Hijack:       true,
		Heartbeat:    -1,
		OnDisconnect: func(StreamInfo, DisconnectReason) { panic("application bug") },
		Logger:       slog.New(slog.NewTextHandler(&logged, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := hijackServer(t, h, func(w http.ResponseWriter) http.ResponseWriter { return w })
	conn, _, _ := rawStream(t, srv.Listener.Addr().String())
	waitStreams(t, h, 1)
	conn.Close()
	waitStreams(t, h, 0)
	waitFor(t, "the panic in the log", func() bool { return strings.Contains(logged.String(), "application bug") })
	// The hub still serves, and shuts down with nothing left behind.
	_, _, br := rawStream(t, srv.Listener.Addr().String())
	waitStreams(t, h, 1)
	if _, err := h.Broadcast(Event{Data: []byte("still here")}); err != nil {
		t.Fatal(err)
	}
	if ev, err := decodeEvent(NewDecoder(br)); err != nil || string(ev.Data) != "still here" {
		t.Fatalf("got %q, %v", ev.Data, err)
	}
	h.Close()
	noHubGoroutines(t, h)
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Over TLS the hub takes over the *tls.Conn: reads (the watcher) and writes
// run at once on it, and closing it at the end sends close_notify.
func TestHijackOverTLS(t *testing.T) {
	gone := make(chan DisconnectReason, 1)
	h, err := NewHub(testConfig(Config{Hijack: true, Heartbeat: -1, OnDisconnect: func(_ StreamInfo, r DisconnectReason) { gone <- r }}))
	if err != nil {
		t.Fatal(err)
	}
	states := &connStates{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = states.record
	srv.StartTLS()
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	c := dial(t, srv.Client(), srv.URL, nil)
	waitStreams(t, h, 1)
	if states.count() != 1 {
		t.Fatal("the TLS connection was not taken over")
	}
	for i := range 3 {
		if _, err := h.Broadcast(Event{Data: []byte(fmt.Sprint("over TLS ", i))}); err != nil {
			t.Fatal(err)
		}
		if ev := c.next(); string(ev.Data) != fmt.Sprint("over TLS ", i) {
			t.Fatalf("got %q", ev.Data)
		}
	}
	c.close()
	awaitClientGone(t, gone)
}

// Once a stream has taken its connection over, nothing of net/http's is
// kept: not its response, nor the connection state that holds net/http's
// 4 KiB reader and writer (a stream that kept them cost 8.7 KiB more), nor,
// through a request body, that reader.
func TestHijackLetsGoOfNetHTTP(t *testing.T) {
	for _, req := range []string{
		"GET / HTTP/1.1\r\nHost: test\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhel", // a body, not all sent
	} {
		h, err := NewHub(testConfig(Config{Hijack: true, Heartbeat: -1}))
		if err != nil {
			t.Fatal(err)
		}
		var kept []weak.Pointer[byte]
		returned := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// w is net/http's *response; its conn field holds the buffers.
			resp := reflect.ValueOf(w)
			conn := resp.Elem().FieldByName("conn")
			for _, p := range []unsafe.Pointer{resp.UnsafePointer(), conn.UnsafePointer(), conn.Elem().FieldByName("bufr").UnsafePointer()} {
				kept = append(kept, weak.Make((*byte)(p)))
			}
			h.ServeHTTP(w, r)
			close(returned)
		}))
		t.Cleanup(func() {
			h.Close()
			srv.Close()
		})
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		waitStreams(t, h, 1)
		<-returned // the stream has started and was handed to the hub's goroutines
		waitFor(t, "net/http's response, connection and reader to be collected", func() bool {
			runtime.GC()
			for _, p := range kept {
				if p.Value() != nil {
					return false
				}
			}
			return true
		})
		if _, err := h.Broadcast(data("still streaming")); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
		br := bufio.NewReader(conn)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("%q: the stream ended: %v", req, err)
			}
			if line == "data: still streaming\n" {
				break
			}
		}
	}
}

// A stream the hub ends on purpose (Disconnect) writes what was queued, and
// its client reads all of it, then the end, although it keeps sending: a
// plain close with unread input resets the connection, which discards the
// frames still in the hub's socket buffer, waiting for the client's window.
func TestHijackDisconnectDeliversTheLastFrames(t *testing.T) {
	ended := make(chan struct{})
	h, err := NewHub(testConfig(Config{Hijack: true, Heartbeat: -1,
		ClientID:     func(*http.Request) (string, error) { return "one", nil },
		OnDisconnect: func(StreamInfo, DisconnectReason) { close(ended) }}))
	if err != nil {
		t.Fatal(err)
	}
	srv, states := hijackServer(t, h, func(w http.ResponseWriter) http.ResponseWriter { return w })
	conn, _, br := rawStream(t, srv.Listener.Addr().String())
	if err := conn.(*net.TCPConn).SetReadBuffer(4 << 10); err != nil { // a small window: frames wait at the hub
		t.Fatal(err)
	}
	waitStreams(t, h, 1)
	if states.count() != 1 {
		t.Fatal("the connection was not taken over")
	}
	sent := make(chan struct{})
	go func() { // bytes the hub never asked for, more than it reads at once
		defer close(sent)
		junk := bytes.Repeat([]byte("x"), 64<<10)
		for range 16 {
			if _, err := conn.Write(junk); err != nil {
				return
			}
		}
	}()
	last := strings.Repeat("z", 12<<10) // more than the client's window, less than the hub's buffer
	h.Broadcast(data("first"))
	h.Broadcast(data(last))
	waitFor(t, "the frames to be written", func() bool { return h.Stats().Written == 4 }) // head and retry, position, two events
	h.Disconnect("one")
	<-ended
	<-sent // the client stops sending, then reads, as a page would
	body, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("reading the stream: %v after %d bytes", err, len(body))
	}
	if !bytes.HasSuffix(body, []byte("data: "+last+"\n\n")) {
		t.Fatalf("the stream ended without its last frame (%d bytes read)", len(body))
	}
}

// hijackable is a ResponseWriter whose connection the hub takes over: one
// end of a pipe, which holds no bytes, so a client that stops reading
// blocks every write at once.
type hijackable struct {
	header http.Header
	conn   net.Conn
}

func (w *hijackable) Header() http.Header         { return w.header }
func (w *hijackable) Write(p []byte) (int, error) { return 0, errors.New("hijackable: not taken over") }
func (w *hijackable) WriteHeader(int)             {}
func (w *hijackable) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, bufio.NewReadWriter(bufio.NewReader(w.conn), bufio.NewWriter(w.conn)), nil
}

// Over TLS, ending a taken-over stream whose client stopped reading does
// not wait for the close_notify alert (which the TLS package gives 5 s to
// be written): OnDisconnect is called at once, and the connection is
// closed within the hub's linger time.
func TestHijackTLSEndDoesNotWaitForTheAlert(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler()) // for its certificate
	defer tlsSrv.Close()
	serverEnd, clientEnd := net.Pipe()
	clientConfig := tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	clientConfig.ServerName = "example.com" // a name httptest's certificate holds
	client := tls.Client(clientEnd, clientConfig)
	defer client.Close()
	server := tls.Server(serverEnd, &tls.Config{Certificates: tlsSrv.TLS.Certificates})
	handshake := make(chan error, 1)
	go func() { handshake <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-handshake; err != nil {
		t.Fatal(err)
	}

	gone := make(chan struct{})
	h, err := NewHub(testConfig(Config{Hijack: true, Heartbeat: -1, Retry: -1,
		ClientID:     func(*http.Request) (string, error) { return "one", nil },
		OnDisconnect: func(StreamInfo, DisconnectReason) { close(gone) }}))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	go h.ServeHTTP(&hijackable{header: http.Header{}, conn: server}, req)
	// Read the head and the position, then stop reading.
	br := bufio.NewReader(client)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "id: ") {
			break
		}
	}
	waitStreams(t, h, 1)
	h.Disconnect("one")
	start := time.Now()
	select {
	case <-gone:
	case <-time.After(testTimeout):
		t.Fatal("OnDisconnect was not called")
	}
	// A bound of behaviour, not of speed: the alert's 5 s must not be in it.
	if d := time.Since(start); d >= 4*time.Second {
		t.Fatalf("OnDisconnect came %v after Disconnect", d)
	}
	closed := make(chan struct{})
	go func() {
		h.Close() // waits for the connection to be closed
		close(closed)
	}()
	within(t, "Close", closed)
	if d := time.Since(start); d >= 4*time.Second {
		t.Fatalf("the connection was closed %v after Disconnect", d)
	}
}

// smallSendBuffer gives every connection it accepts a small send buffer,
// so that a large frame cannot be written at once.
type smallSendBuffer struct {
	*net.TCPListener
	size int
}

func (l smallSendBuffer) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	if err := c.SetWriteBuffer(l.size); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// A broadcast writes an idle taken-over stream's frame with a write that
// does not block; what the socket cannot take at once is written by the
// stream's own writer, before anything queued after it, and whole.
func TestHijackFrameLargerThanTheSocket(t *testing.T) {
	h, err := NewHub(testConfig(Config{Hijack: true, Heartbeat: -1}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = smallSendBuffer{srv.Listener.(*net.TCPListener), 16 << 10}
	srv.Start()
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	conn, _, br := rawStream(t, srv.Listener.Addr().String())
	if err := conn.(*net.TCPConn).SetReadBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	waitStreams(t, h, 1)
	waitFor(t, "the stream's start to be written", func() bool { return h.Stats().Written >= 2 })
	big := strings.Repeat("x", 200<<10)
	for _, d := range []string{big, "after"} {
		if _, err := h.Broadcast(data(d)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // the client reads late: the first write cannot take it all
	d := NewDecoder(br)
	for _, want := range []string{big, "after"} {
		ev, err := decodeEvent(d)
		if err != nil {
			t.Fatal(err)
		}
		if string(ev.Data) != want {
			t.Fatalf("got %d bytes of data, want %d", len(ev.Data), len(want))
		}
	}
	h.pendingMu.Lock()
	left := len(h.pending)
	h.pendingMu.Unlock()
	if left != 0 {
		t.Fatalf("%d frames' rests kept after they were written", left)
	}
}
