package main

// "ssebench redis": our hub with the in-memory broker against two hubs on
// one Redis (sseredis), side by side in one run.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	sse "github.com/ssehub/sse"
	"github.com/ssehub/sse/bench/internal/load"
	"github.com/ssehub/sse/bench/internal/procstat"
	"github.com/ssehub/sse/bench/internal/redisproc"
	"github.com/ssehub/sse/bench/internal/server"
	"github.com/ssehub/sse/sseredis"
)

const redisBinary = "/usr/bin/redis-server"

type redisParams struct {
	Streams int           // in total; the two Redis nodes get half each
	Size    int           // event data bytes
	Rate    float64       // fixed-rate run, events/s
	Warm    time.Duration // publishing before the window
	Window  time.Duration // measurement window
	Reps    int
	Bin     string
}

func redisCmd(args []string) error {
	fs := flag.NewFlagSet("redis", flag.ExitOnError)
	var p redisParams
	fs.IntVar(&p.Streams, "streams", 2000, "streams in total (one in-memory hub; or two Redis nodes with half each)")
	fs.IntVar(&p.Size, "size", 64, "event data bytes")
	fs.Float64Var(&p.Rate, "rate", 50, "events/s of the fixed-rate run (50: what two Redis nodes with 1,000 streams each sustained on one pinned core, see BENCHMARKS.md)")
	fs.DurationVar(&p.Warm, "warm", time.Second, "publishing before each measurement window")
	fs.DurationVar(&p.Window, "window", 5*time.Second, "measurement window")
	fs.IntVar(&p.Reps, "reps", 3, "repetitions per cell (medians are shown)")
	fs.StringVar(&p.Bin, "redis-server", redisBinary, "the redis-server binary")
	pin := fs.Bool("pin", true, "pin the hub process to CPU "+serverCPU+" and this one (the clients) to CPU "+driverCPU+" when there are two CPUs and taskset")
	_ = fs.Parse(args)
	doPin := *pin && (os.Getenv(pinnedEnv) != "" || runtime.NumCPU() >= 2 && hasTaskset())
	if doPin && os.Getenv(pinnedEnv) == "" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		ts, err := exec.LookPath("taskset")
		if err != nil {
			return err
		}
		argv := append([]string{"taskset", "-c", driverCPU, self, "redis"}, args...)
		return syscall.Exec(ts, argv, append(os.Environ(), pinnedEnv+"=1"))
	}
	if p.Streams < 2 || p.Streams%2 != 0 {
		return fmt.Errorf("-streams must be even and at least 2")
	}
	if err := checkFiles(params{IdleN: p.Streams}, nil); err != nil {
		return err
	}
	redis.SetLogger(quietRedisLogger{}) // go-redis logs failed dials
	start := time.Now()
	info := machineInfo(doPin)
	fmt.Fprintf(os.Stderr, "ssebench redis: %d streams, %d repetition(s), load %s\n", p.Streams, p.Reps, loadAvg())

	type cellKey struct{ setup, mode string }
	results := map[cellKey][]map[string]float64{}
	modes := []string{"rate", "flat"}
	setups := []string{"memory", "redis"}
	for rep := 1; rep <= p.Reps; rep++ {
		for _, mode := range modes {
			for _, setup := range setups {
				t0 := time.Now()
				m, err := redisRun(p, doPin, setup, mode)
				if err != nil {
					return fmt.Errorf("rep %d %s %s: %w", rep, setup, mode, err)
				}
				k := cellKey{setup, mode}
				results[k] = append(results[k], m)
				fmt.Fprintf(os.Stderr, "  rep %d %-5s %-6s %v: %s delivered/s, p99 %.2f ms\n", rep, mode, setup,
					time.Since(t0).Round(time.Millisecond), rate(m["delivered_per_s"]), m["p99_ms"])
				time.Sleep(300 * time.Millisecond)
			}
		}
	}
	info.Elapsed = time.Since(start).Round(time.Second).String()
	info.LoadAfter = loadAvg()

	w := os.Stdout
	fmt.Fprintf(w, "- date: %s; %d repetition(s) per cell, medians shown; run time %s\n", info.Date, p.Reps, info.Elapsed)
	placement := "nothing pinned: hub process, load generator and redis-server share the CPUs"
	if doPin {
		placement = "hub process (hubs and publisher) pinned to CPU " + serverCPU + ", load generator (the clients) to CPU " + driverCPU + " (GOMAXPROCS=1 each), redis-server not pinned"
	}
	fmt.Fprintf(w, "- machine: %d cores (%s), %s, %s, redis-server %s; %s\n",
		info.Cores, info.CPU, info.Kernel, info.Go, redisVersion(p.Bin), placement)
	fmt.Fprintf(w, "- load average (1, 5, 15 min) before: %s; after: %s\n", info.LoadStart, info.LoadAfter)
	fmt.Fprintf(w, "- command: `ssebench redis %s`\n\n", strings.Join(args, " "))

	type col struct {
		key, name string
		f         func(float64) string
		ratio     bool
	}
	cols := []col{
		{"published_per_s", "published events/s", rate, true},
		{"delivered_per_s", "delivered events/s", rate, true},
		{"p50_ms", "p50 ms", f2, true},
		{"p99_ms", "p99 ms", f2, true},
		{"max_ms", "max ms", f1, false},
		{"pub_p50_ms", "Broadcast call p50 ms", f3, false},
		{"pub_p99_ms", "Broadcast call p99 ms", f3, false},
		{"delivered_pct", "delivered %", pct, false},
		{"hub_cpu_us_per_delivered", "hub process CPU µs/delivered event", f3, true},
		{"hub_cpu_pct", "hub process CPU %", f0, false},
		{"load_cpu_pct", "load generator CPU %", f0, false},
		{"redis_cpu_pct", "redis-server CPU %", f0, false},
	}
	cost := []col{
		{"rt_per_event", "round trips/published event", f2, false},
		{"rt_publish", "of which publish (EVALSHA)", f2, false},
		{"rt_fetch", "follower fetch (EVALSHA)", f2, false},
		{"rt_xread", "follower XREAD", f2, false},
		{"rt_other", "other", f2, false},
		{"cmds_per_event", "Redis commands/published event (commandstats, incl. inside scripts)", f2, false},
		{"cmd_us_per_event", "µs Redis spent in EVALSHA+XREAD/published event (commandstats usec)", f1, false},
		{"sent_per_event", "bytes sent to Redis/published event", f0, false},
		{"recv_per_event", "bytes received from Redis/published event", f0, false},
		{"redis_cpu_us_per_event", "redis-server CPU µs/published event", f1, false},
	}
	// header writes a table's head: first, then a column per c.
	header := func(first string, cs []col) {
		fmt.Fprintf(w, "| %s |", first)
		for _, c := range cs {
			fmt.Fprintf(w, " %s |", c.name)
		}
		fmt.Fprint(w, "\n|---|"+strings.Repeat("---|", len(cs))+"\n")
	}
	med := func(k cellKey, key string) float64 {
		var vs []float64
		for _, m := range results[k] {
			vs = append(vs, m[key])
		}
		return median(vs)
	}
	for _, mode := range modes {
		title := fmt.Sprintf("fixed rate, %.0f events/s", p.Rate)
		if mode == "flat" {
			title = "flat out (one publishing goroutine in a tight loop, alternating nodes)"
		}
		fmt.Fprintf(w, "**%s, %d streams, %d-byte events, %v window**\n\n", title, p.Streams, p.Size, p.Window)
		header("setup", cols)
		for _, setup := range setups {
			name := "in-memory, 1 hub × " + strconv.Itoa(p.Streams)
			if setup == "redis" {
				name = "Redis, 2 hubs × " + strconv.Itoa(p.Streams/2)
			}
			fmt.Fprintf(w, "| %s |", name)
			for _, c := range cols {
				fmt.Fprintf(w, " %s |", c.f(med(cellKey{setup, mode}, c.key)))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprint(w, "| Redis ÷ in-memory |")
		for _, c := range cols {
			if !c.ratio {
				fmt.Fprint(w, " |")
				continue
			}
			a, b := med(cellKey{"redis", mode}, c.key), med(cellKey{"memory", mode}, c.key)
			fmt.Fprintf(w, " %s |", ratio(a, b))
		}
		fmt.Fprint(w, "\n\n")
	}
	fmt.Fprint(w, "**Cost on Redis per published event (the two nodes together; medians)**\n\n")
	header("run", cost)
	for _, mode := range modes {
		name := fmt.Sprintf("fixed rate, %.0f/s", p.Rate)
		if mode == "flat" {
			name = "flat out"
		}
		fmt.Fprintf(w, "| %s |", name)
		for _, c := range cost {
			fmt.Fprintf(w, " %s |", c.f(med(cellKey{"redis", mode}, c.key)))
		}
		fmt.Fprintln(w)
	}
	return nil
}

type quietRedisLogger struct{}

func (quietRedisLogger) Printf(context.Context, string, ...any) {}

func redisVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "(version unknown)"
	}
	s := strings.TrimSpace(string(out))
	if i := strings.Index(s, " v="); i >= 0 {
		v, _, _ := strings.Cut(s[i+3:], " ")
		return v
	}
	return s
}

