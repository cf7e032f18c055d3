package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkLatency measures, at 100 SSE clients and a 100 ms change rate
// (each change at a random point of its 100 ms slot, ±50 ms),
// the time from a value change in the simulator (the sample's source
// timestamp) to the SSE frame decoded by a client: end to end (p50-ms,
// p99-ms), and the hub's part alone, from the reader handing the value to
// the dashboard (hub-p50-ms, hub-p99-ms). One iteration is one 100 ms
// change; run it for a while:
//
//	go test -run '^$' -bench Latency -benchtime 300x
//
// The OPC UA publishing interval bounds the end-to-end figure: the server
// sends the changes of each interval at its end, so a change waits half an
// interval on average. The two sub-benchmarks show it at 100 ms (the
// default) and 10 ms.
func BenchmarkLatency(b *testing.B) {
	for _, iv := range []time.Duration{100 * time.Millisecond, 10 * time.Millisecond} {
		b.Run(fmt.Sprintf("interval=%v", iv), func(b *testing.B) { benchLatency(b, iv) })
	}
}

const (
	benchClients = 100
	benchRate    = 100 * time.Millisecond
)

// handoffSink stamps the moment each sample reaches the dashboard.
type handoffSink struct {
	*Dashboard
	mu sync.Mutex
	at map[string]time.Time // by pointID + updateAt
}

func (h *handoffSink) Update(batch []Sample) {
	now := time.Now()
	h.mu.Lock()
	for _, s := range batch {
		h.at[sampleKey(s)] = now
	}
	h.mu.Unlock()
	h.Dashboard.Update(batch)
}

func (h *handoffSink) handedAt(s Sample) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.at[sampleKey(s)]
	return t, ok
}

func sampleKey(s Sample) string { return s.PointID + "@" + s.UpdateAt.Format(stampLayout) }

func benchLatency(b *testing.B, interval time.Duration) {
	sim, err := StartSimulator(SimulatorConfig{Rate: benchRate, Jitter: benchRate / 2})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sim.Close() })
	dash, err := NewDashboard(DashboardConfig{})
	if err != nil {
		b.Fatal(err)
	}
	sink := &handoffSink{Dashboard: dash, at: map[string]time.Time{}}
	reader, err := NewReader(ReaderConfig{Endpoint: sim.Endpoint(), Interval: interval}, sink)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		reader.Run(ctx)
	}()
	s := &testStack{dash: dash, srv: httptest.NewServer(dash)}
	s.client = s.srv.Client()
	defer func() {
		cancel()
		<-readerDone
		_ = dash.Shutdown(context.Background())
		s.srv.Close()
	}()
	for deadline := time.Now().Add(startWait); len(dash.store.Snapshot(nil)) < len(simPointNames); {
		if time.Now().After(deadline) {
			b.Fatal("the reader did not connect")
		}
		time.Sleep(50 * time.Millisecond)
	}

	var (
		mu       sync.Mutex
		e2e, hub []time.Duration
		wg       sync.WaitGroup
		start    time.Time
		streams  []*testStream
	)
	for i := range benchClients {
		st, err := s.tryStream(fmt.Sprintf("/events?client=bench-client-%03d", i), "")
		if err != nil {
			b.Fatal(err)
		}
		streams = append(streams, st)
	}
	time.Sleep(200 * time.Millisecond) // every client past its snapshot
	start = time.Now()
	for _, st := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine, mineHub []time.Duration
			for ev := range st.events {
				recv := time.Now()
				var batch []Sample
				if ev.Type != EventPoints || json.Unmarshal(ev.Data, &batch) != nil {
					continue
				}
				for _, x := range batch {
					if x.UpdateAt.Before(start) {
						continue
					}
					mine = append(mine, recv.Sub(x.UpdateAt.Time))
					if at, ok := sink.handedAt(x); ok {
						mineHub = append(mineHub, recv.Sub(at))
					}
				}
			}
			mu.Lock()
			e2e, hub = append(e2e, mine...), append(hub, mineHub...)
			mu.Unlock()
		}()
	}
	b.ResetTimer()
	time.Sleep(time.Duration(max(b.N, 10)) * benchRate) // at least a second, for b.N = 1
	b.StopTimer()
	for _, st := range streams {
		st.close()
	}
	wg.Wait()
	if len(e2e) == 0 {
		b.Fatal("no samples")
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(0, "ns/op") // an iteration is a fixed 100 ms
	b.ReportMetric(ms(percentile(e2e, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(e2e, 99)), "p99-ms")
	b.ReportMetric(ms(percentile(hub, 50)), "hub-p50-ms")
	b.ReportMetric(ms(percentile(hub, 99)), "hub-p99-ms")
	b.ReportMetric(float64(len(e2e)), "samples")
	if st := dash.hub.Stats(); st.SlowDisconnects > 0 {
		b.Errorf("%d clients were too slow and got disconnected", st.SlowDisconnects)
	}
}

// percentile returns the p-th percentile of ds (nearest rank).
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

var _ Sink = (*handoffSink)(nil)
