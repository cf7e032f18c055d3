package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// The hub's settings in every scenario: a short history, so that a few
// hundred events are enough to evict a stream's position, and fast
// heartbeats and reconnects, so that the whole suite stays short.
const (
	history   = 16
	heartbeat = 200 * time.Millisecond
	retry     = 100 * time.Millisecond
)

// testServer is one hub behind an httptest server, with a gate in front
// of its stream endpoint and a tap on what it writes. The page for the
// browser is served from the same origin.
type testServer struct {
	t   *testing.T
	hub *sse.Hub
	srv *httptest.Server

	mu        sync.Mutex
	gateOpen  chan struct{}       // closed while requests may pass
	waiting   map[string][]string // client ID → Last-Event-IDs of requests held at the gate
	requests  []streamRequest     // every stream request that reached the hub, in order
	connects  []sse.StreamInfo    // OnConnect, in order
	published map[string]bool     // data of every event the test sent
	wire      []wireChunk         // every write the hub made, to any stream
	changed   chan struct{}       // closed and replaced on every change above
}

// streamRequest is one request that passed the gate.
type streamRequest struct {
	ClientID    string
	LastEventID string // "" when the request carried none
	HasID       bool   // whether it carried the header at all
}

// wireChunk is one Write the hub made to a stream's ResponseWriter.
type wireChunk struct {
	ClientID string
	At       time.Time
	Bytes    []byte
}

// newTestServer starts a hub with the scenario settings. The stream
// endpoint is /sse?client=<id>&topics=<a,b>; /page serves the browser's
// test page. Everything is closed when the test ends.
func newTestServer(t *testing.T) *testServer {
	t.Helper()
	s := &testServer{
		t:         t,
		gateOpen:  make(chan struct{}),
		waiting:   map[string][]string{},
		published: map[string]bool{},
		changed:   make(chan struct{}),
	}
	close(s.gateOpen)
	hub, err := sse.NewHub(sse.Config{
		History:   history,
		Heartbeat: heartbeat,
		Retry:     retry,
		ClientID: func(r *http.Request) (string, error) {
			if id := r.URL.Query().Get("client"); id != "" {
				return id, nil
			}
			return "", &sse.StatusError{Code: http.StatusBadRequest, Err: fmt.Errorf("no client parameter")}
		},
		Topics: func(r *http.Request) ([]string, error) {
			v := r.URL.Query().Get("topics")
			if v == "" {
				return nil, nil
			}
			return strings.Split(v, ","), nil
		},
		OnConnect: func(info sse.StreamInfo) {
			s.update(func() { s.connects = append(s.connects, info) })
		},
	})
	if err != nil {
		t.Fatalf("NewHub: %v", err)
	}
	s.hub = hub
	mux := http.NewServeMux()
	mux.HandleFunc("/sse", s.serveStream)
	mux.HandleFunc("/page", servePage)
	mux.HandleFunc("/probe", s.serveProbe)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		s.release() // nothing may stay held at the gate
		hub.Close()
		s.srv.Close()
	})
	return s
}

// onCI says whether the tests run on CI (CI set, to anything but "false"
// or "0"), where a missing browser or npm client is a failure, not a skip.
func onCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// update runs f under the lock and wakes everyone waiting for a change.
func (s *testServer) update(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	close(s.changed)
	s.changed = make(chan struct{})
}

// streamURL is the stream endpoint for a client ID and its topics.
func (s *testServer) streamURL(clientID string, topics ...string) string {
	q := url.Values{"client": {clientID}}
	if len(topics) > 0 {
		q.Set("topics", strings.Join(topics, ","))
	}
	return s.srv.URL + "/sse?" + q.Encode()
}

// probeURL is the handcrafted stream of probe_test.go for a client ID.
func (s *testServer) probeURL(clientID string) string {
	return s.srv.URL + "/probe?" + url.Values{"client": {clientID}}.Encode()
}

