package sse

import (
	"net/http"
	"testing"
)

// Streams work over HTTP/2 (TLS, negotiated by ALPN) as over HTTP/1.1:
// headers, live events, several streams on one connection, and replay.
func TestHTTP2(t *testing.T) {
	h, err := NewHub(testConfig(Config{ClientID: headerID}))
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTP2Server(t, h)
	defer h.Close()
	client := srv.Client()

	a := dial(t, client, srv.URL, user("ann"))
	b := dial(t, client, srv.URL, user("ann"))
	if a.resp.ProtoMajor != 2 || b.resp.ProtoMajor != 2 {
		t.Fatalf("protocols %s, %s; want HTTP/2", a.resp.Proto, b.resp.Proto)
	}
	if got := a.resp.Header.Get("Content-Type"); got != "text/event-stream" {
		t.Fatalf("Content-Type %q", got)
	}
	waitStreams(t, h, 2)
	if n, _ := h.Send("ann", data("over h2")); n != 2 {
		t.Fatalf("Send = %d", n)
	}
	for _, c := range []*testClient{a, b} {
		if ev := c.next(); string(ev.Data) != "over h2" {
			t.Fatalf("got %q", ev.Data)
		}
	}
	// Closing one HTTP/2 stream leaves the other on the same connection.
	last := a.stop()
	waitStreams(t, h, 1)
	h.Broadcast(data("missed"))
	if ev := b.next(); string(ev.Data) != "missed" {
		t.Fatalf("got %q", ev.Data)
	}
	a = dial(t, client, srv.URL, withHeader(user("ann"), lastEventID(last)))
	if ev := a.next(); string(ev.Data) != "missed" {
		t.Fatalf("replay over h2: got %q", ev.Data)
	}
	if st := h.Stats(); st.Replays != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// The hub reaches HTTP/2's flusher and write deadline through wrappers too.
func TestHTTP2ThroughMiddleware(t *testing.T) {
	h, err := NewHub(testConfig(Config{}))
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTP2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&unwrapper{w}, r)
	}))
	defer h.Close()
	c := dial(t, srv.Client(), srv.URL, nil)
	waitStreams(t, h, 1)
	h.Broadcast(data("wrapped h2"))
	if ev := c.next(); string(ev.Data) != "wrapped h2" || c.resp.ProtoMajor != 2 {
		t.Fatalf("got %q over %s", ev.Data, c.resp.Proto)
	}
}
