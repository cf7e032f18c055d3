package sse

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// copyingBroker is the in-memory broker used as any other Broker would be:
// the hub gets a private copy of every message it replays or snapshots.
// It counts the messages it has handed the hub.
type copyingBroker struct {
	*memoryBroker
	handed atomic.Int64
}

func (b *copyingBroker) Replay(ctx context.Context, after, until string, to []Target, fn func(*Message) bool) (bool, string, error) {
	return b.memoryBroker.Replay(ctx, after, until, to, func(m *Message) bool {
		b.handed.Add(1)
		return fn(m)
	})
}

func (b *copyingBroker) Snapshot(ctx context.Context, until string, to []Target, fn func(*Message) bool) error {
	return b.memoryBroker.Snapshot(ctx, until, to, func(m *Message) bool {
		b.handed.Add(1)
		return fn(m)
	})
}

// stalledStart opens a stream on srv with the given Last-Event-ID (none if
// empty) over a connection that never reads.
func stalledStart(t *testing.T, url, last string) {
	t.Helper()
	addr := strings.TrimPrefix(url, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.(*net.TCPConn).SetReadBuffer(1024); err != nil {
		t.Fatal(err)
	}
	header := ""
	if last != "" {
		header = "Last-Event-ID: " + last + "\r\n"
	}
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n%s\r\n", addr, header)
}

// A stream that starts with a long replay or a large snapshot, from a
// Broker whose messages are private copies, holds at most a page of them
// however long its start: a client that stops reading leaves the rest
// unread in the Broker, not in the hub's memory.
func TestStartHoldsAPageAtMost(t *testing.T) {
	const n, size = 4000, 1 << 10 // 4 MiB of history, or of state
	body := strings.Repeat("x", size)
	pageFrames := int64(startPage/size) + 2
	for _, tc := range []struct {
		name string
		ev   func(i int) Event
		last func(first string) string
	}{
		{"replay", func(i int) Event { return Event{Data: []byte(body)} }, func(first string) string { return first }},
		{"snapshot", func(i int) Event { return Event{Key: fmt.Sprint("k", i), Data: []byte(body)} }, func(string) string { return "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &copyingBroker{memoryBroker: newMemoryBroker(2*n, 2*n)}
			b.maxBytes, b.keys.maxBytes = 64<<20, 64<<20
			h, err := NewHub(testConfig(Config{Broker: b, Heartbeat: -1, WriteTimeout: time.Minute}))
			if err != nil {
				t.Fatal(err)
			}
			srv := smallBufferServer(t, h)
			t.Cleanup(h.Close)
			first := ""
			for i := range n {
				if _, err := h.Broadcast(tc.ev(i)); err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					first = *h.lastPos.Load()
				}
			}
			stalledStart(t, srv.URL, tc.last(first))
			// Wait until the stream is stuck: the hub has stopped taking
			// messages from the Broker.
			prev := int64(-1)
			for stable := 0; stable < 10; {
				time.Sleep(20 * time.Millisecond)
				if cur := b.handed.Load(); cur == prev && cur > 0 {
					stable++
				} else {
					prev, stable = cur, 0
				}
			}
			held := b.handed.Load() - int64(h.Stats().Written)
			if held > pageFrames {
				t.Fatalf("the stalled stream holds %d of the %d messages it was handed (%d written), want at most a page (%d)",
					held, b.handed.Load(), h.Stats().Written, pageFrames)
			}
			if b.handed.Load() >= n {
				t.Fatalf("the Broker handed all %d messages to a stream that reads nothing", b.handed.Load())
			}
		})
	}
}