// redisCounters counts what the nodes' Redis clients send and receive, and
// their round trips by kind.
type redisCounters struct {
	sent, recv                        atomic.Int64
	publish, fetch, xread, other, all atomic.Int64
}

type countingConn struct {
	net.Conn
	c *redisCounters
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.c.recv.Add(int64(n))
	return n, err
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.c.sent.Add(int64(n))
	return n, err
}

// countHook counts every command (or pipeline) a client sends as one round
// trip. sseredis runs its scripts with Script.Run (EVALSHA, EVAL only on
// NOSCRIPT); the follower's wait is an XREAD.
type countHook struct{ c *redisCounters }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.c.all.Add(1)
		switch strings.ToLower(cmd.Name()) {
		case "evalsha", "eval":
			// publish and fetch scripts take different keys: the publish
			// script's has ten, the fetch script's three.
			if a := cmd.Args(); len(a) > 2 && fmt.Sprint(a[2]) == "10" {
				h.c.publish.Add(1)
			} else if len(a) > 2 && fmt.Sprint(a[2]) == "3" {
				h.c.fetch.Add(1)
			} else {
				h.c.other.Add(1)
			}
		case "xread":
			h.c.xread.Add(1)
		default:
			h.c.other.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.c.all.Add(1)
		h.c.other.Add(1)
		return next(ctx, cmds)
	}
}

