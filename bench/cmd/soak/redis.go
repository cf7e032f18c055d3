package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	sse "github.com/ssehub/sse"
	"github.com/ssehub/sse/bench/internal/redisproc"
	"github.com/ssehub/sse/sseredis"
)

// redisServer is the Redis of a -redis run. With "auto", the soak starts a
// primary and a replica of it (through a proxy, so that the soak can keep
// writes from the replica), and may restart, freeze, flush and fail over
// the primary; the nodes reach the primary through their own proxies,
// which a failover points at the new one. Otherwise it is the Redis at a
// given address, which the soak only cuts the nodes from.
type redisServer struct {
	bin    string
	stream string // the broker's stream: its epoch key is stream+":epoch"

	mu      sync.Mutex
	addr    string            // the primary's address
	primary *redisproc.Server // nil: not the soak's
	replica *redisproc.Server // nil: none at the moment
	repl    *proxy            // between the replica and the primary
}

// startRedis starts, when addr is "auto", a redis-server on a free
// loopback port with an append-only file synced on every write (so that a
// restart loses nothing) and a replica of it; otherwise it uses the Redis
// at addr.
func startRedis(addr, bin, stream string) (*redisServer, error) {
	rs := &redisServer{bin: bin, stream: stream, addr: addr}
	if addr != "auto" {
		return rs, nil
	}
	p, err := redisproc.Start(bin, true)
	if err != nil {
		return nil, fmt.Errorf("-redis auto: %w", err)
	}
	rs.primary, rs.addr = p, p.Addr
	if err := rs.startReplica(p.Addr); err != nil {
		p.Stop()
		return nil, fmt.Errorf("-redis auto: replica: %w", err)
	}
	return rs, nil
}

// startReplica starts a replica of primary, through a new proxy, and
// waits for its first synchronisation.
func (rs *redisServer) startReplica(primary string) error {
	pr, err := newProxy(primary)
	if err != nil {
		return err
	}
	s, err := redisproc.StartReplica(rs.bin, true, pr.addr())
	if err != nil {
		pr.close()
		return err
	}
	rs.mu.Lock()
	rs.replica, rs.repl = s, pr
	rs.mu.Unlock()
	return rs.awaitSync(s, 10*time.Second)
}

// awaitSync waits until the replica s has synchronised with its primary.
func (rs *redisServer) awaitSync(s *redisproc.Server, max time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), max)
	defer cancel()
	for !s.InSync(ctx) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the replica at %s did not synchronise within %v", s.Addr, max)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func (rs *redisServer) stop() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, s := range []*redisproc.Server{rs.primary, rs.replica} {
		if s != nil {
			s.Stop()
		}
	}
	if rs.repl != nil {
		rs.repl.close()
	}
}

