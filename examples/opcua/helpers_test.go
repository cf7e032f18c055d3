package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// testStack is the example wired as main wires it, on loopback: a reader of
// endpoint, a dashboard, and an HTTP test server in front of it.
type testStack struct {
	dash   *Dashboard
	srv    *httptest.Server
	client *http.Client
	events atomic.Int64 // requests to /events the server received
}

// startSimulator starts a simulator changing every rate and closes it when
// the test ends. Start it before the stack: cleanups run last-in first-out,
// so the stack's reader closes its client before the simulator closes.
func startSimulator(t testing.TB, rate time.Duration) *Simulator {
	t.Helper()
	sim, err := StartSimulator(SimulatorConfig{Rate: rate})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sim.Close(); err != nil {
			t.Errorf("simulator close: %v", err)
		}
	})
	return sim
}

// startStack starts a dashboard and, if endpoint is set, a reader of it.
func startStack(t testing.TB, endpoint string, rc ReaderConfig, dc DashboardConfig) *testStack {
	t.Helper()
	dash, err := NewDashboard(dc)
	if err != nil {
		t.Fatal(err)
	}
	s := &testStack{dash: dash, client: &http.Client{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/events" {
			s.events.Add(1)
		}
		dash.ServeHTTP(w, r)
	}))
	var cancel context.CancelFunc = func() {}
	done := make(chan struct{})
	close(done)
	if endpoint != "" {
		rc.Endpoint = endpoint
		reader, err := NewReader(rc, dash)
		if err != nil {
			t.Fatal(err)
		}
		var ctx context.Context
		ctx, cancel = context.WithCancel(context.Background())
		done = make(chan struct{})
		go func() {
			defer close(done)
			reader.Run(ctx)
		}()
	}
	t.Cleanup(func() {
		cancel()
		<-done
		ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		if err := dash.Shutdown(ctx); err != nil {
			t.Errorf("dashboard shutdown: %v", err)
		}
		s.srv.Close()
		s.client.CloseIdleConnections()
	})
	return s
}

// testStream is one event stream read with the core's Decoder, as a
// browser's EventSource would read it.
type testStream struct {
	t      testing.TB
	resp   *http.Response
	events chan sse.Event
	done   chan struct{}
	ended  chan struct{}
	resume string // set when the reading goroutine ends
	once   sync.Once
}

// openStream opens path on the stack's server, resuming after lastID if it
// is set, and fails the test unless the answer is an event stream.
func (s *testStack) openStream(t testing.TB, path, lastID string) *testStream {
	t.Helper()
	st, err := s.tryStream(path, lastID)
	if err != nil {
		t.Fatal(err)
	}
	st.t = t
	t.Cleanup(st.close)
	return st
}

func (s *testStack) tryStream(path, lastID string) (*testStream, error) {
	req, err := http.NewRequest(http.MethodGet, s.srv.URL+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, &sse.StatusError{Code: resp.StatusCode}
	}
	st := &testStream{resp: resp, events: make(chan sse.Event), done: make(chan struct{}), ended: make(chan struct{})}
	dec := sse.NewDecoder(resp.Body)
	dec.SetLastEventID(lastID)
	go st.read(dec)
	return st, nil
}

// read hands each event over unbuffered, so that resume is exactly where a
// browser that handled every event it was given would resume from. Like
// the page, it does not listen for sse.PositionEvent, which only moves the
// resume point.
func (st *testStream) read(dec *sse.Decoder) {
	defer close(st.ended)
	for {
		before := dec.LastEventID()
		ev, err := dec.Decode()
		if err != nil {
			st.resume = dec.LastEventID()
			close(st.events)
			return
		}
		if ev.Type == sse.PositionEvent {
			continue // moves the resume point only, as in the page
		}
		select {
		case st.events <- ev:
		case <-st.done:
			st.resume = before
			close(st.events)
			return
		}
	}
}

// next returns the next event, or false if the stream ended or nothing came
// within wait.
func (st *testStream) next(wait time.Duration) (sse.Event, bool) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case ev, ok := <-st.events:
		return ev, ok
	case <-timer.C:
		return sse.Event{}, false
	}
}

// close drops the connection; resume then holds the Last-Event-ID a
// browser would send on its reconnect.
func (st *testStream) close() {
	st.once.Do(func() {
		close(st.done)
		st.resp.Body.Close()
		<-st.ended
	})
}

// lastID closes the stream and returns where to resume.
func (st *testStream) lastID() string {
	st.close()
	return st.resume
}

// waitFor reads events until match accepts one, failing the test after
// wait. It returns the matching event.
func (st *testStream) waitFor(wait time.Duration, what string, match func(sse.Event) bool) sse.Event {
	st.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			st.t.Fatalf("no %s within %v", what, wait)
		}
		ev, ok := st.next(left)
		if !ok {
			st.t.Fatalf("stream ended or timed out waiting for %s", what)
		}
		if match(ev) {
			return ev
		}
	}
}

// samples decodes a monitor_points event.
func samples(t testing.TB, ev sse.Event) []Sample {
	t.Helper()
	var out []Sample
	if err := json.Unmarshal(ev.Data, &out); err != nil {
		t.Fatalf("monitor_points data %q: %v", ev.Data, err)
	}
	return out
}

// status decodes an opcua_status event.
func status(t testing.TB, ev sse.Event) Status {
	t.Helper()
	var st Status
	if err := json.Unmarshal(ev.Data, &st); err != nil {
		t.Fatalf("opcua_status data %q: %v", ev.Data, err)
	}
	return st
}

// orderCheck records what one client has seen and fails on a value that is
// not newer than the last one seen for its point.
type orderCheck struct {
	last map[string]time.Time
}

func newOrderCheck() *orderCheck { return &orderCheck{last: map[string]time.Time{}} }

func (c *orderCheck) see(t testing.TB, where string, batch []Sample) {
	t.Helper()
	for _, s := range batch {
		if prev, ok := c.last[s.PointID]; ok && !s.UpdateAt.After(prev) {
			t.Errorf("%s: %s at %s after %s: repeated or out of order",
				where, s.PointID, s.UpdateAt.Format(stampLayout), prev.Format(stampLayout))
		}
		c.last[s.PointID] = s.UpdateAt.Time
	}
}

// postWatch posts body to /api/watch and returns the status and the
// answer's body.
func (s *testStack) postWatch(t testing.TB, contentType string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := s.client.Post(s.srv.URL+"/api/watch", contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// watch changes a client's watch set and fails the test unless the server
// takes it.
func (s *testStack) watch(t testing.TB, req watchRequest) watchReply {
	t.Helper()
	code, body := s.postWatch(t, "application/json", mustJSON(req))
	if code != http.StatusOK {
		t.Fatalf("POST /api/watch %+v: %d %s", req, code, body)
	}
	var rep watchReply
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("POST /api/watch answered %q: %v", body, err)
	}
	return rep
}

// waitStreams waits until the hub has n open streams.
func waitStreams(t testing.TB, s *testStack, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.dash.hub.Stats().Streams != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams open, want %d", s.dash.hub.Stats().Streams, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