// requestsOf returns the stream requests of clientID that passed the gate.
func (s *testServer) requestsOf(clientID string) []streamRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []streamRequest
	for _, q := range s.requests {
		if q.ClientID == clientID {
			out = append(out, q)
		}
	}
	return out
}

// serveStream is the gate: while the test holds it, a request waits here
// (noted in waiting, with the Last-Event-ID it carries) until the test
// releases it, then goes to the hub with its headers as they came. The
// hub's writes are tapped on the way out.
func (s *testServer) serveStream(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("client")
	lastID, hasID := r.Header.Get("Last-Event-ID"), len(r.Header.Values("Last-Event-ID")) > 0
	s.mu.Lock()
	gate := s.gateOpen
	s.mu.Unlock()
	select {
	case <-gate:
	default:
		s.update(func() { s.waiting[id] = append(s.waiting[id], lastID) })
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	s.update(func() {
		s.requests = append(s.requests, streamRequest{ClientID: id, LastEventID: lastID, HasID: hasID})
	})
	s.hub.ServeHTTP(&tapWriter{ResponseWriter: w, s: s, clientID: id}, r)
}

// hold closes the gate: from now on stream requests wait in serveStream.
func (s *testServer) hold() {
	s.update(func() {
		s.gateOpen = make(chan struct{})
		s.waiting = map[string][]string{}
	})
}

// release opens the gate and lets every held request through.
func (s *testServer) release() {
	s.update(func() {
		select {
		case <-s.gateOpen:
		default:
			close(s.gateOpen)
		}
	})
}

// waitUntil blocks until cond, checked under the lock after every change,
// holds, or fails the test after timeout saying what it waited for.
func (s *testServer) waitUntil(timeout time.Duration, what string, cond func() bool) {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			s.t.Fatalf("waited %v for %s; hub: %+v", timeout, what, s.hub.Stats())
		}
	}
}

// dropAndHold closes the gate, ends the client's streams, and waits until
// the client's reconnect is held at the gate. It returns the Last-Event-ID
// that reconnect carries ("" for none).
func (s *testServer) dropAndHold(clientID string) string {
	s.t.Helper()
	s.hold()
	if n := s.hub.Disconnect(clientID); n != 1 {
		s.t.Fatalf("Disconnect(%q) ended %d streams, want 1", clientID, n)
	}
	var last string
	s.waitUntil(15*time.Second, "the client's reconnect to reach the gate", func() bool {
		ids := s.waiting[clientID]
		if len(ids) == 0 {
			return false
		}
		last = ids[0]
		return true
	})
	return last
}

// waitConnected waits for the n-th stream of clientID to be registered
// (OnConnect) and returns its StreamInfo.
func (s *testServer) waitConnected(clientID string, n int) sse.StreamInfo {
	s.t.Helper()
	var info sse.StreamInfo
	s.waitUntil(15*time.Second, fmt.Sprintf("stream %d of %q to connect", n, clientID), func() bool {
		k := 0
		for _, c := range s.connects {
			if c.ClientID == clientID {
				if k++; k == n {
					info = c
					return true
				}
			}
		}
		return false
	})
	return info
}

// wireOf returns the chunks the hub wrote to clientID's streams.
func (s *testServer) wireOf(clientID string) []wireChunk {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []wireChunk
	for _, c := range s.wire {
		if c.ClientID == clientID {
			out = append(out, c)
		}
	}
	return out
}

// event builds an unnamed event whose data the test remembers as its own.
func (s *testServer) event(data string) sse.Event {
	s.update(func() { s.published[data] = true })
	return sse.Event{Data: []byte(data)}
}

// publish publishes one event with the given data to a topic, failing the
// test if the hub refuses it.
func (s *testServer) publish(topic, data string) {
	s.t.Helper()
	if _, err := s.hub.Publish(topic, s.event(data)); err != nil {
		s.t.Fatalf("Publish(%q, %q): %v", topic, data, err)
	}
}

