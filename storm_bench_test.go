package sse

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// liveWriter is a discarding ResponseWriter that reports when its stream
// has gone live: when the PositionEvent (or ResetEvent with an id) that
// ends a reset stream's start has been written.
type liveWriter struct {
	discardWriter
	live func()
	done atomic.Bool
}

func (w *liveWriter) Write(p []byte) (int, error) {
	if !w.done.Load() && endsWithPosition(p) {
		w.done.Store(true)
		w.live()
	}
	return len(p), nil
}

// endsWithPosition reports whether p's last block gives the client a
// position: an id line and a PositionEvent or ResetEvent.
func endsWithPosition(p []byte) bool {
	body, ok := bytes.CutSuffix(p, []byte("\n\n"))
	if !ok {
		return false
	}
	if i := bytes.LastIndex(body, []byte("\n\n")); i >= 0 {
		body = body[i+2:]
	}
	return bytes.HasPrefix(body, []byte("id: ")) &&
		(bytes.Contains(body, []byte("\nevent: "+PositionEvent+"\n")) || bytes.Contains(body, []byte("\nevent: "+ResetEvent+"\n")))
}

// BenchmarkReconnectStorm measures a restart's reconnect storm: 10,000
// streams reconnect at once with Last-Event-IDs the hub does not know (so
// each gets a reset and a snapshot), while 10,000 states are kept (10 keys
// on each of 1,000 topics; a stream follows 10 topics) and a publisher
// publishes a keyed event every 200 µs. It reports the median and p99 of
// a publish's latency during the storm, and the time until every stream
// has written its start.
func BenchmarkReconnectStorm(b *testing.B) {
	const streams, topics, keysPerTopic, topicsPerStream = 10_000, 1_000, 10, 10
	var p50s, p99s, lives []float64
	for range b.N {
		h, err := NewHub(Config{
			Heartbeat: -1,
			Topics:    func(r *http.Request) ([]string, error) { return strings.Split(r.URL.Query().Get("t"), ","), nil },
		})
		if err != nil {
			b.Fatal(err)
		}
		for i := range topics * keysPerTopic {
			h.Publish(fmt.Sprint("t", i%topics), Event{Key: fmt.Sprint("k", i/topics), Data: []byte("21.5")})
		}
		rng := rand.New(rand.NewPCG(1, 2))
		ctx, cancel := context.WithCancel(context.Background())
		var live sync.WaitGroup
		live.Add(streams)
		reqs := make([]*http.Request, streams)
		for i := range reqs {
			var ts []string
			for range topicsPerStream {
				ts = append(ts, fmt.Sprint("t", rng.IntN(topics)))
			}
			reqs[i] = httptest.NewRequest(http.MethodGet, "/?t="+strings.Join(ts, ","), nil).WithContext(ctx)
			reqs[i].Header.Set("Last-Event-ID", fmt.Sprint("gone-", i))
		}

		stop := make(chan struct{})
		latencies := make(chan []time.Duration, 1)
		go func() {
			var lat []time.Duration
			for i := 0; ; i++ {
				select {
				case <-stop:
					latencies <- lat
					return
				case <-time.After(200 * time.Microsecond):
				}
				t0 := time.Now()
				h.Publish(fmt.Sprint("t", i%topics), Event{Key: fmt.Sprint("k", i%keysPerTopic), Data: []byte("22.5")})
				lat = append(lat, time.Since(t0))
			}
		}()
		var handlers sync.WaitGroup
		start := time.Now()
		for _, r := range reqs {
			handlers.Add(1)
			go func() {
				defer handlers.Done()
				h.ServeHTTP(&liveWriter{discardWriter: discardWriter{h: http.Header{}}, live: live.Done}, r)
			}()
		}
		live.Wait()
		lives = append(lives, float64(time.Since(start).Milliseconds()))
		close(stop)
		lat := <-latencies
		cancel()
		handlers.Wait()
		h.Close()
		slices.Sort(lat)
		p50s = append(p50s, float64(lat[len(lat)/2].Microseconds()))
		p99s = append(p99s, float64(lat[len(lat)*99/100].Microseconds()))
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	b.ReportMetric(median(p50s), "publish-p50-µs")
	b.ReportMetric(median(p99s), "publish-p99-µs")
	b.ReportMetric(median(lives), "ms-until-all-live")
	b.ReportMetric(0, "ns/op")
}
