package sse

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// This file tests Client.Method and Client.Body: a stream opened with a
// request body (GraphQL over SSE, AI streaming APIs) sends that body again on
// every reconnection.

// Each reconnection sends the same method and body, with the resume point.
func TestClientMethodAndBodyOnEveryReconnect(t *testing.T) {
	const query = `{"query":"subscription { ticks }"}`
	type request struct{ method, path, body, ctype, lastID string }
	for _, tc := range []struct {
		name string
		path string // redirected with 307 when it is /old
		body func() io.Reader
	}{
		{"sized body", "/stream", func() io.Reader { return strings.NewReader(query) }},
		{"streamed body", "/stream", func() io.Reader { return struct{ io.Reader }{strings.NewReader(query)} }},
		{"307 redirect", "/old", func() io.Reader { return struct{ io.Reader }{strings.NewReader(query)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []request
			var streams atomic.Int64
			srv, _ := streamHandler(t, func(_ int, w http.ResponseWriter, r *http.Request, flush func()) {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					t.Errorf("reading the body: %v", err)
				}
				mu.Lock()
				got = append(got, request{r.Method, r.URL.Path, string(body), r.Header.Get("Content-Type"), r.Header.Get("Last-Event-ID")})
				mu.Unlock()
				if r.URL.Path == "/old" {
					w.Header().Set("Location", "/stream")
					w.WriteHeader(http.StatusTemporaryRedirect)
					return
				}
				n := streams.Add(1)
				if n > 3 {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				fmt.Fprintf(w, "id: e%d\ndata: %d\n\n", n, n) // then the stream ends: reconnect
			})
			ctx, _ := testCtx(t)
			c := fast()
			c.Method = http.MethodPost
			c.Header = http.Header{"Content-Type": {"application/json"}}
			var calls atomic.Int64
			c.Body = func() (io.Reader, error) {
				calls.Add(1)
				return tc.body(), nil
			}
			r := collect(c.Connect(ctx, srv.URL+tc.path), nil)
			if r.err != nil || strings.Join(r.data(), ",") != "1,2,3" {
				t.Fatalf("got %+v, want 1,2,3 and a clean end", r)
			}
			var want []request
			for _, id := range []string{"", "e1", "e2", "e3"} {
				if tc.path == "/old" {
					want = append(want, request{"POST", "/old", query, "application/json", id})
				}
				want = append(want, request{"POST", "/stream", query, "application/json", id})
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("requests:\n got  %q\n want %q", got, want)
			}
			if calls.Load() != int64(len(want)) {
				t.Fatalf("Body called %d times for %d requests", calls.Load(), len(want))
			}
		})
	}
}

// An error from Body ends the stream with that error, before any request;
// so does a method net/http cannot send.
func TestClientBodyAndMethodErrors(t *testing.T) {
	srv, n := streamHandler(t, func(int, http.ResponseWriter, *http.Request, func()) {})
	ctx, _ := testCtx(t)
	boom := errors.New("query not ready")
	c := fast()
	c.Method = http.MethodPost
	c.Body = func() (io.Reader, error) { return nil, boom }
	if r := collect(c.Connect(ctx, srv.URL), nil); !errors.Is(r.err, boom) || !strings.Contains(r.err.Error(), "POST") {
		t.Fatalf("err %v, want one naming POST and wrapping %v", r.err, boom)
	}
	c = fast()
	c.Method = "NOT A METHOD"
	if r := collect(c.Connect(ctx, srv.URL), nil); r.err == nil || !strings.Contains(r.err.Error(), "invalid method") {
		t.Fatalf("err %v, want an invalid method", r.err)
	}
	if n.Load() != 0 {
		t.Fatalf("%d requests sent", n.Load())
	}
}

// A ResponseError names the method that was refused.
func TestClientResponseErrorNamesMethod(t *testing.T) {
	srv, _ := streamHandler(t, func(_ int, w http.ResponseWriter, r *http.Request, _ func()) {
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
	})
	ctx, _ := testCtx(t)
	c := fast()
	c.Method = "REPORT"
	var re *ResponseError
	if r := collect(c.Connect(ctx, srv.URL), nil); !errors.As(r.err, &re) || re.Method != "REPORT" || !strings.HasPrefix(re.Error(), "sse: REPORT "+srv.URL+": 405") {
		t.Fatalf("err %v, want a *ResponseError for REPORT", r.err)
	}
}