// commandCalls sums the calls in INFO commandstats (INFO itself excluded;
// commands run inside scripts included) and the microseconds Redis spent in
// EVALSHA, EVAL and XREAD.
func commandCalls(ctx context.Context, c *redis.Client) (total, usec int64, err error) {
	s, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") || name == "cmdstat_info" {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "calls":
				total += n
			case "usec":
				// The time of a command run inside a script is also part
				// of the script's: count only what the clients send.
				switch name {
				case "cmdstat_evalsha", "cmdstat_eval", "cmdstat_xread":
					usec += n
				}
			}
		}
	}
	return total, usec, nil
}

// redisNode is one hub on its own loopback HTTP server.
type redisNode struct {
	hub    *sse.Hub
	srv    *http.Server
	addr   string
	client *redis.Client
}

func (n *redisNode) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = n.hub.Shutdown(ctx)
	_ = n.srv.Close()
	if n.client != nil {
		_ = n.client.Close()
	}
}

func serveHub(hub *sse.Hub) (*redisNode, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: hub, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return &redisNode{hub: hub, srv: srv, addr: l.Addr().String()}, nil
}

// nodeSnap is what the node process reports at each step.
type nodeSnap struct {
	Seq, CPU, Sent, Recv              int64
	RT, RTPub, RTFetch, RTXread, RTOt int64
	PubP50, PubP99                    int64 // Broadcast call duration, ns, since the previous snap
	Streams                           int
	Slow, Gaps                        uint64
	Err                               string
}

