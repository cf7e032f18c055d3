// Command soak runs a hub (or, with -redis, two hubs on one Redis) under
// faults for a set time and checks that no client loses or duplicates an
// event: N real TCP clients on loopback, each following the broadcast, a
// few topics and its own client ID, while the soak publishes
// sequence-numbered events at a set rate and injects faults. Clients drop
// at random moments (clean closes and abrupt resets), stop reading for a
// while, are disconnected by the hub, and reconnect with Last-Event-ID (to
// the other node, with -redis); bursts of events overflow the history.
// With -redis auto the soak starts a Redis primary and a replica, and in
// turn fails over to the replica after cutting it off from the last
// writes, empties Redis (FLUSHALL), cuts one node's link to Redis while
// the other publishes (a loopback TCP proxy the soak controls), freezes
// Redis (SIGSTOP) and restarts it.
//
// Every client checks each audience's sequence: gap-free and
// duplicate-free, or one reset, due only when an event it may receive,
// after its resume point, has really left the history, or Redis lost data
// after its resume point's epoch began. What Redis lost (the soak reads
// the stream around each loss) a client may miss only if it was told: by
// a reset, or a start, in the lineage after the loss. At the end the run
// calms down, publishes a fence, waits for every client to reach it and
// counts what anyone never got. The last line is
//
//	published=N delivered=N lost=N duplicated=N resets=N spurious_resets=N reconnects=N silent_gaps=N goroutines_after=N
//
// and the exit status is 1 when lost, duplicated, spurious_resets,
// silent_gaps or goroutines_after is not 0, any client saw the protocol
// broken, or a fault could not be injected as it should.
//
//	go run ./cmd/soak                                   # 30 s, 200 clients, in-memory broker
//	go run ./cmd/soak -redis auto                        # two nodes on a redis-server the soak starts
//	go run ./cmd/soak -clients 2000 -duration 10m        # the long run of RELIABILITY.md
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sse "github.com/ssehub/sse"
)

// node is one hub served on a loopback port.
type node struct {
	hub   *sse.Hub
	srv   *http.Server
	addr  string
	close func() // after Shutdown: what else the node holds (its Redis client, its proxy)
	proxy *proxy // between the node and Redis, with -redis
	tap   *tap   // its broker, with -redis
}

// run is one soak.
type run struct {
	seed    uint64
	start   time.Time
	topics  int
	history int
	life    time.Duration
	rcvbuf  int
	redis   bool
	verbose bool
	nodes   []*node
	ledger  *ledger
	calm    atomic.Bool // no more faults: the run is reaching its fence
	faults  struct {
		closes, aborts, stalls, disconnects, bursts                atomic.Int64
		restarts, pauses, stallBursts, flushes, freezes, failovers atomic.Int64
	}
	faultErrs atomic.Int64 // faults that could not be injected as they should
	pubMu     sync.Mutex   // held across each publish: the ledger's order is Redis's
	stalled   atomic.Int32 // 1 + the node whose link to Redis is cut, or 0
	frozen    atomic.Bool  // Redis is stopped (SIGSTOP)
	warnings  atomic.Int64
	logged    atomic.Int64
	nclients  int
}

func (r *run) clientAudience(i int) audience { return 1 + r.topics + i }

func (r *run) logf(format string, args ...any) {
	if r.logged.Add(1) <= 200 {
		var at float64
		if !r.start.IsZero() {
			at = time.Since(r.start).Seconds()
		}
		fmt.Fprintf(os.Stderr, "soak: %6.2fs "+format+"\n", append([]any{at}, args...)...)
	}
}

func (r *run) debugf(format string, args ...any) {
	if r.verbose {
		r.logf(format, args...)
	}
}

