package sse

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// flushingLog is what a new user's first middleware looks like: an access
// log that wraps the ResponseWriter to count bytes and forwards Flush, but
// has no Unwrap method, so it hides SetWriteDeadline. (opaque, in
// hub_test.go, forwards nothing but the ResponseWriter methods.)
type flushingLog struct {
	w     http.ResponseWriter
	bytes int
}

func (l *flushingLog) Header() http.Header  { return l.w.Header() }
func (l *flushingLog) WriteHeader(code int) { l.w.WriteHeader(code) }
func (l *flushingLog) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	l.bytes += n
	return n, err
}
func (l *flushingLog) Flush() { l.w.(http.Flusher).Flush() }

// defaultLog sends slog.Default() to a buffer until the test ends: the
// warnings below must reach it although the hubs have no Config.Logger.
func defaultLog(t *testing.T) *syncBuffer {
	old := slog.Default()
	out := &syncBuffer{}
	slog.SetDefault(slog.New(slog.NewTextHandler(out, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return out
}

// A wrapper that forwards Flush but has no Unwrap hides SetWriteDeadline,
// so the hub cannot clear http.Server.WriteTimeout, which then cuts the
// stream. That is said loudly, though the hub has no Logger: a warning
// naming the server's timeout when the stream starts, a reason that names
// it for OnDisconnect (not "client gone"), and a counter.
func TestServerWriteTimeoutThroughWrapperWithoutUnwrap(t *testing.T) {
	logged := defaultLog(t)
	reasons := make(chan DisconnectReason, 1)
	h, err := NewHub(testConfig(Config{
		Heartbeat:    50 * time.Millisecond, // writes keep coming, so the cut shows
		OnDisconnect: func(_ StreamInfo, r DisconnectReason) { reasons <- r },
	}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&flushingLog{w: w}, r)
	}))
	srv.Config.WriteTimeout = time.Second
	srv.Start()
	defer srv.Close()
	defer h.Close()

	c := dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	h.Broadcast(Event{Data: []byte("before the cut")})
	if ev := c.next(); string(ev.Data) != "before the cut" {
		t.Fatalf("got %q", ev.Data)
	}
	select {
	case r := <-reasons:
		if r != ReasonServerWriteTimeout {
			t.Fatalf("OnDisconnect got %q, want %q", r, ReasonServerWriteTimeout)
		}
		if !strings.Contains(r.String(), "WriteTimeout") {
			t.Fatalf("the reason reads %q", r)
		}
	case <-time.After(testTimeout):
		t.Fatal("the server's WriteTimeout did not end the stream")
	}
	st := h.Stats()
	if st.NoWriteDeadline != 1 || st.ServerWriteTimeouts != 1 {
		t.Fatalf("NoWriteDeadline %d, ServerWriteTimeouts %d; want 1 and 1", st.NoWriteDeadline, st.ServerWriteTimeouts)
	}
	log := logged.String()
	for _, want := range []string{"level=WARN", "http.Server.WriteTimeout", "1s", "flushingLog", "Unwrap"} {
		if !strings.Contains(log, want) {
			t.Fatalf("slog.Default() got no warning with %q:\n%s", want, log)
		}
	}
}

// A wrapper that hides Flush cannot stream: the request is answered 500
// with a body that says why (not an empty 200 that the browser would
// retry for ever), it never becomes a stream (no hooks), it is counted,
// and the warning reaches slog.Default() without a Config.Logger.
func TestUnflushableWriterIsRefusedLoudly(t *testing.T) {
	logged := defaultLog(t)
	hooks := make(chan string, 2)
	h, err := NewHub(testConfig(Config{
		OnConnect:    func(StreamInfo) { hooks <- "OnConnect" },
		OnDisconnect: func(StreamInfo, DisconnectReason) { hooks <- "OnDisconnect" },
	}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&opaque{w}, r)
	}))
	defer srv.Close()
	defer h.Close()
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, srv.URL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("%s: status %s, want 500", method, resp.Status)
		}
		if method == http.MethodGet && !strings.Contains(string(body), "cannot flush") {
			t.Fatalf("GET: body %q does not say why", body)
		}
	}
	if st := h.Stats(); st.Unflushable != 2 || st.Streams != 0 {
		t.Fatalf("Unflushable %d, Streams %d; want 2 and 0", st.Unflushable, st.Streams)
	}
	select {
	case hook := <-hooks:
		t.Fatalf("%s was called for a request that never streamed", hook)
	default:
	}
	log := logged.String()
	for _, want := range []string{"level=WARN", "cannot flush", "opaque"} {
		if !strings.Contains(log, want) {
			t.Fatalf("slog.Default() got no warning with %q:\n%s", want, log)
		}
	}
}

// A wrapper with Unwrap hides nothing: the same server WriteTimeout leaves
// the stream alone, and nothing is reported.
func TestServerWriteTimeoutThroughWrapperWithUnwrap(t *testing.T) {
	logged := defaultLog(t)
	h, err := NewHub(testConfig(Config{Heartbeat: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&unwrapper{w}, r)
	}))
	srv.Config.WriteTimeout = 200 * time.Millisecond
	srv.Start()
	defer srv.Close()
	defer h.Close()
	c := dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	time.Sleep(600 * time.Millisecond) // three server write timeouts, a dozen heartbeats
	h.Broadcast(Event{Data: []byte("still here")})
	if ev := c.next(); string(ev.Data) != "still here" {
		t.Fatalf("got %q", ev.Data)
	}
	if st := h.Stats(); st.NoWriteDeadline != 0 || st.ServerWriteTimeouts != 0 || st.Unflushable != 0 {
		t.Fatalf("stats %+v report a healthy writer", st)
	}
	if log := logged.String(); strings.Contains(log, "WARN") {
		t.Fatalf("warned about a healthy writer:\n%s", log)
	}
}
