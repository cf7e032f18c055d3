package sse

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// This file holds the helpers the hub tests share: a hub on a real loopback
// server, and a client that reads its stream with the package's Decoder.

// testTimeout bounds every wait in the tests. It is a failure deadline, not
// a performance assertion: on a loaded machine things may take long, but
// never this long.
const testTimeout = 20 * time.Second

// hijackAll runs every test hub with Config.Hijack on: test.sh runs the
// suite both ways (go test -args -sse.hijack).
var hijackAll = flag.Bool("sse.hijack", false, "start every test hub with Config.Hijack")

// pollAll runs every test hub with Config.Hijack and Config.Poll on:
// test.sh runs the suite that way too (go test -args -sse.poll).
var pollAll = flag.Bool("sse.poll", false, "start every test hub with Config.Hijack and Config.Poll")

// testConfig is cfg as the tests run it: with Hijack on under -sse.hijack,
// with Hijack and Poll on under -sse.poll.
func testConfig(cfg Config) Config {
	cfg.Hijack = cfg.Hijack || *hijackAll || *pollAll
	cfg.Poll = cfg.Poll || *pollAll
	return cfg
}

// newTestHub starts a hub with cfg behind an httptest server. Both are
// closed when the test ends.
func newTestHub(t testing.TB, cfg Config) (*Hub, *httptest.Server) {
	t.Helper()
	h, err := NewHub(testConfig(cfg))
	if err != nil {
		t.Fatalf("NewHub: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
	})
	return h, srv
}

// testClient is one stream read by a Decoder on its own goroutine.
type testClient struct {
	t      testing.TB
	resp   *http.Response
	cancel context.CancelFunc
	events chan Event
	errc   chan error // the decoder's final error
	dec    *Decoder
	br     *bufio.Reader

	positions atomic.Int64 // PositionEvents read, which events does not carry
}

// dial opens a stream to url with the given request headers and fails the
// test unless it is answered 200 text/event-stream.
func dial(t testing.TB, client *http.Client, url string, header http.Header) *testClient {
	t.Helper()
	c, resp := tryDial(t, client, url, header)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(resp.Body)
		c.close()
		t.Fatalf("GET %s: %s %q %q", url, resp.Status, resp.Header.Get("Content-Type"), body)
	}
	c.start("")
	return c
}

// tryDial sends the request and returns without checking the answer.
func tryDial(t testing.TB, client *http.Client, url string, header http.Header) (*testClient, *http.Response) {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	c := &testClient{t: t, resp: resp, cancel: cancel, events: make(chan Event, 1<<16), errc: make(chan error, 1)}
	t.Cleanup(c.close)
	return c, resp
}

// dialAt opens a fresh or reset stream and reads its opening blocks
// synchronously, up to the PositionEvent that tells the client the hub's
// position (or the ResetEvent that carries it), which it returns. Events
// before it (a reset, a snapshot) and after it are then read as by dial.
func dialAt(t testing.TB, url string, header http.Header) (*testClient, string) {
	t.Helper()
	c, resp := tryDial(t, nil, url, header)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	c.br = bufio.NewReader(resp.Body)
	giveUp := time.AfterFunc(testTimeout, c.close) // a failure, not a hang, if the block never comes
	defer giveUp.Stop()
	var block []string
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the opening blocks: %v", err)
		}
		if line != "\n" {
			block = append(block, line)
			continue
		}
		d := NewDecoder(strings.NewReader(strings.Join(block, "") + "\n"))
		ev, err := d.Decode()
		block = block[:0]
		if err != nil {
			continue
		}
		if ev.Type == PositionEvent {
			c.positions.Add(1)
			c.start(ev.ID)
			return c, ev.ID
		}
		c.events <- ev
		if ev.Type == ResetEvent && ev.ID != "" {
			c.start(ev.ID)
			return c, ev.ID
		}
	}
}

