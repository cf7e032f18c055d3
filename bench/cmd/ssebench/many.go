package main

// "ssebench many": 100,000 streams on one machine. A process may hold only
// as many sockets as its open-file limit (20,000 here), so the streams are
// spread over several hub processes on one Redis (sseredis), each under the
// limit, and read by as many client processes ("ssebench clients"), each
// connecting from a loopback source address of its own (127.0.0.2, …), so
// that ephemeral ports do not run out. Then one event is broadcast, on one
// hub, to all of them, a few times, one at a time.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ssehub/sse/bench/internal/impl"
	"github.com/ssehub/sse/bench/internal/load"
	"github.com/ssehub/sse/bench/internal/procstat"
	"github.com/ssehub/sse/bench/internal/redisproc"
	"github.com/ssehub/sse/bench/internal/server"
)

// clientStats is what a client process answers to "stats".
type clientStats struct {
	Connected int64  `json:"connected"`
	Live      int64  `json:"live"`
	Failed    int64  `json:"failed"`
	Ended     int64  `json:"ended"`
	Received  int64  `json:"received"`
	CPUNanos  int64  `json:"cpu_ns"`
	RSS       int64  `json:"rss"`
	Err       string `json:"err,omitempty"`
}

// clientsCmd is "ssebench clients": a process of n stream clients of one
// server, driven over stdin (one command a line) and answering on stdout
// (one JSON value a line):
//
//	stats       clientStats
//	seq N       {"have": clients that have received event N or a later one}
//	record      start recording latencies afresh; {"ok": true}
//	hist        stop recording; the latencies (load.HistData)
//
// It exits when stdin ends.
func clientsCmd(args []string) error {
	fs := flag.NewFlagSet("clients", flag.ExitOnError)
	addr := fs.String("addr", "", "the server's host:port")
	path := fs.String("path", "/sse", "the stream's path")
	n := fs.Int("n", 1000, "streams")
	src := fs.String("src", "", "comma-separated local addresses to connect from, in turn")
	bufSize := fs.Int("buf", 4096, "read buffer per stream")
	_ = fs.Parse(args)
	var srcs []string
	if *src != "" {
		srcs = strings.Split(*src, ",")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var shared load.Shared
	sem := make(chan struct{}, 256)
	clients := make([]*load.Client, *n)
	for i := range clients {
		spec := load.Spec{Addr: *addr, Path: *path, BufSize: *bufSize}
		if len(srcs) > 0 {
			spec.Src = srcs[i%len(srcs)]
		}
		clients[i] = load.Start(ctx, spec, &shared, sem)
	}
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		var err error
		switch f[0] {
		case "stats":
			st := clientStats{
				Connected: shared.Connected.Load(), Live: shared.Live.Load(), Failed: shared.Failed.Load(),
				Ended: shared.Ended.Load(), Received: shared.Received.Load(), CPUNanos: server.CPUTime(), RSS: server.RSS(),
			}
			if st.Failed > 0 {
				for _, c := range clients {
					select {
					case <-c.Done():
						if c.Err != nil {
							st.Err = c.Err.Error()
						}
					default:
					}
					if st.Err != "" {
						break
					}
				}
			}
			err = out.Encode(st)
		case "seq":
			want, _ := strconv.ParseUint(f[1], 10, 64)
			have := 0
			for _, c := range clients {
				if c.Seq() >= want {
					have++
				}
			}
			err = out.Encode(map[string]int{"have": have})
		case "record":
			shared.Recording.Store(false)
			shared.Latency.Reset()
			shared.Recording.Store(true)
			err = out.Encode(map[string]bool{"ok": true})
		case "hist":
			shared.Recording.Store(false)
			err = out.Encode(shared.Latency.Data())
		default:
			err = out.Encode(map[string]string{"error": "unknown command " + f[0]})
		}
		if err != nil {
			return err
		}
	}
	cancel()
	for _, c := range clients {
		c.Close()
	}
	return nil
}

// clientProc is a running "ssebench clients" process.
type clientProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
	mu  sync.Mutex
}

func startClients(addr string, n int, src string) (*clientProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "clients", "-addr", addr, "-n", strconv.Itoa(n), "-src", src)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	return &clientProc{cmd: cmd, in: in, out: sc}, nil
}

// ask sends a command and decodes the answer into v.
func (c *clientProc) ask(command string, v any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.in, command+"\n"); err != nil {
		return err
	}
	if !c.out.Scan() {
		if err := c.out.Err(); err != nil {
			return err
		}
		return errors.New("the client process exited")
	}
	return json.Unmarshal(c.out.Bytes(), v)
}

