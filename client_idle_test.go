package sse

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// This file tests Client.IdleTimeout: what its clock covers (the wait for
// the answer and for bytes) and what it does not (the caller's loop body).

// A server that accepts a request and never answers is dropped after
// IdleTimeout, like a stalled stream: the attempt fails, OnRetry hears of
// it, and the client reconnects.
func TestClientIdleTimeoutWaitingForAnswer(t *testing.T) {
	srv, n := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		if n == 1 {
			<-r.Context().Done() // no status line, no header
			return
		}
		io.WriteString(w, "data: ok\n\n")
		flush()
		<-r.Context().Done()
	})
	ctx, _ := testCtx(t)
	var retried []error
	c := fast()
	c.IdleTimeout = 200 * time.Millisecond
	c.OnRetry = func(err error, _ time.Duration) { retried = append(retried, err) }
	r := collect(c.Connect(ctx, srv.URL), func(Event) bool { return true })
	if r.err != nil || strings.Join(r.data(), ",") != "ok" || n.Load() != 2 {
		t.Fatalf("got %+v after %d requests, want ok on the second", r, n.Load())
	}
	if len(retried) != 1 || !strings.Contains(retried[0].Error(), "no answer for 200ms") {
		t.Fatalf("retried after %v, want one idle timeout waiting for the answer", retried)
	}
}

// Such attempts count as failed ones for MaxRetries.
func TestClientIdleTimeoutWaitingForAnswerFails(t *testing.T) {
	srv, n := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		<-r.Context().Done()
	})
	ctx, _ := testCtx(t)
	c := fast()
	c.IdleTimeout = 50 * time.Millisecond
	c.MaxRetries = 2
	retries := 0
	c.OnRetry = func(error, time.Duration) { retries++ }
	r := collect(c.Connect(ctx, srv.URL), nil)
	if !errors.Is(r.err, ErrRetriesExhausted) || !strings.Contains(r.err.Error(), "no answer for 50ms") {
		t.Fatalf("err %v, want retries exhausted after idle timeouts", r.err)
	}
	if retries != 2 || n.Load() != 3 {
		t.Fatalf("%d retries, %d requests; want 2, 3", retries, n.Load())
	}
}

// The idle clock times the network only: a loop body that holds an event
// longer than IdleTimeout, while the server's heartbeats keep coming, does
// not get the connection dropped.
func TestClientIdleTimeoutIgnoresSlowConsumer(t *testing.T) {
	srv, n := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		io.WriteString(w, "data: 1\n\n")
		flush()
		for range 30 { // 1.5 s of heartbeats every 50 ms
			select {
			case <-time.After(50 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, ":\n")
			flush()
		}
		io.WriteString(w, "data: 2\n\n")
		flush()
		<-r.Context().Done()
	})
	ctx, _ := testCtx(t)
	var retried []error
	c := fast()
	c.IdleTimeout = 400 * time.Millisecond
	c.OnRetry = func(err error, _ time.Duration) { retried = append(retried, err) }
	r := collect(c.Connect(ctx, srv.URL), func(ev Event) bool {
		if string(ev.Data) == "1" {
			time.Sleep(time.Second) // reloading state, say
		}
		return string(ev.Data) == "2"
	})
	if r.err != nil || strings.Join(r.data(), ",") != "1,2" {
		t.Fatalf("got events %q, err %v; want 1,2", r.data(), r.err)
	}
	if len(retried) != 0 || n.Load() != 1 {
		t.Fatalf("%d requests, retried after %v: a slow loop body dropped a live connection", n.Load(), retried)
	}
}