// contents reads what the server at addr holds of the broker's stream: the
// event numbers of its entries, and its epoch key.
func (rs *redisServer) contents(addr string) (map[int]bool, string, error) {
	c := rs.client(addr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	epoch, err := c.Get(ctx, rs.stream+":epoch").Result()
	if err != nil && err != redis.Nil {
		return nil, "", err
	}
	entries, err := c.XRange(ctx, rs.stream, "-", "+").Result()
	if err != nil {
		return nil, "", err
	}
	gs := make(map[int]bool, len(entries))
	for _, e := range entries {
		bodies, err := entryBodies(e.Values)
		if err != nil {
			return nil, "", fmt.Errorf("stream entry %s: %w", e.ID, err)
		}
		for _, b := range bodies {
			g, ok := messageG([]byte(b))
			if !ok {
				return nil, "", fmt.Errorf("stream entry %s holds no soak event: %q", e.ID, b)
			}
			gs[g] = true
		}
	}
	return gs, epoch, nil
}

// entryBodies returns the bodies of the events a stream entry of sseredis
// holds, read as its package documentation describes the entries: "d",
// the events' records one after the other, each
// " <len(audience)> <len(ID)> <len(Key)> <len(Body)>\n" and the four; or,
// in an entry of an earlier version, the one event's body in "b".
func entryBodies(values map[string]any) ([]string, error) {
	d, ok := values["d"].(string)
	if !ok {
		b, _ := values["b"].(string)
		return []string{b}, nil
	}
	var bodies []string
	for d != "" {
		head, rest, ok := strings.Cut(d, "\n")
		f := strings.Fields(head)
		if !ok || len(f) != 4 {
			return nil, fmt.Errorf("bad record header %.60q", head)
		}
		var n [4]int
		total := 0
		for i := range n {
			v, err := strconv.Atoi(f[i])
			if err != nil || v < 0 {
				return nil, fmt.Errorf("bad record header %.60q", head)
			}
			n[i], total = v, total+v
		}
		if total > len(rest) {
			return nil, fmt.Errorf("truncated record %.60q", head)
		}
		skip := n[0] + n[1] + n[2]
		bodies = append(bodies, rest[skip:skip+n[3]])
		d = rest[total:]
	}
	if n, ok := values["n"].(string); ok && n != strconv.Itoa(len(bodies)) {
		return nil, fmt.Errorf("%d records, the entry says %s", len(bodies), n)
	}
	return bodies, nil
}

// epochWord returns the epoch of an epoch key's value, "<epoch> <base>".
func epochWord(v string) string {
	w, _, _ := strings.Cut(v, " ")
	return w
}

// redisNode starts a hub on sseredis, its Redis client going through a
// proxy the soak can pause and point at another server.
func redisNode(r *run, cfg sse.Config, redisAddr, stream string) (*node, error) {
	p, err := newProxy(redisAddr)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: p.addr(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	b, err := sseredis.New(rdb, sseredis.Options{Stream: stream, History: cfg.History, Block: time.Second, Logger: cfg.Logger})
	if err != nil {
		p.close()
		return nil, err
	}
	t := &tap{Broker: b, r: r, node: len(r.nodes)}
	cfg.Broker = t
	hub, err := sse.NewHub(cfg)
	if err != nil {
		_ = b.Close()
		p.close()
		return nil, err
	}
	n, err := serve(hub)
	if err != nil {
		return nil, err
	}
	n.proxy, n.tap = p, t
	n.close = func() {
		_ = rdb.Close()
		p.close()
	}
	return n, nil
}

// tap is the node's sseredis broker, recording the position each publish
// got and each delivery carries, so that the soak's clients know which
// event a position stands for, and what its follower delivered: the
// newest event, and its epoch. ComparePositions (and whatever else
// sseredis.Broker offers the hub) comes with the embedded Broker.
type tap struct {
	*sseredis.Broker
	r         *run
	node      int
	delivered atomic.Int64           // the newest event its follower delivered
	epoch     atomic.Pointer[string] // the epoch of its follower's deliveries
	lastNews  atomic.Int64           // when the follower last told the hub anything (UnixNano)
}

func (t *tap) Publish(ctx context.Context, m *sse.Message) error {
	err := t.Broker.Publish(ctx, m)
	if err == nil {
		if g, ok := messageG(m.Body); ok {
			t.r.ledger.learn(m.Pos, g)
		}
	}
	return err
}

func (t *tap) Subscribe(h sse.BrokerHandler) (string, error) {
	last, err := t.Broker.Subscribe(tapHandler{h: h, t: t})
	if err == nil {
		t.r.ledger.era(last)
		t.setEpoch(last)
	}
	return last, err
}

func (t *tap) setEpoch(pos string) {
	e, _ := splitPos(pos)
	if old := t.epoch.Load(); old == nil || *old != e {
		t.epoch.Store(&e)
	}
}

// tapHandler sees what the follower tells the hub before the hub does.
type tapHandler struct {
	h sse.BrokerHandler
	t *tap
}

func (th tapHandler) HandleMessage(m *sse.Message) {
	th.t.lastNews.Store(time.Now().UnixNano())
	if g, ok := messageG(m.Body); ok {
		th.t.r.ledger.learn(m.Pos, g)
		if int64(g) > th.t.delivered.Load() {
			th.t.delivered.Store(int64(g))
		}
	}
	th.t.setEpoch(m.Pos)
	th.h.HandleMessage(m)
}

func (th tapHandler) HandleGap(pos string) {
	th.t.lastNews.Store(time.Now().UnixNano())
	g, _ := th.t.r.ledger.g(pos)
	th.t.r.debugf("node %d: gap at %s (event %d), having delivered event %d", th.t.node, pos, g, th.t.delivered.Load())
	th.t.setEpoch(pos)
	th.h.HandleGap(pos)
}

func (th tapHandler) HandleEpoch(pos string) {
	th.t.lastNews.Store(time.Now().UnixNano())
	g, _ := th.t.r.ledger.g(pos)
	th.t.r.debugf("node %d: epoch at %s (event %d), having delivered event %d", th.t.node, pos, g, th.t.delivered.Load())
	th.t.setEpoch(pos)
	th.h.HandleEpoch(pos)
}

func (th tapHandler) HandleDisconnect(clientID string) { th.h.HandleDisconnect(clientID) }

// messageG returns the event number of an encoded soak event.
func messageG(body []byte) (int, bool) {
	i := bytes.Index(body, []byte("data: "))
	if i < 0 {
		return 0, false
	}
	line, _, _ := bytes.Cut(body[i+len("data: "):], []byte("\n"))
	_, _, g, err := parseData(line)
	return g, err == nil
}

// proxy forwards TCP connections to an upstream address, and can pause:
// it then holds what it has read and stops reading, as a network that
// stops delivering packets would, until it resumes. Its upstream can be
// changed: the connections it holds are then cut.
type proxy struct {
	ln     net.Listener
	mu     sync.Mutex
	cond   *sync.Cond
	up     string
	paused bool
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newProxy(upstream string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, up: upstream, conns: make(map[net.Conn]struct{})}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Go(p.accept)
	return p, nil
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) upstream() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.upstream(), time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		if !p.track(c, up) {
			return
		}
		p.wg.Go(func() { p.pipe(up, c) })
		p.wg.Go(func() { p.pipe(c, up) })
	}
}

func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst, holding each chunk while paused.
func (p *proxy) pipe(dst, src net.Conn) {
	defer func() {
		_ = dst.Close()
		_ = src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.paused && !p.closed {
				p.cond.Wait()
			}
			closed := p.closed
			p.mu.Unlock()
			if closed {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF, or the connection closed
		}
	}
}

func (p *proxy) pause(on bool) {
	p.mu.Lock()
	p.paused = on
	p.cond.Broadcast()
	p.mu.Unlock()
}

// redirect sends new connections to upstream, and cuts those it holds
// (what a paused one held is dropped).
func (p *proxy) redirect(upstream string) {
	p.mu.Lock()
	p.up = upstream
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}

// client returns a client of the server at addr, not through a proxy.
func (rs *redisServer) client(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
}
