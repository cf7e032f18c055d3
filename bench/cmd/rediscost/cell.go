package main

// "rediscost cell": one measurement, in a process of its own: N nodes of one
// library, their SSE streams, the publishers, and the samples of Redis.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssehub/sse/bench/internal/load"
	"github.com/ssehub/sse/bench/internal/procstat"
	"github.com/ssehub/sse/bench/internal/server"
)

type cellParams struct {
	Lib        string // "sse" or "centrifuge"
	Nodes      int
	Streams    int // per node
	Mode       string
	Publishers int     // mode "many"
	Rate       float64 // mode "rate", events/s
	Size       int
	Redis      string
	RedisPID   int
	Warm       time.Duration
	Window     time.Duration
}

// cellResult is what a cell measured; the driver takes medians.
type cellResult map[string]float64

// The modes.
const (
	modeOne  = "one"  // one goroutine publishing in a tight loop
	modeMany = "many" // Publishers goroutines publishing in tight loops
	modeRate = "rate" // one goroutine publishing Rate events/s
)

func cellCmd(args []string) error {
	fs := flag.NewFlagSet("cell", flag.ExitOnError)
	var p cellParams
	fs.StringVar(&p.Lib, "lib", "sse", "sse or centrifuge")
	fs.IntVar(&p.Nodes, "nodes", 2, "nodes")
	fs.IntVar(&p.Streams, "streams", 20, "SSE streams per node")
	fs.StringVar(&p.Mode, "mode", modeOne, "one, many or rate")
	fs.IntVar(&p.Publishers, "publishers", 16, "publishing goroutines in mode many")
	fs.Float64Var(&p.Rate, "rate", 1000, "events/s in mode rate")
	fs.IntVar(&p.Size, "size", 64, "event data bytes")
	fs.StringVar(&p.Redis, "redis", "", "Redis address")
	fs.IntVar(&p.RedisPID, "redis-pid", 0, "redis-server's process ID, for its CPU time")
	fs.DurationVar(&p.Warm, "warm", time.Second, "publishing before the window")
	fs.DurationVar(&p.Window, "window", 3*time.Second, "measurement window")
	_ = fs.Parse(args)
	redis.SetLogger(quietRedisLogger{})
	res, err := runCell(p)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

type quietRedisLogger struct{}

func (quietRedisLogger) Printf(context.Context, string, ...any) {}

// payload writes the event data: a JSON string "<seq>,<unix nanos>,xxx…"
// of size bytes, quotes included (centrifuge's JSON protocol embeds the
// data as JSON; sse sends it as it is).
func payload(dst []byte, seq uint64, nanos int64, size int) []byte {
	dst = append(dst[:0], '"')
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, nanos, 10)
	dst = append(dst, ',')
	for len(dst) < size-1 {
		dst = append(dst, 'x')
	}
	return append(dst, '"')
}

// parsePayload finds the first "<seq>,<nanos>, in a data line.
func parsePayload(line []byte) (seq uint64, nanos int64, ok bool) {
	for {
		i := bytes.IndexByte(line, '"')
		if i < 0 {
			return 0, 0, false
		}
		line = line[i+1:]
		a, rest, ok1 := bytes.Cut(line, []byte(","))
		b, _, ok2 := bytes.Cut(rest, []byte(","))
		if ok1 && ok2 {
			s, err1 := strconv.ParseUint(string(a), 10, 64)
			n, err2 := strconv.ParseInt(string(b), 10, 64)
			if err1 == nil && err2 == nil {
				return s, n, true
			}
		}
	}
}

// streams are the SSE clients of one cell.
type streams struct {
	nodes     int
	ready     atomic.Uint64 // events with a seq above this count
	recording atomic.Bool
	received  atomic.Int64 // events with seq > ready
	any       []atomic.Bool
	dups      atomic.Int64 // events a stream received twice
	latency   load.Hist    // publish to receipt, events published on another node
	failed    atomic.Int64
	wg        sync.WaitGroup
}

func (s *streams) open(ctx context.Context, addrs []string, per int) {
	s.any = make([]atomic.Bool, len(addrs)*per)
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: per, DisableCompression: true}}
	for n, addr := range addrs {
		for j := range per {
			s.wg.Add(1)
			go func(idx int) {
				defer s.wg.Done()
				if err := s.read(ctx, hc, "http://"+addr+"/", n, idx); err != nil && ctx.Err() == nil {
					s.failed.Add(1)
					fmt.Fprintln(os.Stderr, "rediscost: stream:", err)
				}
			}(n*per + j)
		}
	}
}

func (s *streams) read(ctx context.Context, hc *http.Client, url string, node, idx int) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	var seen []uint64 // a bit per seq above ready
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			return err
		}
		v, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		seq, nanos, ok := parsePayload(v)
		if !ok {
			continue
		}
		now := time.Now().UnixNano()
		s.any[idx].Store(true)
		ready := s.ready.Load()
		if seq <= ready || ready == 0 {
			continue
		}
		i := seq - ready
		for int(i/64) >= len(seen) {
			seen = append(seen, 0)
		}
		if seen[i/64]&(1<<(i%64)) != 0 {
			s.dups.Add(1)
			continue
		}
		seen[i/64] |= 1 << (i % 64)
		s.received.Add(1)
		if s.recording.Load() && int(seq%uint64(s.nodes)) != node {
			s.latency.Record(now - nanos)
		}
	}
}