// publishN publishes n events to a topic, with data prefix-0 … prefix-(n-1).
func (s *testServer) publishN(topic, prefix string, n int) {
	s.t.Helper()
	for i := range n {
		s.publish(topic, fmt.Sprintf("%s-%d", prefix, i))
	}
}

// send sends one event with the given data to a client ID.
func (s *testServer) send(clientID, data string) {
	s.t.Helper()
	if _, err := s.hub.Send(clientID, s.event(data)); err != nil {
		s.t.Fatalf("Send(%q, %q): %v", clientID, data, err)
	}
}

// isPublished says whether data is that of an event the test sent.
func (s *testServer) isPublished(data string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.published[data]
}

// tapWriter copies every write the hub makes into testServer.wire. Unwrap
// lets the hub's http.ResponseController reach Flush and SetWriteDeadline
// of the real ResponseWriter.
type tapWriter struct {
	http.ResponseWriter
	s        *testServer
	clientID string
}

// Write notes p, then writes it through.
func (w *tapWriter) Write(p []byte) (int, error) {
	c := wireChunk{ClientID: w.clientID, At: time.Now(), Bytes: bytes.Clone(p)}
	w.s.update(func() { w.s.wire = append(w.s.wire, c) })
	return w.ResponseWriter.Write(p)
}

// Unwrap returns the ResponseWriter underneath, for http.ResponseController.
func (w *tapWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hasComment says whether a chunk holds a comment line (a heartbeat: the
// hub writes comments for nothing else).
func hasComment(b []byte) bool {
	return bytes.HasPrefix(b, []byte(":")) || bytes.Contains(b, []byte("\n:"))
}

// record is one thing a client reported: a connection opened or failed,
// or an event handed to the application.
type record struct {
	Kind   string  `json:"kind"` // "open", "error", "message" (the general handler) or "named" (a listener for that type)
	Type   string  `json:"type"` // event type as the client reports it; "message" when unnamed
	ID     string  `json:"id"`   // the event's last event ID as handed to the app
	Data   string  `json:"data"`
	LastID *string `json:"lastId"` // the client's own resume point, if it exposes one
	TS     int64   `json:"ts"`     // Unix milliseconds when the client saw it
	Error  string  `json:"error,omitempty"`
}

// isEvent says whether the record is an event handed to the application.
func (r record) isEvent() bool { return r.Kind == "message" || r.Kind == "named" }

// String renders a record for failure messages.
func (r record) String() string {
	if !r.isEvent() {
		return fmt.Sprintf("%s %s", r.Kind, r.Error)
	}
	return fmt.Sprintf("%s(type=%q id=%q data=%q)", r.Kind, r.Type, r.ID, r.Data)
}

// recorder collects a client's records, safe for concurrent use.
type recorder struct {
	mu      sync.Mutex
	recs    []record
	changed chan struct{}
}

// newRecorder returns an empty recorder.
func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

// add appends a record, stamping it with the current time if it has none.
func (r *recorder) add(rec record) {
	if rec.TS == 0 {
		rec.TS = time.Now().UnixMilli()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	close(r.changed)
	r.changed = make(chan struct{})
}

// addJSON decodes one JSON line into a record and adds it.
func (r *recorder) addJSON(line []byte) error {
	var rec record
	if err := json.Unmarshal(line, &rec); err != nil {
		return fmt.Errorf("client output %q: %w", line, err)
	}
	r.add(rec)
	return nil
}

// all returns a copy of the records so far.
func (r *recorder) all() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.recs...)
}

// len returns the number of records so far.
func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.recs)
}

// waitFor waits until cond holds for the records so far, up to timeout.
// It reports whether it did; the caller decides whether that is a failure.
func (r *recorder) waitFor(timeout time.Duration, cond func([]record) bool) bool {
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		ok, ch := cond(r.recs), r.changed
		r.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}
