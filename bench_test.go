package sse

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Micro-benchmarks of the hot paths. Run with
//
//	go test -run '^$' -bench . -benchmem
//
// and compare runs with benchstat.

func BenchmarkAppendEvent(b *testing.B) {
	for _, size := range []int{64, 2048} {
		ev := Event{Type: "points", Data: bytes.Repeat([]byte("x"), size)}
		b.Run(fmt.Sprint("data=", size), func(b *testing.B) {
			buf := make([]byte, 0, size+64)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = AppendEvent(buf[:0], ev)
			}
		})
	}
	b.Run("multiline", func(b *testing.B) {
		ev := Event{ID: "k3f9x2ab-42", Data: []byte(strings.Repeat("a line of text\r\n", 16))}
		buf := make([]byte, 0, 512)
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = AppendEvent(buf[:0], ev)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	var stream []byte
	for i := range 1000 {
		stream, _ = AppendEvent(stream, Event{ID: fmt.Sprint(i), Type: "points", Data: bytes.Repeat([]byte("y"), 64)})
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		d := NewDecoder(bytes.NewReader(stream))
		for {
			if _, err := d.Decode(); err != nil {
				break
			}
		}
	}
}

// discardWriter is a ResponseWriter that flushes into nothing: streams in
// memory, so a benchmark measures the hub, not the network.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

func (d *discardWriter) SetWriteDeadline(time.Time) error { return nil }

// memoryStreams opens n in-memory streams on h and returns a function that
// ends them and waits for their handlers.
func memoryStreams(b *testing.B, h *Hub, n int) func() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
			h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
		}()
	}
	waitStreams(b, h, n)
	return func() { cancel(); wg.Wait() }
}

// BenchmarkBroadcast measures one Broadcast of a 64-byte event to n
// in-memory streams, including the time their writers take to drain it:
// ns/op per broadcast, ns/delivery and allocs/recipient per stream.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1, 100, 10_000} {
		b.Run(fmt.Sprint("streams=", n), func(b *testing.B) {
			h, err := NewHub(Config{Heartbeat: -1, QueueBytes: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			stop := memoryStreams(b, h, n)
			defer stop()
			ev := Event{Type: "points", Data: bytes.Repeat([]byte("z"), 64)}
			written := h.Stats().Written
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if _, err := h.Broadcast(ev); err != nil {
					b.Fatal(err)
				}
			}
			// Count the writers' work too: wait until every frame is out.
			want := written + uint64(b.N)*uint64(n)
			for h.Stats().Written < want {
				runtime.Gosched()
			}
			elapsed := time.Since(start)
			b.StopTimer()
			runtime.ReadMemStats(&after)
			deliveries := float64(b.N) * float64(n)
			b.ReportMetric(float64(elapsed.Nanoseconds())/deliveries, "ns/delivery")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/deliveries, "allocs/recipient")
		})
	}
}

// BenchmarkEnqueueConflated measures queuing a keyed event to a stream that
// already holds one value for each of n keys: the conflation scan (short
// queues) or index look-up (long ones).
func BenchmarkEnqueueConflated(b *testing.B) {
	for _, n := range []int{16, 64, 1000} {
		b.Run(fmt.Sprint("keys=", n), func(b *testing.B) {
			h, err := NewHub(Config{})
			if err != nil {
				b.Fatal(err)
			}
			s := newStream(h, StreamInfo{ClientID: "x"}, nil)
			msgs := make([]*envelope, n)
			for i := range msgs {
				msgs[i] = newEnvelope(&Event{Key: fmt.Sprint("point-", i), Data: []byte("21.5")}, Target{})
				msgs[i].build()
				s.enqueue(msgs[i])
			}
			// Keys in random order: in a fixed cycle the key updated next
			// would always be the oldest, first in the queue.
			rng := rand.New(rand.NewPCG(1, 1))
			order := make([]*envelope, 4096)
			for i := range order {
				order[i] = msgs[rng.IntN(n)]
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				s.enqueue(order[i%len(order)])
				i++
			}
			if s.isClosed() || len(s.queue)-int(s.holes) != n {
				b.Fatalf("queue holds %d frames, closed %v", len(s.queue)-int(s.holes), s.isClosed())
			}
		})
	}
}