// positionG returns the event number a position stands for.
func (r *run) positionG(pos string) (int, bool) {
	if !r.redis {
		// The in-memory broker's positions are "<epoch>-<sequence>", and
		// the soak publishes every event it has.
		i := strings.LastIndexByte(pos, '-')
		g, err := strconv.Atoi(pos[i+1:])
		return g, i > 0 && err == nil
	}
	// Redis positions are learned from the publisher and the clients; the
	// position of the newest event may reach a client just before either.
	for range 600 {
		if g, ok := r.ledger.g(pos); ok {
			return g, true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, false
}

func main() {
	os.Exit(soak())
}

func soak() int {
	var (
		clients     = flag.Int("clients", 200, "clients, each with its own client ID")
		duration    = flag.Duration("duration", 30*time.Second, "how long faults are injected (the fence and shutdown follow)")
		rate        = flag.Float64("rate", 200, "events published per second, besides bursts")
		topics      = flag.Int("topics", 8, "topics; each client follows about a third of them")
		history     = flag.Int("history", 0, "events kept for replay (0: 1024, or 256 with -redis)")
		queue       = flag.Int("queue", 16<<10, "Config.QueueBytes: small, so that stalled clients overflow")
		life        = flag.Duration("life", 2*time.Second, "mean time until a connection's fault")
		burstEvery  = flag.Duration("burst-every", 5*time.Second, "how often a burst of 1.5 × history events is published (0: never)")
		disconnects = flag.Float64("disconnects", 5, "Hub.Disconnect calls per second")
		redisAddr   = flag.String("redis", "", `run two hubs on one Redis: "auto" starts a redis-server and a replica (and injects the Redis faults), or the address of one (only link stalls)`)
		redisBin    = flag.String("redis-server", "redis-server", "the redis-server binary for -redis auto")
		redisFaults = flag.Duration("redis-faults", 5*time.Second, "with -redis: how often a Redis fault starts; in turn, with auto: a failover, a FLUSHALL, a stall of a node's link, a freeze (SIGSTOP), a restart")
		pause       = flag.Duration("pause", 3*time.Second, "with -redis: how long a stall of a node's link to Redis lasts, at least")
		seed        = flag.Uint64("seed", 0, "random seed (0: from the clock)")
		verbose     = flag.Bool("v", false, "log more")
		hijack      = flag.Bool("hijack", false, "Config.Hijack: the hubs take the connections over (no writer goroutine while a stream is idle)")
		poll        = flag.Bool("poll", false, "Config.Hijack and Config.Poll: no goroutine at all while a stream is idle (Linux)")
	)
	flag.Parse()
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	if *history == 0 {
		*history = 1024
		if *redisAddr != "" {
			*history = 256
		}
	}
	before := runtime.NumGoroutine()
	r := &run{seed: *seed, start: time.Now(), topics: *topics, history: *history, life: *life, rcvbuf: 4096,
		redis: *redisAddr != "", verbose: *verbose, nclients: *clients}
	r.ledger = newLedger(1 + *topics + *clients)

	cfg := sse.Config{
		ClientID: func(req *http.Request) (string, error) {
			if id := req.URL.Query().Get("id"); id != "" {
				return id, nil
			}
			return "", fmt.Errorf("no id")
		},
		Topics: func(req *http.Request) ([]string, error) {
			if t := req.URL.Query().Get("topics"); t != "" {
				return strings.Split(t, ","), nil
			}
			return nil, nil
		},
		History:      *history,
		QueueBytes:   *queue,
		Heartbeat:    time.Second,
		WriteTimeout: 2 * time.Second,
		Logger:       slog.New(&countingHandler{r: r}),
		Hijack:       *hijack || *poll,
		Poll:         *poll,
	}
	var rs *redisServer
	if r.redis {
		var err error
		stream := "soak:" + strconv.FormatUint(*seed, 36)
		if rs, err = startRedis(*redisAddr, *redisBin, stream); err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			return 1
		}
		for range 2 {
			n, err := redisNode(r, cfg, rs.addr, stream)
			if err != nil {
				fmt.Fprintln(os.Stderr, "soak:", err)
				return 1
			}
			r.nodes = append(r.nodes, n)
		}
	} else {
		hub, err := sse.NewHub(cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			return 1
		}
		n, err := serve(hub)
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			return 1
		}
		r.nodes = append(r.nodes, n)
	}
	fmt.Fprintf(os.Stderr, "soak: seed=%d clients=%d duration=%v rate=%v history=%d redis=%v hijack=%v poll=%v\n",
		*seed, *clients, *duration, *rate, *history, *redisAddr, *hijack || *poll, *poll)

	ctx, stopClients := context.WithCancel(context.Background())
	cs := make([]*client, *clients)
	var wg sync.WaitGroup
	for i := range cs {
		cs[i] = newClient(r, i)
		wg.Go(func() { cs[i].loop(ctx) })
	}

	rng := rand.New(rand.NewPCG(*seed, 1<<40))
	faultsDone := make(chan struct{})
	var faults sync.WaitGroup
	faults.Go(func() { r.injectDisconnects(rng.Uint64(), *disconnects, faultsDone) })
	if r.redis {
		faults.Go(func() { r.injectRedisFaults(rs, *redisFaults, *pause, faultsDone) })
		if r.verbose {
			faults.Go(func() { r.watchFollowers(faultsDone) })
		}
	}
	r.publish(rand.New(rand.NewPCG(*seed, 1<<41)), *rate, *duration, *burstEvery)
	close(faultsDone)
	faults.Wait()
	r.calm.Store(true)

	// The fence: one more broadcast, which every client must reach.
	gFence := r.publishOne(0, "fence", 0)
	for gFence == 0 {
		time.Sleep(100 * time.Millisecond) // Redis may still be coming back
		gFence = r.publishOne(0, "fence", 0)
	}
	unfenced := len(cs)
	for deadline := time.Now().Add(60 * time.Second); unfenced > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		unfenced = 0
		for _, c := range cs {
			if c.reached.Load() < int64(gFence) {
				unfenced++
			}
		}
	}
	stopClients()
	wg.Wait()

	var tot client
	for _, c := range cs {
		c.finish(gFence)
		tot.delivered += c.delivered
		tot.lost += c.lost
		tot.silent += c.silent
		tot.dups += c.dups
		tot.resets += c.resets
		tot.spurious += c.spurious
		tot.ambiguous += c.ambiguous
		tot.lossResets += c.lossResets
		tot.reconnects += c.reconnects
		tot.errs += c.errs
	}

	var st sse.Stats
	for _, n := range r.nodes {
		s := n.hub.Stats()
		st.Replays += s.Replays
		st.Resets += s.Resets
		st.SlowDisconnects += s.SlowDisconnects
		st.Refused += s.Refused
		st.BrokerGaps += s.BrokerGaps
		st.BrokerEpochs += s.BrokerEpochs
		st.ReplayFailures += s.ReplayFailures
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := n.hub.Shutdown(sctx); err != nil {
			fmt.Fprintln(os.Stderr, "soak: hub.Shutdown:", err)
			tot.errs++
		}
		cancel()
		_ = n.srv.Close()
		if n.close != nil {
			n.close()
		}
	}
	if rs != nil {
		rs.stop()
	}
	after := settle(before)

	ok, pubFailed := r.ledger.counts()
	f := &r.faults
	fmt.Printf("soak: faults: closes=%d aborts=%d stalls=%d hub_disconnects=%d bursts=%d redis_restarts=%d link_stalls=%d stall_bursts=%d flushes=%d freezes=%d failovers=%d fault_errors=%d\n",
		f.closes.Load(), f.aborts.Load(), f.stalls.Load(), f.disconnects.Load(), f.bursts.Load(), f.restarts.Load(), f.pauses.Load(),
		f.stallBursts.Load(), f.flushes.Load(), f.freezes.Load(), f.failovers.Load(), r.faultErrs.Load())
	fmt.Printf("soak: seed=%d publish_failed=%d data_losses=%d redis_lost=%d loss_resets=%d ambiguous_resets=%d protocol_errors=%d unfenced=%d hub_replays=%d hub_resets=%d slow_disconnects=%d refused=%d broker_gaps=%d broker_epochs=%d replay_failures=%d hub_warnings=%d\n",
		*seed, pubFailed, r.ledger.lossCount(), r.ledger.lost(), tot.lossResets, tot.ambiguous, tot.errs, unfenced, st.Replays, st.Resets,
		st.SlowDisconnects, st.Refused, st.BrokerGaps, st.BrokerEpochs, st.ReplayFailures, r.warnings.Load())
	fmt.Printf("published=%d delivered=%d lost=%d duplicated=%d resets=%d spurious_resets=%d reconnects=%d silent_gaps=%d goroutines_after=%d\n",
		ok, tot.delivered, tot.lost, tot.dups, tot.resets, tot.spurious, tot.reconnects, tot.silent, after)
	if tot.lost != 0 || tot.dups != 0 || tot.spurious != 0 || tot.silent != 0 || after != 0 || tot.errs != 0 || unfenced != 0 || r.faultErrs.Load() != 0 {
		return 1
	}
	return 0
}

