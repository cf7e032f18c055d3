package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// patience bounds every wait for something that must happen: generous,
// since the machine is shared; the tests check order, never speed.
const patience = 10 * time.Second

// served lists what the suite runs: every framework, and Fiber with the
// hub on a net/http listener beside it.
func served() []framework {
	return append(append([]framework(nil), frameworks...), framework{"fiber (hub beside)",
		func(hub *sse.Hub, ln net.Listener) (func(context.Context) error, error) {
			appLn, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			return startFiberBeside(hub, ln, appLn)
		}})
}

// The same behaviour, through every framework, with and without
// Config.Hijack.
func TestFrameworks(t *testing.T) {
	for _, f := range served() {
		for _, hijack := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/hijack=%v", f.name, hijack), func(t *testing.T) { testFramework(t, f, hijack) })
		}
	}
}

// syncBuffer collects a hub's log.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

func testFramework(t *testing.T, f framework, hijack bool) {
	logged := &syncBuffer{}
	hub, err := newHub(sse.Config{
		Hijack: hijack,
		Logger: slog.New(slog.NewTextHandler(logged, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop, err := f.start(hub, ln)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = stop(context.Background())
		}
	})
	url := "http://" + ln.Addr().String() + ssePath

	t.Run("unauthenticated requests get the framework's 401", func(t *testing.T) {
		for _, query := range []string{"", "?token=forged"} {
			resp, err := http.Get(url + query)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), unauthorized) {
				t.Fatalf("%q: %s %q, want 401 from the auth middleware", query, resp.Status, body)
			}
		}
		if strings.Contains(logged.String(), "request rejected") {
			t.Fatalf("an unauthenticated request reached the hub:\n%s", logged)
		}
	})

	t.Run("headers arrive at connect, before any event", func(t *testing.T) {
		c := connect(t, url+"?token=token-ann", nil) // returns once the headers are in
		if ct := c.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("Content-Type %q", ct)
		}
		if o := c.resp.Header.Get("Access-Control-Allow-Origin"); o != allowedOrigin {
			t.Fatalf("Access-Control-Allow-Origin %q: the CORS middleware did not run", o)
		}
		if n := hub.Stats().Published; n != 0 {
			t.Fatalf("%d events published before the headers were checked", n)
		}
	})

	t.Run("events arrive one by one", func(t *testing.T) {
		settle(t, hub)
		c := connect(t, url+"?token=token-ann", nil)
		waitFor(t, "the stream to register", func() bool { return hub.Stats().Streams == 1 })
		for _, data := range []string{"one", "two", "three"} {
			if _, err := hub.Broadcast(sse.Event{Data: []byte(data)}); err != nil {
				t.Fatal(err)
			}
			if ev := c.next(t); string(ev.Data) != data { // before the next is published
				t.Fatalf("got %q, want %q", ev.Data, data)
			}
		}
	})

	t.Run("Send reaches only its client", func(t *testing.T) {
		settle(t, hub)
		ann := connect(t, url+"?token=token-ann", nil)
		bob := connect(t, url, http.Header{"Authorization": {"Bearer token-bob"}})
		waitFor(t, "both streams to register", func() bool { return hub.Stats().Streams == 2 })
		if _, err := hub.Send("ann", sse.Event{Data: []byte("for ann")}); err != nil {
			t.Fatal(err)
		}
		if _, err := hub.Broadcast(sse.Event{Data: []byte("for all")}); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"for ann", "for all"} {
			if ev := ann.next(t); string(ev.Data) != want {
				t.Fatalf("ann got %q, want %q", ev.Data, want)
			}
		}
		if ev := bob.next(t); string(ev.Data) != "for all" {
			t.Fatalf("bob got %q first, want the broadcast", ev.Data)
		}
	})

	t.Run("Last-Event-ID replays through the framework", func(t *testing.T) {
		settle(t, hub)
		c := connect(t, url+"?token=token-ann", nil)
		waitFor(t, "the stream to register", func() bool { return hub.Stats().Streams == 1 })
		if _, err := hub.Send("ann", sse.Event{Data: []byte("seen")}); err != nil {
			t.Fatal(err)
		}
		seen := c.next(t)
		if string(seen.Data) != "seen" || seen.ID == "" {
			t.Fatalf("got %+v", seen)
		}
		c.close()
		waitFor(t, "ann's streams to end", func() bool { return hub.Stats().Clients == 0 })
		if _, err := hub.Send("ann", sse.Event{Data: []byte("missed")}); err != nil {
			t.Fatal(err)
		}
		again := connect(t, url+"?token=token-ann", http.Header{"Last-Event-ID": {seen.ID}})
		if ev := again.next(t); string(ev.Data) != "missed" {
			t.Fatalf("the resumed stream got %q first, want the event it missed", ev.Data)
		}
	})

	t.Run("CORS preflight", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, url, nil)
		req.Header.Set("Origin", allowedOrigin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		req.Header.Set("Access-Control-Request-Headers", "last-event-id")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") != allowedOrigin {
			t.Fatalf("preflight: %s, Allow-Origin %q", resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})

	t.Run("the framework reaches everything the hub needs", func(t *testing.T) {
		st := hub.Stats()
		if st.NoWriteDeadline != 0 || st.Unflushable != 0 || st.Compressed != 0 || st.ServerWriteTimeouts != 0 {
			t.Fatalf("stats %+v: the framework's ResponseWriter hides something", st)
		}
		if hijack && strings.Contains(logged.String(), "cannot be taken over") {
			t.Fatalf("Config.Hijack fell back to net/http:\n%s", logged)
		}
	})

	t.Run("graceful shutdown within a second", func(t *testing.T) {
		settle(t, hub)
		c := connect(t, url+"?token=token-ann", nil)
		waitFor(t, "the stream to register", func() bool { return hub.Stats().Streams == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		stopped = true
		done := make(chan error, 1)
		go func() { done <- stop(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("shutdown: %v", err)
			}
		case <-ctx.Done(): // for a server whose shutdown takes no context (GoFrame's)
			t.Fatal("shutdown took longer than a second")
		}
		if err := c.ended(t); !errors.Is(err, io.EOF) {
			t.Fatalf("the stream ended with %v, want a clean end", err)
		}
		noHubGoroutines(t)
	})
}

// client reads one stream.
type client struct {
	resp   *http.Response
	cancel context.CancelFunc
	events chan sse.Event
	err    error // once events is closed
}

// connect opens a stream with the Origin the CORS middlewares allow, and
// fails unless it is answered 200; it returns once the headers are in.
func connect(t *testing.T, url string, header http.Header) *client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Origin", allowedOrigin)
	giveUp := time.AfterFunc(patience, cancel)
	resp, err := http.DefaultClient.Do(req)
	giveUp.Stop()
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v (no headers within %v?)", url, err, patience)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		cancel()
		t.Fatalf("GET %s: %s %q", url, resp.Status, body)
	}
	c := &client{resp: resp, cancel: cancel, events: make(chan sse.Event, 64)}
	go func() {
		defer close(c.events)
		d := sse.NewDecoder(resp.Body)
		for {
			ev, err := d.Decode()
			if err != nil {
				c.err = err
				return
			}
			if ev.Type == sse.PositionEvent && len(ev.Data) == 0 {
				continue // the hub's resume point, which applications ignore
			}
			c.events <- ev
		}
	}()
	t.Cleanup(c.close)
	return c
}

