package sse

import (
	"fmt"
	"strings"
	"testing"
)

// queueOf lists the frames queued on s.
func queueOf(s *stream) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.queue {
		out = append(out, string(m.Body[len("data: "):len(m.Body)-2]))
	}
	return strings.Join(out, ",")
}

func testStream(t *testing.T, queueBytes int) *stream {
	t.Helper()
	h, err := NewHub(testConfig(Config{QueueBytes: queueBytes}))
	if err != nil {
		t.Fatal(err)
	}
	return newStream(h, StreamInfo{ClientID: "x"}, nil)
}

func keyed(key, d string) *Message {
	m := newMessage(&Event{Key: key, Data: []byte(d)}, Target{})
	m.buildFrame()
	return m
}

// A keyed event replaces the queued one with the same key, and takes its
// place at the end, so ids stay in order.
func TestConflation(t *testing.T) {
	s := testStream(t, 1<<20)
	for _, m := range []*Message{keyed("a", "a1"), keyed("b", "b1"), keyed("", "log1"), keyed("a", "a2"), keyed("", "log2"), keyed("b", "b2"), keyed("a", "a3")} {
		if !s.enqueue(m) {
			t.Fatal("enqueue refused")
		}
	}
	if got, want := queueOf(s), "log1,log2,b2,a3"; got != want {
		t.Fatalf("queue %s, want %s", got, want)
	}
	var size int
	for _, m := range s.queue {
		size += len(m.frame)
	}
	if s.bytes != size {
		t.Fatalf("byte count %d, frames hold %d", s.bytes, size)
	}
}

// Replacing a queued event never overflows the queue: a telemetry stream
// that falls behind gets the newest value per key, not a disconnect.
func TestConflationKeepsABehindStreamAlive(t *testing.T) {
	one := len(keyed("p0", "v0000").frame)
	s := testStream(t, 4*one)
	for i := range 1000 {
		if !s.enqueue(keyed(fmt.Sprint("p", i%4), fmt.Sprintf("v%04d", i))) {
			t.Fatalf("event %d: the stream was ended", i)
		}
	}
	if got, want := queueOf(s), "v0996,v0997,v0998,v0999"; got != want {
		t.Fatalf("queue %s, want %s", got, want)
	}
	// A fifth key does not fit: the stream is ended as slow.
	if s.enqueue(keyed("p4", "v1000")) {
		t.Fatal("an overflowing event was queued")
	}
	if batch, closed, reason := s.take(); !closed || reason != ReasonSlow || batch != nil {
		t.Fatalf("take = %d frames, %v, %v; want nothing, closed as slow", len(batch), closed, reason)
	}
	if s.hub.Stats().SlowDisconnects != 1 {
		t.Fatal("the slow disconnect was not counted")
	}
	if s.enqueue(keyed("p0", "late")) {
		t.Fatal("a closed stream accepted an event")
	}
}

// A stream ended for any other reason still hands over what was queued, so
// Shutdown and Disconnect deliver it.
func TestTakeAfterCloseDrains(t *testing.T) {
	s := testStream(t, 1<<20)
	s.enqueue(keyed("", "queued"))
	s.close(ReasonShutdown)
	if reason := s.close(ReasonClientGone); reason != ReasonShutdown {
		t.Fatalf("the first reason must stick, got %v", reason)
	}
	batch, closed, reason := s.take()
	if len(batch) != 1 || !closed || reason != ReasonShutdown {
		t.Fatalf("take = %d frames, %v, %v", len(batch), closed, reason)
	}
}
