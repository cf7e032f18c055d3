package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ssehub/sse/bench/internal/impl"
	"github.com/ssehub/sse/bench/internal/load"
	"github.com/ssehub/sse/bench/internal/server"
)

// params sizes every scenario; full and quick runs differ only here.
type params struct {
	Reps int

	FlatN       int           // (a) streams
	FlatSize    int           // (a) event data bytes
	Warm        time.Duration // before every measurement window
	FlatMeasure time.Duration // (a) window

	IdleN       int           // (b) and (e) streams
	IdleRate    float64       // (e) events per second
	IdleMeasure time.Duration // (e) window

	SlowN       int           // (c) streams
	SlowSize    int           // (c) event data bytes
	SlowFrac    float64       // (c) share of streams that never read
	SlowRcvBuf  int           // (c) receive buffer of a client that never reads
	SlowSndBuf  int           // (c) the server's send buffer per connection
	SlowMeasure time.Duration // (c) window

	SteadyN       int           // (d) streams
	SteadyRate    float64       // (d) events per second
	SteadyMeasure time.Duration // (d) window

	ReplayBack int     // (f) events to replay
	ReplayRate float64 // (f) publishing rate while history fills

	ScaleN          int           // (g) idle streams
	ScaleIdle       time.Duration // (g) window over which idle CPU is measured
	ScaleBroadcasts int           // (g) broadcasts to all, one at a time
	ScaleSrc        int           // (g) loopback source addresses the clients connect from
}

var fullParams = params{
	Reps:          3,
	FlatN:         1000,
	FlatSize:      64,
	Warm:          time.Second,
	FlatMeasure:   3 * time.Second,
	IdleN:         10000,
	IdleRate:      5,
	IdleMeasure:   4 * time.Second,
	SlowN:         1000,
	SlowSize:      2048,
	SlowFrac:      0.1,
	SlowRcvBuf:    4096,
	SlowSndBuf:    32 << 10,
	SlowMeasure:   3 * time.Second,
	SteadyN:       1000,
	SteadyRate:    25,
	SteadyMeasure: 4 * time.Second,
	ReplayBack:    10000,
	ReplayRate:    20000,

	ScaleN:          19000,
	ScaleIdle:       16 * time.Second,
	ScaleBroadcasts: 5,
	ScaleSrc:        4,
}

var quickParams = params{
	Reps:          1,
	FlatN:         1000,
	FlatSize:      64,
	Warm:          500 * time.Millisecond,
	FlatMeasure:   time.Second,
	IdleN:         2000,
	IdleRate:      5,
	IdleMeasure:   time.Second,
	SlowN:         1000,
	SlowSize:      2048,
	SlowFrac:      0.1,
	SlowRcvBuf:    4096,
	SlowSndBuf:    32 << 10,
	SlowMeasure:   time.Second,
	SteadyN:       1000,
	SteadyRate:    25,
	SteadyMeasure: 1500 * time.Millisecond,
	ReplayBack:    10000,
	ReplayRate:    20000,

	ScaleN:          3000,
	ScaleIdle:       4 * time.Second,
	ScaleBroadcasts: 3,
	ScaleSrc:        2,
}

// result is one measurement: one scenario, one implementation, one
// repetition.
type result struct {
	Scenario string             `json:"scenario"`
	Impl     string             `json:"impl"`
	Rep      int                `json:"rep"`
	M        map[string]float64 `json:"metrics"`
	Err      string             `json:"error,omitempty"`
	Crash    string             `json:"crash,omitempty"` // the server's panic, if it panicked
}

// env is what a scenario runs with.
type env struct {
	p          params
	pin        bool
	profileDir string   // if set, CPU profiles go here
	profiled   []string // the implementations to profile
	rep        int
	procs      []*proc // the servers the current cell started
}

// start starts a server for a cell and remembers it, so the run can tell
// whether it crashed.
func (e *env) start(implName string, replay, sndbuf int, part string) (*proc, error) {
	p, err := startServer(implName, replay, sndbuf, e.profileFor(implName, part), e.pin)
	if err == nil {
		e.procs = append(e.procs, p)
	}
	return p, err
}

// scenario is one of the scenarios. Some share a server run: "be"
// measures (b) and then (e) on the same 10,000 streams.
type scenario struct {
	Key   string   // flag name
	Parts []string // the table sections it fills
	Run   func(e *env, implName string) (map[string]map[string]float64, error)
	Impls func(string) bool
}

