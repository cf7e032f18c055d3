package sse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestShutdown(t *testing.T) {
	h, srv := newTestHub(t, Config{ClientID: headerID, Topics: queryTopics})
	var clients []*testClient
	for i := range 3 {
		clients = append(clients, dial(t, nil, srv.URL+"?topic=t", user(fmt.Sprint("u", i))))
	}
	waitStreams(t, h, 3)
	h.Broadcast(data("last words"))
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// What was queued before Shutdown is written, then every stream ends.
	for _, c := range clients {
		rest, err := c.drain()
		if err != io.EOF || len(rest) != 1 || string(rest[0].Data) != "last words" {
			t.Fatalf("got %d events, %v", len(rest), err)
		}
	}
	noHubGoroutines(t, h)
	for name, call := range map[string]func() (int, error){
		"Broadcast": func() (int, error) { return h.Broadcast(data("x")) },
		"Publish":   func() (int, error) { return h.Publish("t", data("x")) },
		"Send":      func() (int, error) { return h.Send("u0", data("x")) },
	} {
		if n, err := call(); n != 0 || !errors.Is(err, ErrHubClosed) {
			t.Errorf("%s after Shutdown: %d, %v", name, n, err)
		}
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	h.Close()
	// New requests get a retry hint, not an error status.
	resp, err := http.DefaultClient.Do(mustRequest(t, srv.URL, user("late")))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "retry: ") {
		t.Fatalf("after Shutdown: %s %q", resp.Status, body)
	}
	if st := h.Stats(); st.Streams != 0 || st.Refused != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Shutdown gives up when its context ends before a stream does (here one
// stuck writing to a client that never reads), and a later call finishes
// the job.
func TestShutdownHonoursItsContext(t *testing.T) {
	h, err := NewHub(testConfig(Config{QueueBytes: 1 << 20, WriteTimeout: time.Second, Heartbeat: -1}))
	if err != nil {
		t.Fatal(err)
	}
	neverReader(t, smallBufferServer(t, h), "/")
	waitStreams(t, h, 1)
	for range 64 {
		h.Broadcast(data(strings.Repeat("x", 8<<10))) // far more than the socket buffers hold
	}
	waitFor(t, "the writer to block", func() bool { return h.Stats().Written > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := h.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the context's error", err)
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	noHubGoroutines(t, h)
}

// Publishing while the hub shuts down either succeeds or fails with
// ErrHubClosed: no panic, no send on a closed channel, no race.
func TestShutdownWhilePublishing(t *testing.T) {
	h, srv := newTestHub(t, Config{})
	for range 5 {
		dial(t, nil, srv.URL, nil)
	}
	waitStreams(t, h, 5)
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, err := h.Send(fmt.Sprint(p), data("x"))
				if _, err2 := h.Broadcast(data("y")); err == nil {
					err = err2
				}
				if errors.Is(err, ErrHubClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	noHubGoroutines(t, h)
}

// within fails the test unless done is closed within testTimeout: what must
// not deadlock.
func within(t *testing.T, what string, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatalf("%s did not return: deadlock?", what)
	}
}

// The hooks may call Shutdown and Close: from a hook they end every stream
// and wait for all but the hook's own, which ends once the hook returns.
func TestShutdownFromHooks(t *testing.T) {
	t.Run("Close from OnDisconnect", func(t *testing.T) {
		var h *Hub
		closed := make(chan struct{})
		h, srv := newTestHub(t, Config{
			ClientID: headerID,
			OnDisconnect: func(s StreamInfo, _ DisconnectReason) {
				if s.ClientID == "ann" {
					h.Close()
					close(closed)
				}
			},
		})
		other := dial(t, nil, srv.URL, user("bob"))
		dial(t, nil, srv.URL, user("ann"))
		waitStreams(t, h, 2)
		h.Disconnect("ann")
		within(t, "Close in OnDisconnect", closed)
		if err := other.ended(); err != io.EOF {
			t.Fatalf("the other stream: %v", err)
		}
		noHubGoroutines(t, h)
	})
	t.Run("Shutdown from OnConnect", func(t *testing.T) {
		var h *Hub
		result := make(chan error, 1)
		h, srv := newTestHub(t, Config{
			ClientID: headerID,
			OnConnect: func(s StreamInfo) {
				if s.ClientID == "ann" {
					ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
					defer cancel()
					result <- h.Shutdown(ctx)
				}
			},
		})
		other := dial(t, nil, srv.URL, user("bob"))
		waitStreams(t, h, 1)
		resp, err := http.DefaultClient.Do(mustRequest(t, srv.URL, user("ann")))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) // the stream ends: the hub shut down
		resp.Body.Close()
		select {
		case err := <-result:
			if err != nil {
				t.Fatalf("Shutdown in OnConnect: %v", err)
			}
		case <-time.After(testTimeout):
			t.Fatal("Shutdown in OnConnect did not return")
		}
		if err := other.ended(); err != io.EOF {
			t.Fatalf("the other stream: %v", err)
		}
		noHubGoroutines(t, h)
	})
	t.Run("Shutdown deep in OnConnect's stack", func(t *testing.T) {
		// inHook reads the whole stack, however deep the hook's call.
		var h *Hub
		result := make(chan error, 1)
		var deep func(n int) error
		deep = func(n int) error {
			if n == 0 {
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				defer cancel()
				return h.Shutdown(ctx)
			}
			return deep(n - 1)
		}
		h, srv := newTestHub(t, Config{OnConnect: func(StreamInfo) { result <- deep(500) }})
		resp, err := http.DefaultClient.Do(mustRequest(t, srv.URL, nil))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		select {
		case err := <-result:
			if err != nil {
				t.Fatalf("Shutdown 500 calls deep in OnConnect: %v", err)
			}
		case <-time.After(testTimeout):
			t.Fatal("Shutdown deep in OnConnect did not return")
		}
		noHubGoroutines(t, h)
	})
	t.Run("Close from every OnDisconnect at once", func(t *testing.T) {
		var h *Hub
		var calls sync.WaitGroup
		h, srv := newTestHub(t, Config{
			OnDisconnect: func(StreamInfo, DisconnectReason) {
				h.Close()
				calls.Done()
			},
		})
		const n = 5
		calls.Add(n)
		for range n {
			dial(t, nil, srv.URL, nil)
		}
		waitStreams(t, h, n)
		done := make(chan struct{})
		go func() {
			h.Close()
			calls.Wait()
			close(done)
		}()
		within(t, "Close, outside and in every OnDisconnect", done)
		noHubGoroutines(t, h)
	})
}

// hangingBroker is the in-memory broker whose Publish hangs until its
// context ends.
type hangingBroker struct {
	*memoryBroker
	entered chan struct{}
	gaveUp  chan error
}

func (b *hangingBroker) Publish(ctx context.Context, _ *Message) error {
	close(b.entered)
	<-ctx.Done()
	b.gaveUp <- ctx.Err()
	return ctx.Err()
}

// Shutdown ends by its context's deadline even while a Broker's Publish
// hangs, and cancels that publish's context.
func TestShutdownWhileABrokerPublishHangs(t *testing.T) {
	b := &hangingBroker{memoryBroker: newMemoryBroker(16, 16), entered: make(chan struct{}), gaveUp: make(chan error, 1)}
	h, srv := newTestHub(t, Config{Broker: b})
	c := dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	published := make(chan error, 1)
	go func() {
		_, err := h.Broadcast(data("hangs"))
		published <- err
	}()
	<-b.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	returned := make(chan error, 1)
	go func() { returned <- h.Shutdown(ctx) }()
	select {
	case err := <-returned:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want the context's error", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Shutdown did not honour its context while a publish hung")
	}
	if err := <-b.gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("the publish's context ended with %v, want it cancelled", err)
	}
	if err := <-published; err == nil {
		t.Fatal("the hung publish reported success")
	}
	// The streams were ended all the same.
	if err := c.ended(); err != io.EOF {
		t.Fatalf("stream: %v", err)
	}
}

// Through middleware that flushes but has no Unwrap, writes cannot take a
// deadline: a client that stops reading holds its writer until TCP gives
// up. The hub says so once, even without a Logger, counts such streams,
// and Shutdown still returns, reporting them, once the write timeout has
// passed; Close returns too.
func TestShutdownWithAWriterThatTakesNoDeadline(t *testing.T) {
	var logged syncBuffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	h, err := NewHub(testConfig(Config{QueueBytes: 8 << 20, WriteTimeout: 200 * time.Millisecond, Heartbeat: -1}))
	if err != nil {
		t.Fatal(err)
	}
	srv := smallBufferServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&flushOnly{w}, r)
	}))
	neverReader(t, srv, "/")
	waitStreams(t, h, 1)
	for range 256 {
		h.Broadcast(data(strings.Repeat("x", 8<<10))) // far more than the socket buffers hold
	}
	if st := h.Stats(); st.NoWriteDeadline != 1 {
		t.Fatalf("stats %+v: the stream without write deadlines was not counted", st)
	}
	if !strings.Contains(logged.String(), "takes no write deadline") || !strings.Contains(logged.String(), "level=WARN") {
		t.Fatalf("default log %q does not warn about the writer", logged.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := h.Shutdown(ctx); !errors.Is(err, ErrStuckStreams) {
		t.Fatalf("Shutdown = %v, want ErrStuckStreams", err)
	}
	closed := make(chan struct{})
	go func() {
		h.Close()
		close(closed)
	}()
	within(t, "Close", closed)
	if !strings.Contains(logged.String(), "Shutdown gave up") {
		t.Fatalf("default log %q does not say Shutdown gave up", logged.String())
	}
}

// closingBroker is the in-memory broker whose Close takes as long as it is
// told to, as a Broker on a frozen store may, and says when it was called.
type closingBroker struct {
	*memoryBroker
	takes  time.Duration
	closed chan struct{}
}

func (b *closingBroker) Close() error {
	close(b.closed)
	time.Sleep(b.takes)
	return nil
}

// Shutdown returns by its context's deadline even while the Broker's Close
// hangs, with an error that says so.
func TestShutdownBoundsTheBrokersClose(t *testing.T) {
	b := &closingBroker{memoryBroker: newMemoryBroker(16, 16), takes: 3 * time.Second, closed: make(chan struct{})}
	h, err := NewHub(testConfig(Config{Broker: b}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	err = h.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "Broker's Close to return") {
		t.Fatalf("Shutdown = %v, want its context's error naming the Broker's Close", err)
	}
	if took := time.Since(began); took > 2*time.Second { // a liveness bound: the Close takes 3 s
		t.Fatalf("Shutdown took %v with a 200ms context", took)
	}
}

// A Shutdown whose context ends while a stream is still ending closes the
// Broker all the same, so that nothing of the broker's (a follower reading
// Redis) outlives the hub; the stream ends by the write timeout.
func TestShutdownThatGivesUpClosesTheBroker(t *testing.T) {
	b := &closingBroker{memoryBroker: newMemoryBroker(16, 16), closed: make(chan struct{})}
	release := make(chan struct{})
	defer close(release)
	h, srv := newTestHub(t, Config{Broker: b, OnConnect: func(StreamInfo) { <-release }})
	go func() {
		resp, err := http.DefaultClient.Do(mustRequest(t, srv.URL, nil))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	waitStreams(t, h, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := h.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 streams") {
		t.Fatalf("Shutdown = %v, want its context's error saying a stream was still ending", err)
	}
	within(t, "the Broker's Close", b.closed)
}