// next returns the stream's next event, failing the test if none comes in
// time.
func (c *client) next(t *testing.T) sse.Event {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			t.Fatalf("the stream ended: %v", c.err)
		}
		return ev
	case <-time.After(patience):
		t.Fatalf("no event within %v", patience)
	}
	return sse.Event{}
}

// ended waits for the stream to end, and returns how it ended.
func (c *client) ended(t *testing.T) error {
	t.Helper()
	timeout := time.After(patience)
	for {
		select {
		case _, ok := <-c.events:
			if !ok {
				return c.err
			}
		case <-timeout:
			t.Fatalf("the stream did not end within %v", patience)
		}
	}
}

func (c *client) close() {
	c.cancel()
	c.resp.Body.Close()
}

// settle waits for the streams of earlier subtests, whose clients left, to
// end.
func settle(t *testing.T, hub *sse.Hub) {
	t.Helper()
	waitFor(t, "earlier streams to end", func() bool { return hub.Stats().Streams == 0 })
}

// waitFor polls cond until it holds, failing the test after patience.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// noHubGoroutines fails the test if any goroutine still runs the hub's
// code after its Shutdown returned.
func noHubGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var left []string
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "github.com/ssehub/sse.(*") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines outlived the shutdown:\n%s", strings.Join(left, "\n\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
