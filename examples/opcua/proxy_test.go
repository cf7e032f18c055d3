package main

import (
	"io"
	"net"
	"sync"
	"testing"
)

// tcpProxy forwards loopback TCP connections to a target, and can cut them
// and refuse new ones, to simulate a network fault between an OPC UA client
// and its server while both stay up.
type tcpProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	refuse  bool
	wg      sync.WaitGroup
	closing bool
}

// startProxy listens on 127.0.0.1 and forwards to target until the test
// ends.
func startProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// endpoint is the proxy's OPC UA URL.
func (p *tcpProxy) endpoint() string { return "opc.tcp://" + p.ln.Addr().String() }

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.refuse || p.closing {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.mu.Unlock()
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// pipe copies from src to dst until either side fails, then closes both.
func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// cut closes every forwarded connection and, while refuse is true, closes
// new ones as soon as they arrive.
func (p *tcpProxy) cut(refuse bool) {
	p.mu.Lock()
	p.refuse = refuse
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// heal accepts new connections again.
func (p *tcpProxy) heal() {
	p.mu.Lock()
	p.refuse = false
	p.mu.Unlock()
}

func (p *tcpProxy) close() {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	p.ln.Close()
	p.cut(true)
	p.wg.Wait()
}