func (c *clientProc) close() {
	_ = c.in.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// srcPerClient is how many loopback addresses each client process connects
// from, in turn: a few thousand connections per address and server leave
// room in the ephemeral port range for what else the machine runs.
const srcPerClient = 4

type manyParams struct {
	Streams    int
	Hubs       int
	Impl       string
	Broadcasts int
	Reps       int
	RedisBin   string
	Procs      int
}

func manyCmd(args []string) error {
	fs := flag.NewFlagSet("many", flag.ExitOnError)
	var p manyParams
	fs.IntVar(&p.Streams, "streams", 100_000, "streams in total")
	fs.IntVar(&p.Hubs, "hubs", 6, "hub processes, each with as many client processes; each holds streams/hubs streams")
	fs.StringVar(&p.Impl, "impl", "ours-poll", "our hub's setup: ours, ours-hijack or ours-poll")
	fs.IntVar(&p.Broadcasts, "broadcasts", 5, "broadcasts to all, one at a time")
	fs.IntVar(&p.Reps, "reps", 3, "repetitions (each sets everything up afresh); medians are shown")
	fs.StringVar(&p.RedisBin, "redis-server", "redis-server", "the redis-server to start")
	fs.IntVar(&p.Procs, "procs", 0, "if positive, GOMAXPROCS of the hub and client processes (0: Go's default, every CPU)")
	_ = fs.Parse(args)
	if !impl.Ours(p.Impl) {
		return fmt.Errorf("-impl %q: only our hub runs on Redis", p.Impl)
	}
	if p.Hubs < 1 || 1+srcPerClient*p.Hubs > 254 || p.Streams < p.Hubs {
		return fmt.Errorf("-hubs must be 1 to %d, and at most -streams", 253/srcPerClient)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		if per := uint64(p.Streams/p.Hubs + 200); rl.Cur < per {
			return fmt.Errorf("%d streams per process need an open file limit of %d, not %d: more -hubs", p.Streams/p.Hubs, per, rl.Cur)
		}
	}
	if p.Procs > 0 {
		// Inherited by the processes it starts.
		if err := os.Setenv("GOMAXPROCS", strconv.Itoa(p.Procs)); err != nil {
			return err
		}
	}
	start := time.Now()
	info := machineInfo(false)
	fmt.Fprintf(os.Stderr, "ssebench many: %d streams on %d hubs (%s), %d repetition(s), load %s\n", p.Streams, p.Hubs, p.Impl, p.Reps, loadAvg())
	var runs []map[string]float64
	for rep := 1; rep <= p.Reps; rep++ {
		m, err := runMany(p)
		if err != nil {
			return fmt.Errorf("repetition %d: %w", rep, err)
		}
		fmt.Fprintf(os.Stderr, "  rep %d: %v\n", rep, time.Since(start).Round(time.Second))
		runs = append(runs, m)
	}
	info.Elapsed = time.Since(start).Round(time.Second).String()
	info.LoadAfter = loadAvg()
	med := map[string]float64{}
	for k := range runs[0] {
		var vs []float64
		for _, r := range runs {
			vs = append(vs, r[k])
		}
		med[k] = median(vs)
	}
	w := os.Stdout
	fmt.Fprintf(w, "# ssebench many\n\n")
	fmt.Fprintf(w, "- date: %s; %d repetition(s), medians shown; run time %s\n", info.Date, p.Reps, info.Elapsed)
	procs := "Go's default GOMAXPROCS"
	if p.Procs > 0 {
		procs = fmt.Sprintf("GOMAXPROCS=%d in every hub and client process", p.Procs)
	}
	fmt.Fprintf(w, "- machine: %d cores (%s), %s, %s; nothing pinned; %s\n", info.Cores, info.CPU, info.Kernel, info.Go, procs)
	fmt.Fprintf(w, "- load average (1, 5, 15 min) before: %s; after: %s\n", info.LoadStart, info.LoadAfter)
	fmt.Fprintf(w, "- command: `ssebench many %s`\n", strings.Join(args, " "))
	fmt.Fprintf(w, "- setup: %d streams, %d hub processes (`%s` on one redis-server, sseredis), each read by a client process of its own connecting from %d loopback addresses of its own (127.0.0.2…%d)\n\n",
		p.Streams, p.Hubs, p.Impl, srcPerClient, 1+srcPerClient*p.Hubs)
	fmt.Fprintf(w, "| figure | median | runs |\n|---|---|---|\n")
	rows := []struct{ key, head, format string }{
		{"rss_per_stream_kib", "hub RSS KiB/stream (all hubs' RSS increase ÷ streams)", "%.2f"},
		{"heap_stack_per_stream_kib", "hub Go heap+stack KiB/stream", "%.2f"},
		{"goroutines_per_stream", "hub goroutines/stream", "%.2f"},
		{"kernel_slab_per_conn_kib", "kernel slab KiB/connection (both ends, machine-wide)", "%.1f"},
		{"client_rss_per_stream_kib", "client processes' RSS KiB/stream", "%.1f"},
		{"connect_s", "connect, s (first dial until every stream has an event)", "%.1f"},
		{"bcast_p50_ms", "broadcast to all: p50 ms (publish to receive)", "%.0f"},
		{"bcast_p99_ms", "broadcast to all: p99 ms", "%.0f"},
		{"bcast_max_ms", "broadcast to all: max ms", "%.0f"},
		{"bcast_last_ms", "broadcast until the last stream has it, ms (median of the broadcasts)", "%.0f"},
		{"hub_cpu_s_per_bcast", "hubs' CPU s per broadcast (all hubs)", "%.2f"},
		{"hub_cpu_us_per_delivery", "hubs' CPU µs per delivery", "%.2f"},
		{"client_cpu_s_per_bcast", "client processes' CPU s per broadcast", "%.2f"},
		{"redis_cpu_ms_per_bcast", "redis-server CPU ms per broadcast", "%.1f"},
		{"idle_hub_cpu_pct", "hubs' CPU while idle, % of one core (heartbeats)", "%.1f"},
		{"idle_cpu_us_per_s_per_stream", "idle CPU µs/s per stream", "%.3f"},
	}
	for _, r := range rows {
		var all []string
		for _, run := range runs {
			all = append(all, fmt.Sprintf(r.format, run[r.key]))
		}
		fmt.Fprintf(w, "| %s | "+r.format+" | %s |\n", r.head, med[r.key], strings.Join(all, ", "))
	}
	return nil
}

// runMany sets up p once and measures it.
func runMany(p manyParams) (map[string]float64, error) {
	m := map[string]float64{}
	rp, err := redisproc.Start(p.RedisBin, false)
	if err != nil {
		return nil, err
	}
	defer rp.Stop()
	var hubs []*proc
	defer func() {
		for _, h := range hubs {
			h.close()
		}
	}()
	for range p.Hubs {
		h, err := startServerArgs(p.Impl, []string{"-redis", rp.Addr}, false)
		if err != nil {
			return nil, err
		}
		hubs = append(hubs, h)
	}
	hubStats := func() ([]server.Stats, error) {
		out := make([]server.Stats, len(hubs))
		for i, h := range hubs {
			st, err := h.stats()
			if err != nil {
				return nil, err
			}
			out[i] = st
		}
		return out, nil
	}
	for _, h := range hubs {
		if err := h.gc(); err != nil {
			return nil, err
		}
	}
	before, err := hubStats()
	if err != nil {
		return nil, err
	}
	k0 := readKernel()

	// Connect: every client process at once.
	var clients []*clientProc
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	t0 := time.Now()
	for i, h := range hubs {
		n := p.Streams / p.Hubs
		if i < p.Streams%p.Hubs {
			n++
		}
		var src []string
		for k := range srcPerClient {
			src = append(src, fmt.Sprintf("127.0.0.%d", 2+srcPerClient*i+k))
		}
		c, err := startClients(h.addr, n, strings.Join(src, ","))
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	clientStatsAll := func() (clientStats, error) {
		var sum clientStats
		for _, c := range clients {
			var st clientStats
			if err := c.ask("stats", &st); err != nil {
				return sum, err
			}
			sum.Connected += st.Connected
			sum.Live += st.Live
			sum.Failed += st.Failed
			sum.Ended += st.Ended
			sum.Received += st.Received
			sum.CPUNanos += st.CPUNanos
			sum.RSS += st.RSS
			if sum.Err == "" {
				sum.Err = st.Err
			}
		}
		return sum, nil
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		cs, err := clientStatsAll()
		if err != nil {
			return nil, err
		}
		if cs.Failed > 0 {
			return nil, fmt.Errorf("%d streams failed to connect: %s", cs.Failed, cs.Err)
		}
		hs, err := hubStats()
		if err != nil {
			return nil, err
		}
		open := 0
		for _, st := range hs {
			open += st.Streams
		}
		if open >= p.Streams {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d streams open after 5 minutes", open, p.Streams)
		}
		time.Sleep(100 * time.Millisecond)
	}
	seq := uint64(0)
	// waitAll waits until every client has event seq, and returns when
	// the last one had it (as the driver saw it).
	waitAll := func(limit time.Duration) error {
		end := time.Now().Add(limit)
		for {
			have := 0
			for _, c := range clients {
				var r struct{ Have int }
				if err := c.ask("seq "+strconv.FormatUint(seq, 10), &r); err != nil {
					return err
				}
				have += r.Have
			}
			if have >= p.Streams {
				return nil
			}
			if time.Now().After(end) {
				return fmt.Errorf("event %d reached %d of %d streams in %v", seq, have, p.Streams, limit)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	seq++
	if err := hubs[0].publish(64, 0, 1, 0, false); err != nil {
		return nil, err
	}
	if err := waitAll(2 * time.Minute); err != nil {
		return nil, err
	}
	m["connect_s"] = time.Since(t0).Seconds()

	time.Sleep(2 * time.Second)
	for _, h := range hubs {
		if err := h.gc(); err != nil {
			return nil, err
		}
	}
	after, err := hubStats()
	if err != nil {
		return nil, err
	}
	k1 := readKernel()
	n := float64(p.Streams)
	var rss, hs, g float64
	for i := range hubs {
		rss += float64(after[i].RSS - before[i].RSS)
		hs += float64(after[i].HeapInuse+after[i].StackInuse) - float64(before[i].HeapInuse+before[i].StackInuse)
		g += float64(after[i].Goroutines - before[i].Goroutines)
	}
	m["rss_per_stream_kib"] = rss / 1024 / n
	m["heap_stack_per_stream_kib"] = hs / 1024 / n
	m["goroutines_per_stream"] = g / n
	m["kernel_slab_per_conn_kib"] = float64(k1.slabKiB-k0.slabKiB) / n
	cs, err := clientStatsAll()
	if err != nil {
		return nil, err
	}
	m["client_rss_per_stream_kib"] = float64(cs.RSS) / 1024 / n

	// Idle, heartbeats included.
	idle0, err := hubStats()
	if err != nil {
		return nil, err
	}
	ti := time.Now()
	time.Sleep(16 * time.Second)
	idle1, err := hubStats()
	if err != nil {
		return nil, err
	}
	var idleCPU float64
	for i := range hubs {
		idleCPU += float64(idle1[i].CPUNanos - idle0[i].CPUNanos)
	}
	secs := time.Since(ti).Seconds()
	m["idle_hub_cpu_pct"] = idleCPU / 1e7 / secs
	m["idle_cpu_us_per_s_per_stream"] = idleCPU / 1e3 / secs / n

	// Broadcasts, one at a time, each published on the first hub.
	for _, c := range clients {
		var ok map[string]bool
		if err := c.ask("record", &ok); err != nil {
			return nil, err
		}
	}
	b0, err := hubStats()
	if err != nil {
		return nil, err
	}
	c0, err := clientStatsAll()
	if err != nil {
		return nil, err
	}
	r0 := procstat.CPU(rp.Pid())
	var lasts []float64
	for range p.Broadcasts {
		seq++
		t := time.Now()
		if err := hubs[0].publish(64, 0, 1, 0, false); err != nil {
			return nil, err
		}
		if err := waitAll(30 * time.Second); err != nil {
			return nil, err
		}
		lasts = append(lasts, ms(time.Since(t)))
		time.Sleep(500 * time.Millisecond)
	}
	b1, err := hubStats()
	if err != nil {
		return nil, err
	}
	c1, err := clientStatsAll()
	if err != nil {
		return nil, err
	}
	r1 := procstat.CPU(rp.Pid())
	var hist load.Hist
	for _, c := range clients {
		var d load.HistData
		if err := c.ask("hist", &d); err != nil {
			return nil, err
		}
		hist.Merge(d)
	}
	var hubCPU float64
	for i := range hubs {
		hubCPU += float64(b1[i].CPUNanos - b0[i].CPUNanos)
	}
	k := float64(p.Broadcasts)
	m["bcast_p50_ms"] = float64(hist.Quantile(0.50)) / 1e6
	m["bcast_p99_ms"] = float64(hist.Quantile(0.99)) / 1e6
	m["bcast_max_ms"] = float64(hist.Max()) / 1e6
	m["bcast_last_ms"] = median(lasts)
	m["hub_cpu_s_per_bcast"] = hubCPU / 1e9 / k
	m["hub_cpu_us_per_delivery"] = hubCPU / 1e3 / (n * k)
	m["client_cpu_s_per_bcast"] = float64(c1.CPUNanos-c0.CPUNanos) / 1e9 / k
	m["redis_cpu_ms_per_bcast"] = float64(r1-r0) / 1e6 / k
	if c1.Ended > 0 {
		return nil, fmt.Errorf("%d streams ended during the run", c1.Ended)
	}
	return m, nil
}