// serve serves hub on a loopback port.
func serve(hub *sse.Hub) (*node, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/sse", hub)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(smallBuffers{ln}) }()
	return &node{hub: hub, srv: srv, addr: ln.Addr().String()}, nil
}

// smallBuffers gives each accepted connection a small send buffer, as a
// slow network path would: on loopback the kernel would otherwise absorb
// megabytes for a client that stops reading, and the hub's own bound on its
// queue (Config.QueueBytes) would never be reached.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// publish publishes events at rate for d, mixing broadcasts, topic
// publishes and sends, with a burst of 1.5 × history events every
// burstEvery, to everyone or to one topic in turn.
func (r *run) publish(rng *rand.Rand, rate float64, d, burstEvery time.Duration) {
	const quiet = time.Second
	start := time.Now()
	nextBurst := start.Add(burstEvery)
	burstTo := audience(0) // the audience of the next burst
	for n := 0; ; n++ {
		now := time.Now()
		if now.Sub(start) >= d {
			return
		}
		if burstEvery > 0 && now.After(nextBurst) {
			r.faults.bursts.Add(1)
			for range r.history * 3 / 2 {
				r.publishOne(burstTo, "", rng.IntN(2))
			}
			nextBurst = time.Now().Add(burstEvery)
			// Every other burst goes to one topic, after a second in which
			// only that topic gets events: clients that do not follow it,
			// and were away, must then resume exactly from before the
			// history.
			burstTo = 0
			if r.faults.bursts.Load()%2 == 1 {
				burstTo = 1 + rng.IntN(r.topics)
			}
		}
		if at := start.Add(time.Duration(float64(n) / rate * float64(time.Second))); at.After(now) {
			time.Sleep(at.Sub(now))
		}
		var a audience
		switch p := rng.IntN(10); {
		case burstTo != 0 && time.Until(nextBurst) < quiet:
			a = burstTo
		case p < 4:
			a = 0
		case p < 8:
			a = 1 + rng.IntN(r.topics)
		default:
			a = r.clientAudience(rng.IntN(r.nclients))
		}
		r.publishOne(a, "", rng.IntN(2))
	}
}

