package sseredis

import (
	"context"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The fault tools of the tests: a frozen Redis (pause), a flushed one
// (flushAll), a stalled link (gate).

// pause freezes redis-server (SIGSTOP): its connections stay open and
// nothing answers, as with a Redis stuck on a slow disk or a long fork. It
// is resumed at cleanup, before stop.
func (s *redisServer) pause() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatal(err)
	}
	cmd := s.cmd
	s.t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGCONT) })
}

// flushAll empties the Redis at addr, as a restart without persistence or
// a failover to an empty replica would.
func flushAll(t *testing.T, r *redisServer) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer c.Close()
	if err := c.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

// gate dials Redis for one node and can stall its link: while it is
// closed, every read and write of the node's connections blocks (until
// the connection's deadline), as on a link that drops every packet. The
// connections stay open.
type gate struct {
	mu     sync.Mutex
	closed bool
	opened chan struct{} // closed when the gate opens
}

func newGate() *gate { g := &gate{opened: make(chan struct{})}; close(g.opened); return g }

func (g *gate) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := g.wait(ctx.Done(), time.Time{}); err != nil {
		return nil, err
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: c, g: g, done: make(chan struct{})}, nil
}

// stall closes the gate; open opens it.
func (g *gate) stall() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed, g.opened = true, make(chan struct{})
	}
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.closed = false
		close(g.opened)
	}
}

// wait returns once the gate is open, or an error when done is closed or
// the deadline passes first.
func (g *gate) wait(done <-chan struct{}, deadline time.Time) error {
	g.mu.Lock()
	opened := g.opened
	g.mu.Unlock()
	var expire <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expire = t.C
	}
	select {
	case <-opened:
		return nil
	case <-done:
		return net.ErrClosed
	case <-expire:
		return os.ErrDeadlineExceeded
	}
}

// gatedConn is a connection whose reads and writes wait for its gate.
type gatedConn struct {
	net.Conn
	g    *gate
	once sync.Once
	done chan struct{} // closed by Close

	mu            sync.Mutex
	rdead, wrdead time.Time
}

func (c *gatedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	d := c.rdead
	c.mu.Unlock()
	if err := c.g.wait(c.done, d); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	d := c.wrdead
	c.mu.Unlock()
	if err := c.g.wait(c.done, d); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *gatedConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
}

func (c *gatedConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdead, c.wrdead = t, t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *gatedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdead = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *gatedConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wrdead = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}
