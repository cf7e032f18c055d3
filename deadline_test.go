package sse

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// idleFor is how long the idle-stream tests leave a stream without events:
// three default write timeouts, two default heartbeats.
const idleFor = 30 * time.Second

// An idle stream lives as long as its client stays, over HTTP/2 too, where a
// write deadline left in place resets the stream when it passes, even with
// no write pending: with the default Config (whose heartbeat comes after
// its write timeout) and with heartbeats off. The four streams idle side by
// side, while the rest of the suite runs.
func TestIdleStreamsLive(t *testing.T) {
	t.Parallel()
	type idle struct {
		name   string
		hub    *Hub
		client *testClient
		ended  chan DisconnectReason
	}
	var streams []idle
	for _, tc := range []struct {
		name  string
		http2 bool
		cfg   Config
	}{
		{"http2, default Config", true, Config{}},
		{"http2, no heartbeat", true, Config{Heartbeat: -1}},
		{"http1, default Config", false, Config{}},
		{"http1, no heartbeat", false, Config{Heartbeat: -1}},
	} {
		ended := make(chan DisconnectReason, 1)
		cfg := tc.cfg
		cfg.OnDisconnect = func(_ StreamInfo, r DisconnectReason) { ended <- r }
		h, err := NewHub(testConfig(cfg))
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close() // before the servers close, in t.Cleanup
		var c *testClient
		if tc.http2 {
			srv := newHTTP2Server(t, h)
			c = dial(t, srv.Client(), srv.URL, nil)
			if c.resp.ProtoMajor != 2 {
				t.Fatalf("%s: protocol %s", tc.name, c.resp.Proto)
			}
		} else {
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			c = dial(t, nil, srv.URL, nil)
		}
		waitStreams(t, h, 1)
		streams = append(streams, idle{tc.name, h, c, ended})
	}
	time.Sleep(idleFor)
	for _, s := range streams {
		select {
		case r := <-s.ended:
			t.Errorf("%s: the idle stream ended (%v)", s.name, r)
			continue
		case ev, ok := <-s.client.events:
			if !ok {
				t.Errorf("%s: the idle stream ended at the client: %v", s.name, <-s.client.errc)
			} else {
				t.Errorf("%s: unexpected event %+v", s.name, ev)
			}
			continue
		default:
		}
		if n, err := s.hub.Broadcast(data("still here")); n != 1 || err != nil {
			t.Errorf("%s: Broadcast after %v idle: %d, %v", s.name, idleFor, n, err)
			continue
		}
		if ev := s.client.next(); string(ev.Data) != "still here" {
			t.Errorf("%s: got %q", s.name, ev.Data)
		}
	}
}

// deadlineRecorder is a ResponseWriter that records the write deadlines
// set on it.
type deadlineRecorder struct {
	mu        sync.Mutex
	header    http.Header
	deadlines []time.Time
}

func (d *deadlineRecorder) Header() http.Header         { return d.header }
func (d *deadlineRecorder) Write(p []byte) (int, error) { return len(p), nil }
func (d *deadlineRecorder) WriteHeader(int)             {}
func (d *deadlineRecorder) Flush()                      {}
func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deadlines = append(d.deadlines, t)
	return nil
}

func (d *deadlineRecorder) last() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.deadlines[len(d.deadlines)-1]
}

// A stream ended as slow has its write deadline set to the past, so a
// write blocked on its client fails at once; the writer's own deadline
// moves must not undo that, nor must clearing the deadline when it idles.
func TestExpiredDeadlineStays(t *testing.T) {
	h, err := NewHub(Config{WriteTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w := &deadlineRecorder{header: http.Header{}}
	s := newStream(h, StreamInfo{ClientID: "x"}, w)
	s.opened = true
	s.deadlineAt = time.Now().Add(100 * time.Millisecond) // due to be moved
	s.idleClear = true
	h.track.add(1)
	h.expire(s)
	cut := w.last()
	if cut.IsZero() || cut.After(time.Now()) {
		t.Fatalf("expire set the deadline to %v", cut)
	}
	if err := s.write([]*envelope{control([]byte(": x\n\n"))}); err == nil {
		t.Fatal("a write after expire succeeded")
	}
	s.disarm()
	if got := w.last(); !got.Equal(cut) {
		t.Fatalf("the deadline moved from %v to %v after expire", cut, got)
	}
}
