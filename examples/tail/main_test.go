package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// syncBuffer is a bytes.Buffer that run may write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// tail runs the command on args (URL last) in the background.
func tail(t *testing.T, ctx context.Context, args ...string) (stdout, stderr *syncBuffer, code <-chan int) {
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	c := make(chan int, 1)
	go func() { c <- run(ctx, args, stdout, stderr) }()
	return stdout, stderr, c
}

func exitCode(t *testing.T, code <-chan int) int {
	t.Helper()
	select {
	case c := <-code:
		return c
	case <-time.After(20 * time.Second):
		t.Fatal("tail did not exit")
		return -1
	}
}

// tail prints a hub's events as an event stream, with the headers it was
// given, reports a reset on standard error, follows the stream across a
// reconnect and exits with 0 when interrupted.
func TestTailFollowsAHub(t *testing.T) {
	hub, err := sse.NewHub(sse.Config{
		Retry: time.Millisecond,
		ClientID: func(r *http.Request) (string, error) {
			if r.Header.Get("Authorization") != "Bearer t0k3n" {
				return "", &sse.StatusError{Code: http.StatusUnauthorized}
			}
			return "me", nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	srv := httptest.NewServer(hub)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// An id this hub never wrote: the stream starts with a reset.
	stdout, stderr, code := tail(t, ctx, "-H", "Authorization: Bearer t0k3n", "-last-event-id", "not-ours", srv.URL)
	waitFor(t, "the reset", func() bool { return strings.Contains(stderr.String(), "stream reset (unknown)") })
	waitFor(t, "the stream", func() bool { return hub.Stats().Streams == 1 })
	hub.Broadcast(sse.Event{Type: "greeting", Data: []byte("hello\nworld")})
	waitFor(t, "the event", func() bool { return strings.Contains(stdout.String(), "world") })

	// Cut the stream: tail reconnects and resumes.
	hub.Disconnect("me")
	hub.Broadcast(sse.Event{Data: []byte("after")})
	waitFor(t, "the event after the reconnect", func() bool { return strings.Contains(stdout.String(), "data: after") })
	cancel()
	if c := exitCode(t, code); c != 0 {
		t.Fatalf("exit code %d, stderr %q", c, stderr.String())
	}

	// The output is an event stream: decode it back.
	d := sse.NewDecoder(strings.NewReader(stdout.String()))
	var got []string
	for {
		ev, err := d.Decode()
		if err != nil {
			break
		}
		if ev.ID == "" {
			t.Errorf("event %+v printed without its id", ev)
		}
		got = append(got, ev.Type+"|"+string(ev.Data))
	}
	if strings.Join(got, ",") != "greeting|hello\nworld,|after" {
		t.Fatalf("decoded %q from %q", got, stdout.String())
	}
	if !strings.Contains(stderr.String(), "reconnecting in") {
		t.Errorf("stderr %q does not report the reconnection", stderr.String())
	}
}

// An error answer exits with 1, a 204 with 0, bad arguments with 2.
func TestTailExits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gone":
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "no such stream", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{srv.URL + "/missing"}, 1, "404 Not Found: no such stream"},
		{[]string{srv.URL + "/gone"}, 0, "for good (204 No Content)"},
		{nil, 2, "usage: tail"},
		{[]string{"-H", "no colon", srv.URL}, 2, `"no colon" is not`},
		{[]string{"ftp://" + strings.TrimPrefix(srv.URL, "http://")}, 2, "is not an http:// or https:// URL"},
	} {
		_, stderr, code := tail(t, context.Background(), tc.args...)
		if c := exitCode(t, code); c != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("tail %q: exit %d, stderr %q; want %d and %q", tc.args, c, stderr.String(), tc.code, tc.stderr)
		}
	}
}

// An event type holding NUL, which the decoder keeps but an event stream
// cannot carry, is printed escaped, with a warning, and tail goes on.
func TestTailEscapesNUL(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 1 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "retry: 1\nid: 1\nevent: a\x00b\ndata: x\n\ndata: after\n\n")
	}))
	defer srv.Close()
	stdout, stderr, code := tail(t, context.Background(), srv.URL)
	if c := exitCode(t, code); c != 0 {
		t.Fatalf("exit code %d, stderr %q", c, stderr.String())
	}
	if !strings.Contains(stderr.String(), `event type "a\x00b"`) {
		t.Errorf("stderr %q does not name the type, quoted", stderr.String())
	}
	d := sse.NewDecoder(strings.NewReader(stdout.String()))
	var got []string
	for {
		ev, err := d.Decode()
		if err != nil {
			break
		}
		got = append(got, ev.ID+"|"+ev.Type+"|"+string(ev.Data))
	}
	if want := `1|a\x00b|x,1||after`; strings.Join(got, ",") != want {
		t.Fatalf("decoded %q from %q, want %q", got, stdout.String(), want)
	}
}

// Errors no retry mends are named on standard error at every retry, and
// tail gives up: after a few retries by default for a refused connection
// (the server may be starting), at once for an https URL whose server
// speaks plain HTTP.
func TestTailGivesUp(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	plain := srv.URL
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	defer srv.Close()
	for _, tc := range []struct {
		name, url, hint string
		retries         int
	}{
		{"refused", refused, "nothing listens at " + l.Addr().String(), defaultMaxRetries},
		{"https to plain http", "https" + strings.TrimPrefix(plain, "http"), "the server speaks plain HTTP", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := tail(t, context.Background(), "-retry", "1ms", tc.url)
			c := exitCode(t, code)
			out := stderr.String()
			if c != 1 || !strings.Contains(out, tc.hint) || !strings.Contains(out, "giving up") {
				t.Fatalf("exit %d, stderr %q; want 1, %q and giving up", c, out, tc.hint)
			}
			if got := strings.Count(out, "reconnecting in"); got != tc.retries {
				t.Fatalf("%d reconnections in %q, want %d", got, out, tc.retries)
			}
			if got := strings.Count(out, tc.hint); got != tc.retries+1 {
				t.Fatalf("the hint appears %d times in %q, want at every failure (%d)", got, out, tc.retries+1)
			}
		})
	}
}
