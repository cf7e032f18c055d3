package sse

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// This file tests Client.OnComment: comment lines, a server's heartbeats
// among them, reach the caller as proof of life.

// Comments reach OnComment in stream order with the events, across a
// reconnection.
func TestClientOnComment(t *testing.T) {
	srv, _ := streamHandler(t, func(n int, w http.ResponseWriter, r *http.Request, flush func()) {
		switch n {
		case 1:
			io.WriteString(w, ": hello\ndata: 1\n\n:\n")
		case 2:
			io.WriteString(w, ":again\ndata: 2\n\n")
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	ctx, _ := testCtx(t)
	var log []string
	c := fast()
	c.OnComment = func(text string) { log = append(log, "comment "+text) }
	for ev, err := range c.Connect(ctx, srv.URL) {
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, "event "+string(ev.Data))
	}
	want := "comment hello|event 1|comment |comment again|event 2"
	if got := strings.Join(log, "|"); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A hub's heartbeats reach OnComment while no event comes.
func TestClientOnCommentHubHeartbeats(t *testing.T) {
	_, srv := newTestHub(t, Config{Heartbeat: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var beats atomic.Int64
	c := fast()
	c.OnComment = func(text string) {
		if text != "" {
			t.Errorf("heartbeat %q, want an empty comment", text)
		}
		if beats.Add(1) == 3 {
			cancel()
		}
	}
	done := make(chan result, 1)
	go func() { done <- collect(c.Connect(ctx, srv.URL), nil) }()
	select {
	case r := <-done:
		if !errors.Is(r.err, context.Canceled) || len(r.events) != 0 {
			t.Fatalf("got %+v after %d heartbeats", r, beats.Load())
		}
	case <-time.After(testTimeout):
		t.Fatalf("%d heartbeats heard in %v, want 3", beats.Load(), testTimeout)
	}
}