// start decodes the stream on its own goroutine; seed is the last event ID
// the client already has. PositionEvents move the decoder's last event ID
// and are counted, not passed on, as an application ignores them.
func (c *testClient) start(seed string) {
	if c.br == nil {
		c.br = bufio.NewReader(c.resp.Body)
	}
	c.dec = NewDecoder(c.br)
	c.dec.SetLastEventID(seed)
	go func() {
		defer close(c.events)
		for {
			ev, err := c.dec.Decode()
			if err != nil {
				c.errc <- err
				return
			}
			if ev.Type == PositionEvent && len(ev.Data) == 0 {
				c.positions.Add(1) // and skipped, as decodeEvent does
				continue
			}
			c.events <- ev
		}
	}()
}

func (c *testClient) close() {
	c.cancel()
	c.resp.Body.Close()
}

// decodeEvent returns d's next event but for PositionEvents, which it
// skips as an application does.
func decodeEvent(d *Decoder) (Event, error) {
	for {
		ev, err := d.Decode()
		if err != nil || ev.Type != PositionEvent || len(ev.Data) != 0 {
			return ev, err
		}
	}
}

// next returns the next event, failing the test if none comes in time or
// the stream ends.
func (c *testClient) next() Event {
	c.t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			c.t.Fatalf("stream ended: %v", <-c.errc)
		}
		return ev
	case <-time.After(testTimeout):
		c.t.Fatalf("no event within %v", testTimeout)
	}
	return Event{}
}

// ended waits for the stream to end and returns the decoder's error
// (io.EOF for a clean end), skipping events.
func (c *testClient) ended() error {
	c.t.Helper()
	_, err := c.drain()
	return err
}

// drain waits for the stream to end and returns the events not yet read and
// the decoder's error.
func (c *testClient) drain() ([]Event, error) {
	c.t.Helper()
	deadline := time.After(testTimeout)
	var rest []Event
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				return rest, <-c.errc
			}
			rest = append(rest, ev)
		case <-deadline:
			c.t.Fatalf("stream did not end within %v", testTimeout)
			return nil, nil
		}
	}
}

// quiet fails the test if an event arrives within d.
func (c *testClient) quiet(d time.Duration) {
	c.t.Helper()
	select {
	case ev, ok := <-c.events:
		if ok {
			c.t.Fatalf("unexpected event %+v", ev)
		}
	case <-time.After(d):
	}
}

// waitFor polls cond until it holds, failing the test after testTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitStreams waits until the hub has n streams open.
func waitStreams(t testing.TB, h *Hub, n int) {
	t.Helper()
	waitFor(t, "streams to register", func() bool { return h.Stats().Streams == n })
}

// hubGoroutines lists the stacks of the goroutines running h's code: its
// stream handlers, its heartbeat, its Shutdown waiter. Stack traces print
// the receiver, so other hubs' goroutines are told apart.
func hubGoroutines(h *Hub) []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	mine := regexp.MustCompile(`sse\.\(\*Hub\)\.\w+\(` + fmt.Sprintf("%p", h) + `[,)]`)
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if mine.MatchString(g) {
			found = append(found, g)
		}
	}
	return found
}

// noHubGoroutines fails the test if goroutines of h are still running a
// moment after Shutdown returned. (A goroutine that has just called
// wg.Done may still be returning; none may stay.)
func noHubGoroutines(t testing.TB, h *Hub) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		g := hubGoroutines(h)
		if len(g) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines outlived Shutdown:\n%s", strings.Join(g, "\n\n"))
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSmoke(t *testing.T) {
	h, srv := newTestHub(t, Config{})
	c := dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	n, err := h.Broadcast(Event{Type: "greeting", Data: []byte("hello\nworld")})
	if err != nil || n != 1 {
		t.Fatalf("Broadcast = %d, %v; want 1, nil", n, err)
	}
	ev := c.next()
	if ev.Type != "greeting" || string(ev.Data) != "hello\nworld" || ev.ID == "" {
		t.Fatalf("got %+v", ev)
	}
}