func (s *streams) allLive() bool {
	for i := range s.any {
		if !s.any[i].Load() {
			return false
		}
	}
	return true
}

// sample is the state at one instant.
type sample struct {
	at        time.Time
	published int64
	received  int64
	redisCPU  time.Duration
	ownCPU    int64
	stats     redisStats
}

func runCell(p cellParams) (cellResult, error) {
	var c cluster
	var err error
	switch p.Lib {
	case "sse":
		c, err = newSSECluster(p.Redis, p.Nodes)
	case "centrifuge":
		c, err = newCFCluster(p.Redis, p.Nodes)
	default:
		err = fmt.Errorf("unknown library %q", p.Lib)
	}
	if err != nil {
		return nil, err
	}
	defer c.close()
	info := redis.NewClient(&redis.Options{Addr: p.Redis})
	defer info.Close()

	ctx, cancel := context.WithCancel(context.Background())
	st := &streams{nodes: p.Nodes}
	defer func() { cancel(); st.wg.Wait() }()
	st.open(ctx, c.addrs(), p.Streams)

	var seq atomic.Uint64
	var published atomic.Int64
	var pubErr atomic.Pointer[error]
	publish := func(buf []byte) []byte {
		s := seq.Add(1)
		buf = payload(buf, s, time.Now().UnixNano(), p.Size)
		if err := c.publish(int(s%uint64(p.Nodes)), buf); err != nil {
			pubErr.Store(&err)
			return buf
		}
		published.Add(1)
		return buf
	}
	// Every stream live: publish until each has an event.
	var buf []byte
	for deadline := time.Now().Add(20 * time.Second); !st.allLive(); {
		if time.Now().After(deadline) {
			return nil, errors.New("not every stream received an event within 20 s")
		}
		if st.failed.Load() > 0 {
			return nil, errors.New("a stream failed")
		}
		buf = publish(buf)
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	st.ready.Store(seq.Load())
	base := published.Load()

	stop := make(chan struct{})
	var pubs sync.WaitGroup
	workers := 1
	if p.Mode == modeMany {
		workers = p.Publishers
	}
	for range workers {
		pubs.Go(func() {
			var buf []byte
			t0 := time.Now()
			for i := 1; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if p.Mode == modeRate {
					next := t0.Add(time.Duration(float64(i) / p.Rate * float64(time.Second)))
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
				}
				buf = publish(buf)
			}
		})
	}
	take := func() (sample, error) {
		s := sample{at: time.Now(), published: published.Load(), received: st.received.Load(),
			redisCPU: procstat.CPU(p.RedisPID), ownCPU: server.CPUTime()}
		var err error
		s.stats, err = readStats(context.Background(), info)
		return s, err
	}
	time.Sleep(p.Warm)
	a, err := take()
	if err != nil {
		return nil, err
	}
	st.recording.Store(true)
	time.Sleep(p.Window)
	st.recording.Store(false)
	b, err := take()
	if err != nil {
		return nil, err
	}
	close(stop)
	pubs.Wait()
	if e := pubErr.Load(); e != nil {
		return nil, fmt.Errorf("publish: %w", *e)
	}
	// Drain: every stream should get every event published after ready.
	want := (published.Load() - base) * int64(p.Nodes*p.Streams)
	last, lastChange := st.received.Load(), time.Now()
	for deadline := time.Now().Add(10 * time.Second); st.received.Load() < want && time.Now().Before(deadline); {
		if r := st.received.Load(); r != last {
			last, lastChange = r, time.Now()
		} else if time.Since(lastChange) > 2*time.Second {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	win := b.at.Sub(a.at).Seconds()
	pub := float64(b.published - a.published)
	pe := max(pub, 1)
	d := b.stats.sub(a.stats)
	r := cellResult{
		"published_per_s":      pub / win,
		"delivered_per_s":      float64(b.received-a.received) / win,
		"redis_cpu_us_per_pub": float64((b.redisCPU - a.redisCPU).Microseconds()) / pe,
		"redis_cpu_pct":        100 * (b.redisCPU - a.redisCPU).Seconds() / win,
		"commands_per_pub":     float64(d.commands) / pe,
		"script_us_per_pub":    float64(d.scriptUsec) / pe,
		"reads_per_pub":        float64(d.reads-1) / pe, // one read is the INFO of the sample
		"writes_per_pub":       float64(d.writes-1) / pe,
		"in_bytes_per_pub":     float64(d.inBytes) / pe,
		"out_bytes_per_pub":    float64(d.outBytes) / pe,
		"node_cpu_pct":         100 * float64(b.ownCPU-a.ownCPU) / 1e9 / win,
		"p50_ms":               float64(st.latency.Quantile(0.50)) / 1e6,
		"p99_ms":               float64(st.latency.Quantile(0.99)) / 1e6,
		"max_ms":               float64(st.latency.Max()) / 1e6,
		"delivered_pct":        100 * float64(st.received.Load()) / float64(max(want, 1)),
		"duplicates":           float64(st.dups.Load()),
	}
	return r, nil
}
