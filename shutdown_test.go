package sse

import (
	"context"
	"errors"
	"fmt"
	"io"
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
