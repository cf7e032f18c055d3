package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// inCI reports whether the tests run in CI, where a missing redis-server
// is a failure rather than a reason to skip.
func inCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "0" && v != "false"
}

// testRedis starts the demo's redis-server for one test.
func testRedis(t *testing.T) string {
	t.Helper()
	r, err := startRedis(context.Background())
	if errors.Is(err, errNoRedis) && !inCI() {
		t.Skipf("skipped: %v", err)
	}
	if err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	t.Cleanup(r.Stop)
	return r.Addr
}

// TestStreamMovesBetweenNodes follows the demo as its page does: a client
// that reconnects with its Last-Event-ID whenever the front ends its
// stream, which happens every 300 ms, each time on the other node. Every
// tick published meanwhile arrives once, in order, without a reset, and
// both nodes serve the client several times.
func TestStreamMovesBetweenNodes(t *testing.T) {
	c, err := StartCluster(Options{
		Redis: testRedis(t), Every: 10 * time.Millisecond, Hold: 300 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()

	var last int64 // the last tick received
	var ticks int  // ticks received
	var nodes []string
	lastID := ""
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, c.URL+"/events?client=go-test", nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET /events: %v", err)
		}
		d := sse.NewDecoder(resp.Body)
		d.SetLastEventID(lastID)
		for {
			ev, err := d.Decode()
			if err != nil {
				break // the front ended the stream: reconnect, as a browser does
			}
			switch ev.Type {
			case EventNode:
				nodes = append(nodes, string(ev.Data))
			case EventTick:
				n, _ := strconv.ParseInt(string(ev.Data), 10, 64)
				if last != 0 && n != last+1 {
					t.Fatalf("tick %d after tick %d (on node %s, resumed from %q)", n, last, nodes[len(nodes)-1], lastID)
				}
				last = n
				ticks++
			case sse.ResetEvent:
				t.Fatalf("reset (%s) after tick %d, resuming from %q", ev.Data, last, lastID)
			}
		}
		resp.Body.Close()
		lastID = d.LastEventID()
	}
	moves := 0
	for i := 1; i < len(nodes); i++ {
		if nodes[i] != nodes[i-1] {
			moves++
		}
	}
	t.Logf("%d ticks, last %d, %d streams, %d node changes", ticks, last, len(nodes), moves)
	if moves < 4 || ticks < 100 {
		t.Fatalf("%d ticks over %d node changes (%v): the test did not exercise the move", ticks, moves, nodes)
	}
	for _, n := range c.Nodes {
		if st := n.hub.Stats(); n.served.Load() < 2 || st.Resets != 0 {
			t.Errorf("node %s: %d streams, stats %+v", n.name, n.served.Load(), st)
		}
	}
}
