package sse

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

// queueOf lists the frames queued on s.
func queueOf(s *stream) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.queue {
		if m != nil { // a hole left by conflation
			out = append(out, string(m.Body[len("data: "):len(m.Body)-2]))
		}
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

func keyed(key, d string) *envelope {
	m := newEnvelope(&Event{Key: key, Data: []byte(d)}, Target{})
	m.build()
	return m
}

// A keyed event replaces the queued one with the same key, and takes its
// place at the end, so ids stay in order.
func TestConflation(t *testing.T) {
	s := testStream(t, 1<<20)
	for _, m := range []*envelope{keyed("a", "a1"), keyed("b", "b1"), keyed("", "log1"), keyed("a", "a2"), keyed("", "log2"), keyed("b", "b2"), keyed("a", "a3")} {
		if !s.enqueue(m) {
			t.Fatal("enqueue refused")
		}
	}
	if got, want := queueOf(s), "log1,log2,b2,a3"; got != want {
		t.Fatalf("queue %s, want %s", got, want)
	}
	checkBytes(t, s)
}

// checkBytes fails the test unless s's byte count is what its queue holds.
func checkBytes(t *testing.T, s *stream) {
	t.Helper()
	var size int
	for _, m := range s.queue {
		if m != nil {
			size += len(m.frame)
		}
	}
	if s.bytes != size {
		t.Fatalf("byte count %d, frames hold %d", s.bytes, size)
	}
}

// keyedTo is keyed for an audience.
func keyedTo(to Target, key, d string) *envelope {
	m := newEnvelope(&Event{Key: key, Data: []byte(d)}, to)
	m.build()
	return m
}

// A state is a Key within its audience: a Send with Key "a" leaves the
// queued broadcast with Key "a" alone, and neither replaces a topic's.
func TestConflationKeepsAudiencesApart(t *testing.T) {
	s := testStream(t, 1<<20)
	all, ann, topic := Target{Kind: ToEveryone}, Target{Kind: ToClient, Name: "x"}, Target{Kind: ToTopic, Name: "t"}
	for _, m := range []*envelope{keyedTo(all, "a", "all1"), keyedTo(ann, "a", "ann1"), keyedTo(topic, "a", "t1"), keyedTo(ann, "a", "ann2"), keyedTo(all, "a", "all2")} {
		s.enqueue(m)
	}
	if got, want := queueOf(s), "t1,ann2,all2"; got != want {
		t.Fatalf("queue %s, want %s", got, want)
	}
	checkBytes(t, s)
}

// A long queue is conflated through an index, with holes closed up later;
// what it holds is exactly what a plain scan of the queue would leave.
func TestConflationOfLongQueues(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := testStream(t, 1<<30)
	type entry struct{ to, key, data string }
	var model []entry // what the queue must hold, kept by the simplest rule
	for i := range 20_000 {
		to := Target{Kind: ToTopic, Name: fmt.Sprint("t", rng.IntN(3))}
		key := ""
		if rng.IntN(4) > 0 {
			key = fmt.Sprint("k", rng.IntN(40))
		}
		d := fmt.Sprint("v", i)
		if key != "" {
			for j, e := range model {
				if e.to == to.Name && e.key == key {
					model = append(model[:j], model[j+1:]...)
					break
				}
			}
		}
		model = append(model, entry{to.Name, key, d})
		s.enqueue(keyedTo(to, key, d))
		if rng.IntN(500) == 0 || i == 19_999 {
			var want []string
			for _, e := range model {
				want = append(want, e.data)
			}
			if got := queueOf(s); got != strings.Join(want, ",") {
				t.Fatalf("after %d events the queue holds\n%s\nwant\n%s", i+1, got, strings.Join(want, ","))
			}
			checkBytes(t, s)
			if rng.IntN(2) == 0 {
				batch, _, _ := s.take()
				if len(batch) != len(model) {
					t.Fatalf("take handed over %d frames, want %d", len(batch), len(model))
				}
				for _, m := range batch {
					if m == nil {
						t.Fatal("take handed over a hole")
					}
				}
				model = model[:0]
			}
		}
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

// testMessage encodes an event as a Broker receives it from a hub.
func testMessage(e *Event, to Target) *Message {
	return &newEnvelope(e, to).Message
}

// A stream's state is one allocation of a size class no larger than 320
// bytes: with very many idle streams, every field counts (see the README's
// "Many idle streams"). Move what only some streams need out of line
// rather than grow it.
func TestStreamSize(t *testing.T) {
	if size := unsafe.Sizeof(stream{}); size > 320 {
		t.Fatalf("a stream takes %d bytes, more than 320", size)
	}
}