// publishOne publishes the next event of a through node nodeIdx (modulo
// the nodes; the other one if that one's link to Redis is cut) and returns
// its event number, or 0 if Publish failed. Publishes are serialised, so
// that the ledger's order is the stream's.
func (r *run) publishOne(a audience, typ string, nodeIdx int) int {
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	i := nodeIdx % len(r.nodes)
	if int(r.stalled.Load()) == i+1 {
		i = (i + 1) % len(r.nodes)
	}
	g, aseq := r.ledger.add(a)
	ev := sse.Event{Type: typ, Data: eventData(a, aseq, g)}
	hub := r.nodes[i].hub
	var err error
	switch {
	case a == 0:
		_, err = hub.Broadcast(ev)
	case a <= r.topics:
		_, err = hub.Publish("t"+strconv.Itoa(a-1), ev)
	default:
		_, err = hub.Send("c"+strconv.Itoa(a-1-r.topics), ev)
	}
	r.ledger.settle(g, err == nil, "")
	if err != nil {
		r.debugf("publish %d: %v", g, err)
		return 0
	}
	return g
}

// injectDisconnects calls Hub.Disconnect for random clients, perSec times
// a second, until done.
func (r *run) injectDisconnects(seed uint64, perSec float64, done <-chan struct{}) {
	if perSec <= 0 {
		return
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	t := time.NewTicker(time.Duration(float64(time.Second) / perSec))
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			id := "c" + strconv.Itoa(rng.IntN(r.nclients))
			for _, n := range r.nodes {
				if n.hub.Disconnect(id) > 0 {
					r.faults.disconnects.Add(1)
				}
			}
		}
	}
}

// settle waits for the goroutines to come back to before, and returns how
// many more there are.
func settle(before int) int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine() - before
		if n <= 0 || time.Now().After(deadline) {
			if n > 0 {
				buf := make([]byte, 1<<20)
				fmt.Fprintf(os.Stderr, "soak: goroutines left after Shutdown:\n%s\n", buf[:runtime.Stack(buf, true)])
			}
			return max(n, 0)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// countingHandler counts the hub's warnings and prints the first few.
type countingHandler struct{ r *run }

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *countingHandler) Handle(_ context.Context, rec slog.Record) error {
	if h.r.warnings.Add(1) <= 60 {
		var b strings.Builder
		rec.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
		h.r.debugf("hub: %s%s", rec.Message, b.String())
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