// redisNodeCmd is the server side of one cell ("ssebench redis-node"):
// the hub or hubs and the publisher, driven over stdin/stdout one line at
// a time: "snap", "one" (publish one event), "start" (the publisher),
// "stop"; EOF ends it.
func redisNodeCmd(args []string) error {
	fs := flag.NewFlagSet("redis-node", flag.ExitOnError)
	setup := fs.String("setup", "memory", "memory or redis")
	addr := fs.String("redis", "", "Redis address (setup redis)")
	size := fs.Int("size", 64, "event data bytes")
	rateF := fs.Float64("rate", 0, "events/s; 0 publishes flat out")
	_ = fs.Parse(args)
	redis.SetLogger(quietRedisLogger{})

	var nodes []*redisNode
	defer func() {
		for _, n := range nodes {
			n.close()
		}
	}()
	counters := &redisCounters{}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	switch *setup {
	case "memory":
		hub, err := sse.NewHub(sse.Config{})
		if err != nil {
			return err
		}
		n, err := serveHub(hub)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
	case "redis":
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		for range 2 {
			client := redis.NewClient(&redis.Options{
				Addr: *addr,
				Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
					c, err := dialer.DialContext(ctx, network, addr)
					if err != nil {
						return nil, err
					}
					return countingConn{c, counters}, nil
				},
			})
			client.AddHook(countHook{counters})
			b, err := sseredis.New(client, sseredis.Options{Stream: "bench:events", Logger: quiet})
			if err != nil {
				_ = client.Close()
				return err
			}
			hub, err := sse.NewHub(sse.Config{Broker: b})
			if err != nil {
				_ = b.Close()
				_ = client.Close()
				return err
			}
			n, err := serveHub(hub)
			if err != nil {
				_ = client.Close()
				return err
			}
			n.client = client
			nodes = append(nodes, n)
		}
	default:
		return fmt.Errorf("unknown setup %q", *setup)
	}
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.addr)
	}

	var seq atomic.Uint64
	var pubErr atomic.Pointer[error]
	buf := make([]byte, 0, *size+32)
	var pubHist load.Hist // how long Broadcast takes; reset by every snap
	var histMu sync.Mutex
	publish := func() bool {
		s := seq.Load() + 1
		t := time.Now()
		buf = load.Payload(buf, s, t.UnixNano(), *size)
		if _, err := nodes[int(s)%len(nodes)].hub.Broadcast(sse.Event{Data: buf}); err != nil {
			pubErr.Store(&err)
			return false
		}
		histMu.Lock()
		pubHist.Record(int64(time.Since(t)))
		histMu.Unlock()
		seq.Store(s)
		return true
	}
	stop := make(chan struct{})
	stopped := make(chan struct{})
	snap := func() nodeSnap {
		s := nodeSnap{Seq: int64(seq.Load()), CPU: server.CPUTime(),
			Sent: counters.sent.Load(), Recv: counters.recv.Load(), RT: counters.all.Load(),
			RTPub: counters.publish.Load(), RTFetch: counters.fetch.Load(), RTXread: counters.xread.Load(), RTOt: counters.other.Load()}
		for _, n := range nodes {
			st := n.hub.Stats()
			s.Streams += st.Streams
			s.Slow += st.SlowDisconnects
			s.Gaps += st.BrokerGaps
		}
		if e := pubErr.Load(); e != nil {
			s.Err = (*e).Error()
		}
		histMu.Lock()
		s.PubP50, s.PubP99 = pubHist.Quantile(0.5), pubHist.Quantile(0.99)
		pubHist.Reset()
		histMu.Unlock()
		return s
	}
	out := json.NewEncoder(os.Stdout)
	fmt.Printf("ADDRS %s\n", strings.Join(addrs, ","))
	in := bufio.NewScanner(os.Stdin)
	started := false
	for in.Scan() {
		switch in.Text() {
		case "one":
			publish()
		case "start":
			started = true
			go func() {
				defer close(stopped)
				t0 := time.Now()
				for i := 1; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if *rateF > 0 {
						next := t0.Add(time.Duration(float64(i) / *rateF * float64(time.Second)))
						if d := time.Until(next); d > 0 {
							time.Sleep(d)
						}
					}
					if !publish() {
						return
					}
				}
			}()
		case "stop":
			if started {
				close(stop)
				<-stopped
				started = false
			}
		}
		if err := out.Encode(snap()); err != nil {
			return err
		}
	}
	return nil
}

