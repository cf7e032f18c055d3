package sse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// This file tests Client.Restart: the caller drops the connection and the
// client reconnects at once, resuming from the same point.

// restartClient is a client whose backoff waits are an hour long, so that
// only a restart can reconnect within the test; a wait that long cancels
// the test's context so that the test fails at once.
func restartClient(restart chan struct{}, cancel context.CancelFunc, retried *[]error) *Client {
	return &Client{
		Retry:      time.Hour,
		MaxBackoff: time.Hour,
		Restart:    restart,
		OnRetry: func(err error, wait time.Duration) {
			*retried = append(*retried, err)
			if wait != 0 {
				cancel()
			}
		},
	}
}

// A restart asked for in the loop body drops a live connection; the next
// request carries the last event ID yielded, with no backoff wait, so the
// events go on without a gap or a repeat.
func TestClientRestartFromLoopBody(t *testing.T) {
	var mu sync.Mutex
	var lastIDs []string
	srv, n := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		last := r.Header.Get("Last-Event-ID")
		mu.Lock()
		lastIDs = append(lastIDs, last)
		mu.Unlock()
		// Replay the events after Last-Event-ID, one connection sending
		// fewer than the other.
		upTo := 3
		if n > 1 {
			upTo = 4
		}
		for i := 1; i <= upTo; i++ {
			if last == "" || fmt.Sprint("e", i) > last {
				fmt.Fprintf(w, "id: e%d\ndata: %d\n\n", i, i)
			}
		}
		flush()
		<-r.Context().Done()
	})
	ctx, cancel := testCtx(t)
	restart := make(chan struct{}, 1)
	var retried []error
	c := restartClient(restart, cancel, &retried)
	r := collect(c.Connect(ctx, srv.URL), func(ev Event) bool {
		if string(ev.Data) == "2" {
			restart <- struct{}{}
		}
		return string(ev.Data) == "4"
	})
	if r.err != nil || strings.Join(r.data(), ",") != "1,2,3,4" {
		t.Fatalf("got events %q, err %v; want 1,2,3,4", r.data(), r.err)
	}
	if n.Load() != 2 || lastIDs[0] != "" || lastIDs[1] != "e2" && lastIDs[1] != "e3" {
		t.Fatalf("%d requests with Last-Event-ID %q, want 2: none, then e2 or e3", n.Load(), lastIDs)
	}
	if len(retried) != 1 || !errors.Is(retried[0], ErrRestarted) {
		t.Fatalf("OnRetry heard %v, want one error wrapping ErrRestarted", retried)
	}
}

// A restart from another goroutine ends a read that waits on a stalled
// connection, or a wait for an answer that never comes; restarts do not
// count against MaxRetries.
func TestClientRestartWhileBlocked(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(w http.ResponseWriter, flush func()) // the first three requests
	}{
		{"reading", func(w http.ResponseWriter, flush func()) {
			io.WriteString(w, ":\n") // the head, and nothing healthy
			flush()
		}},
		{"waiting for the answer", func(http.ResponseWriter, func()) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arrived := make(chan string, 4)
			srv, _ := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
				if n <= 3 {
					tc.serve(w, flush)
					arrived <- r.Header.Get("Last-Event-ID")
					<-r.Context().Done()
					return
				}
				arrived <- r.Header.Get("Last-Event-ID")
				io.WriteString(w, "data: ok\n\n")
			})
			ctx, cancel := testCtx(t)
			restart := make(chan struct{})
			var retried []error
			c := restartClient(restart, cancel, &retried)
			c.LastEventID = "seed"
			c.MaxRetries = 1
			go func() {
				for range 3 {
					select {
					case <-arrived:
					case <-ctx.Done():
						return
					}
					select {
					case restart <- struct{}{}:
					case <-ctx.Done():
						return
					}
				}
			}()
			r := collect(c.Connect(ctx, srv.URL), func(Event) bool { return true })
			if r.err != nil || strings.Join(r.data(), ",") != "ok" {
				t.Fatalf("got events %q, err %v (retried after %v)", r.data(), r.err, retried)
			}
			if len(retried) != 3 {
				t.Fatalf("OnRetry heard %v, want three restarts", retried)
			}
			for _, err := range retried {
				if !errors.Is(err, ErrRestarted) {
					t.Fatalf("OnRetry heard %v, want restarts", retried)
				}
			}
			if id := <-arrived; id != "seed" {
				t.Fatalf("the last request's Last-Event-ID is %q, want seed", id)
			}
		})
	}
}

// A restart cuts a backoff wait short.
func TestClientRestartWhileWaiting(t *testing.T) {
	var second atomic.Value
	srv, n := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		if n == 1 {
			io.WriteString(w, "retry: 3600000\nid: a\ndata: 1\n\n") // then wait an hour
			return
		}
		second.Store(r.Header.Get("Last-Event-ID"))
		io.WriteString(w, "data: 2\n\n")
	})
	ctx, cancel := testCtx(t)
	restart := make(chan struct{}, 1)
	var waits []time.Duration
	c := &Client{Restart: restart, OnRetry: func(_ error, wait time.Duration) {
		waits = append(waits, wait)
		time.AfterFunc(20*time.Millisecond, func() { restart <- struct{}{} }) // while the client waits
	}}
	r := collect(c.Connect(ctx, srv.URL), func(ev Event) bool { return string(ev.Data) == "2" })
	cancel()
	if r.err != nil || strings.Join(r.data(), ",") != "1,2" || n.Load() != 2 || second.Load() != "a" {
		t.Fatalf("got %q, err %v, after %d requests (the second with Last-Event-ID %q)", r.data(), r.err, n.Load(), second.Load())
	}
	if len(waits) != 1 || waits[0] < 30*time.Minute {
		t.Fatalf("waits %v, want one of the server's hour", waits)
	}
}

// A closed Restart channel restarts nothing: the stream goes on.
func TestClientRestartClosed(t *testing.T) {
	srv, n := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		io.WriteString(w, "data: 1\n\n")
		flush()
		<-r.Context().Done()
	})
	ctx, cancel := testCtx(t)
	restart := make(chan struct{})
	close(restart)
	var retried []error
	c := restartClient(restart, cancel, &retried)
	r := collect(c.Connect(ctx, srv.URL), func(Event) bool {
		time.AfterFunc(100*time.Millisecond, cancel)
		return false
	})
	if !errors.Is(r.err, context.Canceled) || strings.Join(r.data(), ",") != "1" || n.Load() != 1 || len(retried) != 0 {
		t.Fatalf("got %q, err %v, after %d requests, retried after %v; want one stream until the context ends", r.data(), r.err, n.Load(), retried)
	}
}
