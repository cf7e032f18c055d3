package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	sse "github.com/ssehub/sse"
	"github.com/ssehub/sse/bench/internal/redisproc"
	"github.com/ssehub/sse/sseredis"
)

// redisServer is the Redis of a -redis run: one the soak started, which it
// can restart, or one at a given address (proc nil), which it cannot.
type redisServer struct {
	addr string
	proc *redisproc.Server
}

// startRedis starts a redis-server on a free loopback port when addr is
// "auto", with an append-only file synced on every write, so that a
// restart loses nothing; otherwise it uses the Redis at addr.
func startRedis(addr, bin string) (*redisServer, error) {
	if addr != "auto" {
		return &redisServer{addr: addr}, nil
	}
	p, err := redisproc.Start(bin, true)
	if err != nil {
		return nil, fmt.Errorf("-redis auto: %w", err)
	}
	return &redisServer{addr: p.Addr, proc: p}, nil
}

func (rs *redisServer) stop() {
	if rs.proc != nil {
		rs.proc.Stop()
	}
}

// redisNode starts a hub on sseredis, its Redis client going through a
// proxy the soak can pause.
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
	cfg.Broker = &tap{Broker: b, r: r}
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
	n.proxy = p
	n.close = func() {
		_ = rdb.Close()
		p.close()
	}
	return n, nil
}

// tap is the node's sseredis broker, recording the position each publish
// got: the soak's clients need to know which event a position marker
// stands for. ComparePositions comes with the embedded Broker.
type tap struct {
	*sseredis.Broker
	r *run
}

func (t *tap) Publish(ctx context.Context, m *sse.Message) error {
	err := t.Broker.Publish(ctx, m)
	if err == nil {
		if i := bytes.Index(m.Body, []byte("data: ")); i >= 0 {
			line, _, _ := bytes.Cut(m.Body[i+len("data: "):], []byte("\n"))
			if _, _, g, err := parseData(line); err == nil {
				t.r.ledger.learn(m.Pos, g)
			}
		}
	}
	return err
}

func (t *tap) Subscribe(h sse.BrokerHandler) (string, error) {
	last, err := t.Broker.Subscribe(h)
	if err == nil && t.r.ledger.published() == 0 {
		t.r.ledger.learn(last, 0) // the stream is new: before the first event
	}
	return last, err
}

// injectRedisFaults restarts Redis (when the soak started it) and pauses a
// node's link to it, in turn, every every, until done.
func (r *run) injectRedisFaults(rs *redisServer, every, pause time.Duration, done <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-done:
			return
		case <-t.C:
		}
		if i%2 == 0 && rs.proc != nil {
			if err := rs.proc.Restart(500 * time.Millisecond); err != nil {
				r.logf("redis restart: %v", err)
			}
			r.faults.restarts.Add(1)
			r.debugf("redis restarted")
			continue
		}
		p := r.nodes[i/2%len(r.nodes)].proxy
		p.pause(true)
		r.faults.pauses.Add(1)
		r.debugf("link to redis paused")
		select {
		case <-done:
		case <-time.After(pause):
		}
		p.pause(false)
	}
}

// proxy forwards TCP connections to an upstream address, and can pause:
// it then holds what it has read and stops reading, as a network that
// stops delivering packets would, until it resumes.
type proxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	cond     *sync.Cond
	paused   bool
	closed   bool
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

func newProxy(upstream string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, upstream: upstream, conns: make(map[net.Conn]struct{})}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Go(p.accept)
	return p, nil
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.upstream, time.Second)
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