// node is the driver's handle on a redis-node process.
type nodeProc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	addrs []string
}

func startNode(pin bool, args ...string) (*nodeProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args = append([]string{"redis-node"}, args...)
	var cmd *exec.Cmd
	if pin {
		cmd = exec.Command("taskset", append([]string{"-c", serverCPU, self}, args...)...)
	} else {
		cmd = exec.Command(self, args...)
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outR, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &nodeProc{cmd: cmd, in: in, out: bufio.NewScanner(outR)}
	n.out.Buffer(make([]byte, 64<<10), 1<<20)
	if !n.out.Scan() {
		n.close()
		return nil, errors.New("redis-node exited before it was ready")
	}
	line, ok := strings.CutPrefix(n.out.Text(), "ADDRS ")
	if !ok {
		n.close()
		return nil, fmt.Errorf("redis-node: unexpected %q", n.out.Text())
	}
	n.addrs = strings.Split(line, ",")
	return n, nil
}

func (n *nodeProc) do(cmd string) (nodeSnap, error) {
	var s nodeSnap
	if _, err := io.WriteString(n.in, cmd+"\n"); err != nil {
		return s, err
	}
	if !n.out.Scan() {
		return s, errors.New("redis-node exited")
	}
	if err := json.Unmarshal(n.out.Bytes(), &s); err != nil {
		return s, err
	}
	if s.Err != "" {
		return s, fmt.Errorf("publish: %s", s.Err)
	}
	return s, nil
}

func (n *nodeProc) close() {
	_ = n.in.Close()
	done := make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = n.cmd.Process.Kill()
		<-done
	}
}