var scenarios = []scenario{
	{Key: "a", Parts: []string{"a"}, Run: runFlat},
	{Key: "b", Parts: []string{"b", "e"}, Run: runIdle},
	{Key: "c", Parts: []string{"c"}, Run: runSlow},
	{Key: "d", Parts: []string{"d"}, Run: runSteady},
	{Key: "f", Parts: []string{"f"}, Run: runReplay, Impls: impl.CanReplay},
	{Key: "g", Parts: []string{"g"}, Run: runScale, Impls: scaleImpls},
}

// scaleImpls are the implementations (g) runs: ours, the baseline and the
// best peer of (b); the other two hold three goroutines per stream.
func scaleImpls(name string) bool { return name != "r3labs" && name != "alexandrevicenzi" }

// pool is a set of clients of one server.
type pool struct {
	src     []string // if set, the local addresses the clients connect from, in turn
	shared  load.Shared
	clients []*load.Client
	readers []*load.Client
	ctx     context.Context
	cancel  context.CancelFunc
}

func newPool() *pool {
	p := &pool{}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

func (p *pool) close() {
	p.cancel()
	for _, c := range p.clients {
		c.Close()
	}
}

// connect opens n streams, noRead of which never read, and returns how long
// it took until every stream was registered and every reading stream had
// received the first event published after that ("hello").
func (p *pool) connect(s *proc, n, noRead, rcvBuf int) (time.Duration, error) {
	sem := make(chan struct{}, 256)
	bufSize := 64 << 10
	if n > 2000 {
		bufSize = 8 << 10
	}
	t0 := time.Now()
	for i := 0; i < n; i++ {
		spec := load.Spec{Addr: s.addr, Path: s.path, BufSize: bufSize}
		if len(p.src) > 0 {
			spec.Src = p.src[i%len(p.src)]
		}
		if i < noRead {
			spec.NoRead, spec.RcvBuf = true, rcvBuf
		}
		c := load.Start(p.ctx, spec, &p.shared, sem)
		p.clients = append(p.clients, c)
		if !spec.NoRead {
			p.readers = append(p.readers, c)
		}
	}
	if err := p.waitStreams(s, n, 60*time.Second); err != nil {
		return 0, err
	}
	if err := s.publish(64, 0, 1, 0, false); err != nil {
		return 0, err
	}
	if err := p.waitLive(len(p.readers), 30*time.Second); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

func (p *pool) waitStreams(s *proc, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if f := p.shared.Failed.Load(); f > 0 {
			return fmt.Errorf("%d of %d clients failed to connect: %v", f, n, p.firstErr())
		}
		st, err := s.stats()
		if err == nil && st.Streams >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d streams registered after %v (last error %v)", st.Streams, n, limit, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *pool) waitLive(n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for p.shared.Live.Load() < int64(n) {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d streams received the first event after %v", p.shared.Live.Load(), n, limit)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

func (p *pool) firstErr() error {
	for _, c := range p.clients {
		select {
		case <-c.Done():
			if c.Err != nil {
				return c.Err
			}
		default:
		}
	}
	return nil
}

// drain waits until every reader has seen last, or nothing arrived for
// quiet, or limit passed.
func (p *pool) drain(readers []*load.Client, last uint64, quiet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	prev, since := int64(-1), time.Now()
	for time.Now().Before(deadline) {
		all := true
		for _, c := range readers {
			if c.Seq() < last {
				all = false
				break
			}
		}
		if all {
			return
		}
		if r := p.shared.Received.Load(); r != prev {
			prev, since = r, time.Now()
		} else if time.Since(since) > quiet {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// delivery sums, over readers, the events received and the events they
// should have received: every event from their first one to last.
func delivery(readers []*load.Client, last uint64) (got, want, dups int64) {
	for _, c := range readers {
		c.Close() // results are read after the goroutine returned
		if c.FirstSeq == 0 {
			continue
		}
		got += c.Received
		dups += c.Dups
		if last >= c.FirstSeq {
			want += int64(last - c.FirstSeq + 1)
		}
	}
	return got, want, dups
}

// window is a measurement between two snapshots.
type window struct {
	t0, t1     time.Time
	s0, s1     server.Stats
	r0, r1     int64
	lg0, lg1   int64 // load generator CPU
	latencySet bool
}

func (p *pool) begin(s *proc, latency bool) (*window, error) {
	w := &window{}
	st, err := s.stats()
	if err != nil {
		return nil, err
	}
	w.s0, w.r0, w.lg0, w.t0 = st, p.shared.Received.Load(), server.CPUTime(), time.Now()
	if latency {
		p.shared.Latency.Reset()
		p.shared.Recording.Store(true)
		w.latencySet = true
	}
	return w, nil
}

func (p *pool) end(s *proc, w *window) error {
	w.r1, w.lg1, w.t1 = p.shared.Received.Load(), server.CPUTime(), time.Now()
	if w.latencySet {
		p.shared.Recording.Store(false)
	}
	st, err := s.stats()
	if err != nil {
		return err
	}
	w.s1 = st
	return nil
}

// common adds the metrics every window has.
func (w *window) common(m map[string]float64, p *pool) {
	secs := w.t1.Sub(w.t0).Seconds()
	delivered := float64(w.r1 - w.r0)
	published := float64(w.s1.Published - w.s0.Published)
	m["delivered_per_s"] = delivered / secs
	m["published_per_s"] = published / secs
	if delivered > 0 {
		m["cpu_us_per_ev"] = float64(w.s1.CPUNanos-w.s0.CPUNanos) / 1e3 / delivered
	}
	if published > 0 {
		m["allocs_per_ev"] = float64(w.s1.Mallocs-w.s0.Mallocs) / published
	}
	if delivered > 0 && w.s1.WriteCalls > 0 {
		m["writes_per_kev"] = 1000 * float64(w.s1.WriteCalls-w.s0.WriteCalls) / delivered
	}
	m["server_cpu_pct"] = float64(w.s1.CPUNanos-w.s0.CPUNanos) / 1e7 / secs
	m["loadgen_cpu_pct"] = float64(w.lg1-w.lg0) / 1e7 / secs
	if w.latencySet {
		h := &p.shared.Latency
		m["p50_ms"] = float64(h.Quantile(0.50)) / 1e6
		m["p99_ms"] = float64(h.Quantile(0.99)) / 1e6
		m["max_ms"] = float64(h.Max()) / 1e6
		m["latency_samples"] = float64(h.Count())
	}
}

// measure starts the publisher (size-byte events at rate per second, 0
// for flat out; yield as in proc.publish), waits the warm-up and measures
// one window of d.
func (p *pool) measure(e *env, s *proc, size int, rate float64, yield, latency bool, d time.Duration) (*window, error) {
	if err := s.publish(size, rate, 0, 0, yield); err != nil {
		return nil, err
	}
	time.Sleep(e.p.Warm)
	w, err := p.begin(s, latency)
	if err != nil {
		return nil, err
	}
	time.Sleep(d)
	if err := p.end(s, w); err != nil {
		return nil, err
	}
	return w, nil
}

// settle stops the publisher, lets the readers catch up (quiet, limit as
// in drain) and adds the window's metrics and the losses to m.
func (p *pool) settle(s *proc, w *window, m map[string]float64, quiet, limit time.Duration) error {
	st, _, err := s.stop()
	if err != nil {
		return err
	}
	p.drain(p.readers, st.LastSeq, quiet, limit)
	w.common(m, p)
	got, want, _ := delivery(p.readers, st.LastSeq)
	lossMetrics(m, got, want)
	return nil
}

func lossMetrics(m map[string]float64, got, want int64) {
	m["lost"] = float64(want - got)
	if want > 0 {
		m["delivered_pct"] = 100 * float64(got) / float64(want)
	}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// profileFor returns the CPU profile path for a server run, or "".
func (e *env) profileFor(implName, part string) string {
	if e.profileDir == "" || !slices.Contains(e.profiled, implName) {
		return ""
	}
	return fmt.Sprintf("%s/%s-%s-%d.pprof", e.profileDir, implName, part, e.rep)
}

// (a) N streams, small events, publishing as fast as the implementation
// takes them.
func runFlat(e *env, implName string) (map[string]map[string]float64, error) {
	s, err := e.start(implName, 0, 0, "a")
	if err != nil {
		return nil, err
	}
	defer s.close()
	p := newPool()
	defer p.close()
	m := map[string]float64{}
	// Millions of events per second: time one event in 16 per stream.
	p.shared.SampleEvery = 16
	conn, err := p.connect(s, e.p.FlatN, 0, 0)
	if err != nil {
		return nil, err
	}
	m["connect_ms"] = ms(conn)
	w, err := p.measure(e, s, e.p.FlatSize, 0, false, true, e.p.FlatMeasure)
	if err != nil {
		return nil, err
	}
	// A backlog (r3labs queues up to 1,024 events) is late, not lost.
	if err := p.settle(s, w, m, time.Second, 12*time.Second); err != nil {
		return nil, err
	}
	m["ended_streams"] = float64(p.shared.Ended.Load())
	return map[string]map[string]float64{"a": m}, nil
}

// (b) N idle streams: memory per stream; then (e) the same streams at a
// steady rate: latency.
func runIdle(e *env, implName string) (map[string]map[string]float64, error) {
	s, err := e.start(implName, 0, 0, "be")
	if err != nil {
		return nil, err
	}
	defer s.close()
	p := newPool()
	defer p.close()
	b, ee := map[string]float64{}, map[string]float64{}
	if err := s.gc(); err != nil {
		return nil, err
	}
	before, err := s.stats()
	if err != nil {
		return nil, err
	}
	conn, err := p.connect(s, e.p.IdleN, 0, 0)
	if err != nil {
		return nil, err
	}
	b["connect_ms"] = ms(conn)
	time.Sleep(time.Second)
	if err := s.gc(); err != nil {
		return nil, err
	}
	after, err := s.stats()
	if err != nil {
		return nil, err
	}
	n := float64(e.p.IdleN)
	b["rss_per_stream_kib"] = float64(after.RSS-before.RSS) / 1024 / n
	b["heap_stack_per_stream_kib"] = (float64(after.HeapInuse+after.StackInuse) - float64(before.HeapInuse+before.StackInuse)) / 1024 / n
	b["goroutines_per_stream"] = float64(after.Goroutines-before.Goroutines) / n
	b["rss_mib"] = float64(after.RSS) / (1 << 20)
	if hold, err := time.ParseDuration(os.Getenv("SSEBENCH_HOLD")); err == nil {
		// A pause for inspecting the idle server, e.g. with
		// go tool pprof http://ADDR/debug/pprof/heap.
		fmt.Fprintf(os.Stderr, "holding %s (%s, %d idle streams) for %v\n", s.addr, implName, e.p.IdleN, hold)
		time.Sleep(hold)
	}

	w, err := p.measure(e, s, 64, e.p.IdleRate, false, true, e.p.IdleMeasure)
	if err != nil {
		return nil, err
	}
	if err := p.settle(s, w, ee, time.Second, 5*time.Second); err != nil {
		return nil, err
	}
	return map[string]map[string]float64{"b": b, "e": ee}, nil
}

// (c) N streams, large events, a share of the clients never read: do the
// others get everything, how fast, at what memory, and is a new client
// served afterwards?
func runSlow(e *env, implName string) (map[string]map[string]float64, error) {
	s, err := e.start(implName, 0, e.p.SlowSndBuf, "c")
	if err != nil {
		return nil, err
	}
	defer s.close()
	p := newPool()
	defer p.close()
	m := map[string]float64{}
	slow := int(math.Round(float64(e.p.SlowN) * e.p.SlowFrac))
	if _, err := p.connect(s, e.p.SlowN, slow, e.p.SlowRcvBuf); err != nil {
		return nil, err
	}
	w, err := p.measure(e, s, e.p.SlowSize, 0, true, false, e.p.SlowMeasure)
	if err != nil {
		return nil, err
	}
	m["rss_mib"] = float64(w.s1.RSS) / (1 << 20)
	m["streams_left"] = float64(w.s1.Streams)

	// A new client while the flood goes on: is it served within 3 s?
	nc := load.Start(p.ctx, load.Spec{Addr: s.addr, Path: s.path}, &p.shared, nil)
	p.clients = append(p.clients, nc)
	t0 := time.Now()
	served := math.NaN()
	for time.Since(t0) < 3*time.Second {
		if nc.Seq() > 0 {
			served = ms(time.Since(t0))
			break
		}
		time.Sleep(time.Millisecond)
	}
	m["new_client_ms"] = served
	if nc.Seq() > 0 {
		m["new_client_headers_ms"] = float64(nc.HeadersAt-t0.UnixNano()) / 1e6
	}
	if err := p.settle(s, w, m, 500*time.Millisecond, 3*time.Second); err != nil {
		return nil, err
	}
	return map[string]map[string]float64{"c": m}, nil
}

// (d) N streams at a steady rate: latency.
func runSteady(e *env, implName string) (map[string]map[string]float64, error) {
	s, err := e.start(implName, 0, 0, "d")
	if err != nil {
		return nil, err
	}
	defer s.close()
	p := newPool()
	defer p.close()
	m := map[string]float64{}
	if _, err := p.connect(s, e.p.SteadyN, 0, 0); err != nil {
		return nil, err
	}
	w, err := p.measure(e, s, 64, e.p.SteadyRate, false, true, e.p.SteadyMeasure)
	if err != nil {
		return nil, err
	}
	if err := p.settle(s, w, m, time.Second, 3*time.Second); err != nil {
		return nil, err
	}
	return map[string]map[string]float64{"d": m}, nil
}

// (f) A client reconnects with a Last-Event-ID ReplayBack events back.
func runReplay(e *env, implName string) (map[string]map[string]float64, error) {
	back := e.p.ReplayBack
	s, err := e.start(implName, back+back/2, 0, "f")
	if err != nil {
		return nil, err
	}
	defer s.close()
	p := newPool()
	defer p.close()
	m := map[string]float64{}
	witness := load.Start(p.ctx, load.Spec{Addr: s.addr, Path: s.path, KeepIDs: true}, &p.shared, nil)
	p.clients = append(p.clients, witness)
	if err := p.waitStreams(s, 1, 10*time.Second); err != nil {
		return nil, err
	}
	// hello is seq 1; then back+1 events: seq 2 .. back+2. The client
	// resumes after seq 2 and should get seq 3 .. back+2.
	if err := s.publish(64, 0, 1, 0, false); err != nil {
		return nil, err
	}
	if err := p.waitLive(1, 10*time.Second); err != nil {
		return nil, err
	}
	last := uint64(back + 2)
	if err := s.publish(64, e.p.ReplayRate, back+1, 0, false); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for witness.Seq() < last {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("witness reached seq %d of %d", witness.Seq(), last)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, _, err := s.stop(); err != nil {
		return nil, err
	}
	witness.Close()
	id := witness.IDs[2]
	if id == "" {
		return nil, errors.New("event 2 had no id")
	}
	t0 := time.Now()
	rc := load.Start(p.ctx, load.Spec{Addr: s.addr, Path: s.path, LastEventID: id, BufSize: 64 << 10}, &p.shared, nil)
	p.clients = append(p.clients, rc)
	deadline = time.Now().Add(10 * time.Second)
	prev, since := uint64(0), time.Now()
	for rc.Seq() < last && time.Now().Before(deadline) {
		if q := rc.Seq(); q != prev {
			prev, since = q, time.Now()
		} else if q > 0 && time.Since(since) > time.Second {
			break
		}
		time.Sleep(time.Millisecond)
	}
	rc.Close()
	if rc.FirstSeq == 0 {
		m["replay_ms"] = math.NaN()
		m["first_ms"] = math.NaN()
	} else {
		m["replay_ms"] = float64(rc.LastAt-t0.UnixNano()) / 1e6
		m["first_ms"] = float64(rc.FirstAt-t0.UnixNano()) / 1e6
	}
	m["replayed"] = float64(rc.Received)
	// Events at or before the resume point are extra; a first event
	// after seq 3 or a gap means missing ones.
	extra := int64(0)
	if rc.FirstSeq > 0 && rc.FirstSeq <= 2 {
		extra = int64(3 - rc.FirstSeq)
	}
	m["extra"] = float64(extra + rc.Dups)
	m["missing"] = float64(int64(back) - (rc.Received - extra))
	return map[string]map[string]float64{"f": m}, nil
}

// (g) ScaleN idle streams, as many as one process may hold under an open
// file limit of 20,000: the memory per stream, of the process and of the
// kernel; the server's CPU while they idle (heartbeats included); then
// broadcasts to all of them, one at a time: how long until each client
// has it.
func runScale(e *env, implName string) (map[string]map[string]float64, error) {
	s, err := e.start(implName, 0, 0, "g")
	if err != nil {
		return nil, err
	}
	defer s.close()
	p := newPool()
	defer p.close()
	for i := range e.p.ScaleSrc {
		p.src = append(p.src, fmt.Sprintf("127.0.0.%d", 2+i))
	}
	m := map[string]float64{}
	if err := s.gc(); err != nil {
		return nil, err
	}
	before, err := s.stats()
	if err != nil {
		return nil, err
	}
	k0 := readKernel()
	conn, err := p.connect(s, e.p.ScaleN, 0, 0)
	if err != nil {
		return nil, err
	}
	m["connect_ms"] = ms(conn)
	time.Sleep(time.Second)
	if err := s.gc(); err != nil {
		return nil, err
	}
	after, err := s.stats()
	if err != nil {
		return nil, err
	}
	k1 := readKernel()
	n := float64(e.p.ScaleN)
	m["rss_per_stream_kib"] = float64(after.RSS-before.RSS) / 1024 / n
	m["heap_stack_per_stream_kib"] = (float64(after.HeapInuse+after.StackInuse) - float64(before.HeapInuse+before.StackInuse)) / 1024 / n
	m["goroutines_per_stream"] = float64(after.Goroutines-before.Goroutines) / n
	m["rss_mib"] = float64(after.RSS) / (1 << 20)
	// Both ends of every connection are on this machine: per connection.
	m["kernel_slab_per_conn_kib"] = float64(k1.slabKiB-k0.slabKiB) / n
	m["kernel_tcp_mem_per_conn_kib"] = float64(k1.tcpMemPages-k0.tcpMemPages) * 4 / n

	// Idle: the server's CPU time, heartbeats included.
	w0, err := s.stats()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	time.Sleep(e.p.ScaleIdle)
	w1, err := s.stats()
	if err != nil {
		return nil, err
	}
	secs := time.Since(t0).Seconds()
	m["idle_cpu_us_per_s_per_stream"] = float64(w1.CPUNanos-w0.CPUNanos) / 1e3 / secs / n
	m["idle_cpu_pct"] = float64(w1.CPUNanos-w0.CPUNanos) / 1e7 / secs

	// Broadcasts, one at a time: each reaches every client before the next.
	p.shared.Latency.Reset()
	p.shared.Recording.Store(true)
	cpu0 := w1.CPUNanos
	var lasts []float64
	for range e.p.ScaleBroadcasts {
		st, err := s.stats()
		if err != nil {
			return nil, err
		}
		want := st.LastSeq + 1
		t := time.Now()
		if err := s.publish(64, 0, 1, 0, false); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			all := true
			for _, c := range p.readers {
				if c.Seq() < want {
					all = false
					break
				}
			}
			if all {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("broadcast %d did not reach every client within 30s", want)
			}
			time.Sleep(time.Millisecond)
		}
		lasts = append(lasts, ms(time.Since(t)))
		time.Sleep(300 * time.Millisecond)
	}
	p.shared.Recording.Store(false)
	st, err := s.stats()
	if err != nil {
		return nil, err
	}
	h := &p.shared.Latency
	m["bcast_p50_ms"] = float64(h.Quantile(0.50)) / 1e6
	m["bcast_p99_ms"] = float64(h.Quantile(0.99)) / 1e6
	m["bcast_max_ms"] = float64(h.Max()) / 1e6
	m["bcast_last_ms"] = median(lasts)
	m["bcast_cpu_us_per_delivery"] = float64(st.CPUNanos-cpu0) / 1e3 / (n * float64(e.p.ScaleBroadcasts))
	m["ended_streams"] = float64(p.shared.Ended.Load())
	return map[string]map[string]float64{"g": m}, nil
}

// kernel is the machine's kernel memory that sockets take: all slab caches
// (/proc/meminfo) and TCP's buffers (/proc/net/sockstat). Both are of the
// whole machine, so other work shows in their differences.
type kernel struct {
	slabKiB     int64
	tcpMemPages int64
}

func readKernel() kernel {
	var k kernel
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Slab:"); ok {
				fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &k.slabKiB)
			}
		}
	}
	if b, err := os.ReadFile("/proc/net/sockstat"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "TCP:"); ok {
				f := strings.Fields(v)
				for i := 0; i+1 < len(f); i++ {
					if f[i] == "mem" {
						fmt.Sscan(f[i+1], &k.tcpMemPages)
					}
				}
			}
		}
	}
	return k
}