// redisRun measures one cell: setup "memory" or "redis", mode "rate" or
// "flat".
func redisRun(p redisParams, pin bool, setup, mode string) (map[string]float64, error) {
	args := []string{"-setup", setup, "-size", strconv.Itoa(p.Size)}
	if mode == "rate" {
		args = append(args, "-rate", strconv.FormatFloat(p.Rate, 'f', -1, 64))
	}
	var rp *redisproc.Server
	var info *redis.Client
	if setup == "redis" {
		var err error
		rp, err = redisproc.Start(p.Bin, false)
		if err != nil {
			return nil, err
		}
		defer rp.Stop()
		info = redis.NewClient(&redis.Options{Addr: rp.Addr})
		defer info.Close()
		args = append(args, "-redis", rp.Addr)
	}
	node, err := startNode(pin, args...)
	if err != nil {
		return nil, err
	}
	defer node.close()

	// Clients, split evenly over the nodes.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shared := &load.Shared{}
	if mode == "flat" {
		shared.SampleEvery = 16
	}
	sem := make(chan struct{}, 64)
	var clients []*load.Client
	defer func() {
		cancel()
		for _, c := range clients {
			c.Wait()
		}
	}()
	for i := range p.Streams {
		addr := node.addrs[i%len(node.addrs)]
		clients = append(clients, load.Start(ctx, load.Spec{Addr: addr, Path: "/"}, shared, sem))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := node.do("snap")
		if err != nil {
			return nil, err
		}
		if s.Streams >= p.Streams {
			break
		}
		if shared.Failed.Load() > 0 {
			return nil, errors.New("a client failed to connect")
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d streams after 30 s", s.Streams, p.Streams)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// All streams live first: one event each.
	if _, err := node.do("one"); err != nil {
		return nil, err
	}
	deadline = time.Now().Add(10 * time.Second)
	for shared.Live.Load() < int64(p.Streams) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d streams received the first event", shared.Live.Load(), p.Streams)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := node.do("start"); err != nil {
		return nil, err
	}

	type snap struct {
		at        time.Time
		n         nodeSnap
		recv, cpu int64
		cmds      int64
		usec      int64
		rcpu      time.Duration
	}
	take := func() (snap, error) {
		n, err := node.do("snap")
		s := snap{at: time.Now(), n: n, recv: shared.Received.Load(), cpu: server.CPUTime()}
		if err != nil {
			return s, err
		}
		if rp != nil {
			s.rcpu = procstat.CPU(rp.Pid())
			c, u, err := commandCalls(context.Background(), info)
			if err != nil {
				return s, err
			}
			s.cmds, s.usec = c, u
		}
		return s, nil
	}
	time.Sleep(p.Warm)
	a, err := take()
	if err != nil {
		return nil, err
	}
	shared.Recording.Store(true)
	time.Sleep(p.Window)
	shared.Recording.Store(false)
	b, err := take()
	if err != nil {
		return nil, err
	}
	end, err := node.do("stop")
	if err != nil {
		return nil, err
	}
	// Drain: every client should get the last event.
	last := uint64(end.Seq)
	deadline = time.Now().Add(10 * time.Second)
	lastRecv, lastChange := shared.Received.Load(), time.Now()
	for {
		done := true
		for _, c := range clients {
			if c.Seq() < last {
				select {
				case <-c.Done():
				default:
					done = false
				}
			}
			if !done {
				break
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		if r := shared.Received.Load(); r != lastRecv {
			lastRecv, lastChange = r, time.Now()
		} else if time.Since(lastChange) > 2*time.Second {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fin, err := node.do("snap")
	if err != nil {
		return nil, err
	}
	cancel()
	var got, want int64
	for _, c := range clients {
		c.Wait()
		got += c.Received
		if c.FirstSeq != 0 {
			want += int64(last - c.FirstSeq + 1)
		}
	}

	win := b.at.Sub(a.at).Seconds()
	pub := float64(b.n.Seq - a.n.Seq)
	recv := float64(b.recv - a.recv)
	m := map[string]float64{
		"published_per_s":          pub / win,
		"delivered_per_s":          recv / win,
		"p50_ms":                   float64(shared.Latency.Quantile(0.50)) / 1e6,
		"p99_ms":                   float64(shared.Latency.Quantile(0.99)) / 1e6,
		"max_ms":                   float64(shared.Latency.Max()) / 1e6,
		"delivered_pct":            100 * float64(got) / math.Max(1, float64(want)),
		"hub_cpu_us_per_delivered": float64(b.n.CPU-a.n.CPU) / 1e3 / math.Max(1, recv),
		"pub_p50_ms":               float64(b.n.PubP50) / 1e6,
		"pub_p99_ms":               float64(b.n.PubP99) / 1e6,
		"hub_cpu_pct":              100 * float64(b.n.CPU-a.n.CPU) / 1e9 / win,
		"load_cpu_pct":             100 * float64(b.cpu-a.cpu) / 1e9 / win,
		"slow_disconnects":         float64(fin.Slow),
		"broker_gaps":              float64(fin.Gaps),
	}
	if fin.Slow > 0 || fin.Gaps > 0 {
		fmt.Fprintf(os.Stderr, "    %s %s: %d slow disconnects, %d broker gaps\n", setup, mode, fin.Slow, fin.Gaps)
	}
	if rp != nil {
		pe := math.Max(1, pub)
		m["redis_cpu_pct"] = 100 * (b.rcpu - a.rcpu).Seconds() / win
		m["redis_cpu_us_per_event"] = float64((b.rcpu - a.rcpu).Microseconds()) / pe
		m["rt_per_event"] = float64(b.n.RT-a.n.RT) / pe
		m["rt_publish"] = float64(b.n.RTPub-a.n.RTPub) / pe
		m["rt_fetch"] = float64(b.n.RTFetch-a.n.RTFetch) / pe
		m["rt_xread"] = float64(b.n.RTXread-a.n.RTXread) / pe
		m["rt_other"] = float64(b.n.RTOt-a.n.RTOt) / pe
		m["cmds_per_event"] = float64(b.cmds-a.cmds) / pe
		m["cmd_us_per_event"] = float64(b.usec-a.usec) / pe
		m["sent_per_event"] = float64(b.n.Sent-a.n.Sent) / pe
		m["recv_per_event"] = float64(b.n.Recv-a.n.Recv) / pe
	}
	return m, nil
}
