// Package load is the load generator: many lightweight event-stream clients
// on raw TCP connections, with a hand-written HTTP/1.1 request, chunked
// transfer decoding and a minimal event parser, so that the cost of reading
// stays small next to the cost of serving.
//
// Every event the server under test publishes carries its data as
// "<seq>,<unix-nanos>,<padding>": a sequence number that counts up by one
// per published event, and the time it was published. A client counts the
// events it receives, the sequence numbers it missed (lost) or saw twice
// (duplicates), and the latency from the publish time to the read that
// brought the event.
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Shared holds the counters of a set of clients.
type Shared struct {
	Received  atomic.Int64 // events received, duplicates excluded
	Bytes     atomic.Int64 // body bytes read
	Live      atomic.Int64 // clients that received at least one event
	Connected atomic.Int64 // clients that received response headers
	Ended     atomic.Int64 // clients whose stream ended or failed
	Failed    atomic.Int64 // clients that could not connect or got a bad response
	Latency   Hist         // recorded while Recording is set
	Recording atomic.Bool
	// SampleEvery, if above 1, records the latency of only the events
	// whose sequence number it divides, which keeps the client cheap at
	// millions of events per second. Set it before starting clients.
	SampleEvery uint64
}

// Spec describes one client.
type Spec struct {
	Addr        string // host:port
	Path        string // request path and query
	LastEventID string // sent as Last-Event-ID if set
	NoRead      bool   // never read anything after sending the request
	RcvBuf      int    // if positive, the socket's receive buffer size
	BufSize     int    // read buffer size; 0 means 16 KiB
	KeepIDs     bool   // remember the id of every event, by sequence number
	Src         string // if set, the local IP address to connect from (127.0.0.2, …: more ephemeral ports)
}

// ipBindAddressNoPort is Linux's IP_BIND_ADDRESS_NO_PORT (not in package
// syscall).
const ipBindAddressNoPort = 24

// Client is one event-stream connection. Its result fields are written by
// its own goroutine; read them after Wait.
type Client struct {
	spec   Spec
	shared *Shared
	conn   net.Conn
	done   chan struct{}

	Err       error
	Received  int64  // events, duplicates excluded
	Lost      int64  // sequence numbers skipped
	Dups      int64  // events whose sequence number was not new
	FirstSeq  uint64 // the first sequence number received
	LastSeq   uint64 // the highest sequence number received
	FirstAt   int64  // unix nanos of the read that brought the first event
	LastAt    int64  // unix nanos of the read that brought the last event
	HeadersAt int64  // unix nanos when the response headers arrived
	IDs       map[uint64]string
	Others    int64 // events without a sequence number

	lastSeq atomic.Uint64 // LastSeq, readable while running
}

// Start dials and runs one client on its own goroutine. sem, if not nil,
// bounds how many clients are connecting at once.
func Start(ctx context.Context, spec Spec, shared *Shared, sem chan struct{}) *Client {
	c := &Client{spec: spec, shared: shared, done: make(chan struct{})}
	if spec.KeepIDs {
		c.IDs = make(map[uint64]string)
	}
	go c.run(ctx, sem)
	return c
}

// Wait waits until the client's goroutine has returned.
func (c *Client) Wait() { <-c.done }

// Done is closed when the client's goroutine has returned.
func (c *Client) Done() <-chan struct{} { return c.done }

// Close ends the connection and waits for the client's goroutine.
func (c *Client) Close() {
	c.closeConn()
	c.Wait()
}

// Seq returns the highest sequence number received so far.
func (c *Client) Seq() uint64 { return c.lastSeq.Load() }

var connMu sync.Mutex // guards Client.conn between run and closeConn

func (c *Client) closeConn() {
	connMu.Lock()
	if c.conn != nil {
		_ = c.conn.Close()
	}
	connMu.Unlock()
}

func (c *Client) run(ctx context.Context, sem chan struct{}) {
	defer close(c.done)
	err := c.serve(ctx, sem)
	if err != nil && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
		c.Err = err
	}
	c.shared.Ended.Add(1)
}

func (c *Client) serve(ctx context.Context, sem chan struct{}) error {
	if sem != nil {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			c.shared.Failed.Add(1)
			return ctx.Err()
		}
	}
	conn, err := c.dial(ctx)
	if err != nil {
		if sem != nil {
			<-sem
		}
		c.shared.Failed.Add(1)
		return err
	}
	stop := context.AfterFunc(ctx, c.closeConn)
	defer stop()
	req := "GET " + c.spec.Path + " HTTP/1.1\r\nHost: " + c.spec.Addr +
		"\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
	if c.spec.LastEventID != "" {
		req += "Last-Event-ID: " + c.spec.LastEventID + "\r\n"
	}
	req += "\r\n"
	_, err = io.WriteString(conn, req)
	if sem != nil {
		<-sem
	}
	if err != nil {
		c.shared.Failed.Add(1)
		return err
	}
	if c.spec.NoRead {
		<-ctx.Done()
		return nil
	}
	return c.read(conn)
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if c.spec.Src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(c.spec.Src)}
	}
	if n, src := c.spec.RcvBuf, c.spec.Src != ""; n > 0 || src {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				if n > 0 {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
				}
				if src && serr == nil {
					// Choose the port at connect, by the whole address pair,
					// not at bind: otherwise each source address has one
					// ephemeral port range for every server, TIME_WAIT
					// sockets included.
					serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
				}
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	conn, err := d.DialContext(ctx, "tcp", c.spec.Addr)
	if err != nil {
		return nil, err
	}
	connMu.Lock()
	c.conn = conn
	connMu.Unlock()
	return conn, nil
}

// read reads the response headers, then the body until the stream ends.
func (c *Client) read(conn net.Conn) error {
	size := c.spec.BufSize
	if size <= 0 {
		size = 16 << 10
	}
	hbuf := make([]byte, 4096)
	n := 0
	var body []byte
	chunked := false
	for {
		m, err := conn.Read(hbuf[n:])
		n += m
		if i := bytes.Index(hbuf[:n], []byte("\r\n\r\n")); i >= 0 {
			head := hbuf[:i]
			if !bytes.HasPrefix(head, []byte("HTTP/1.1 200")) && !bytes.HasPrefix(head, []byte("HTTP/1.0 200")) {
				line, _, _ := bytes.Cut(head, []byte("\r\n"))
				c.shared.Failed.Add(1)
				return fmt.Errorf("response %q", line)
			}
			chunked = bytes.Contains(bytes.ToLower(head), []byte("\ntransfer-encoding: chunked"))
			body = hbuf[i+4 : n]
			break
		}
		if err != nil {
			c.shared.Failed.Add(1)
			return fmt.Errorf("reading headers: %w", err)
		}
		if n == len(hbuf) {
			c.shared.Failed.Add(1)
			return errors.New("response headers too large")
		}
	}
	now := time.Now().UnixNano()
	c.HeadersAt = now
	c.shared.Connected.Add(1)

	p := parser{c: c}
	p.wantTime = func(seq uint64) bool {
		if !c.shared.Recording.Load() {
			return false
		}
		k := c.shared.SampleEvery
		return k <= 1 || seq%k == 0
	}
	var dc dechunker
	feed := func(raw []byte, now int64) error {
		c.shared.Bytes.Add(int64(len(raw)))
		if !chunked {
			p.feed(raw, now)
			return nil
		}
		return dc.feed(raw, func(b []byte) { p.feed(b, now) })
	}
	if err := feed(body, now); err != nil {
		return err
	}
	buf := make([]byte, size)
	for {
		m, err := conn.Read(buf)
		if m > 0 {
			if ferr := feed(buf[:m], time.Now().UnixNano()); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			if err == io.EOF || dc.done {
				return nil
			}
			return err
		}
	}
}

// dechunker decodes HTTP/1.1 chunked transfer coding incrementally.
type dechunker struct {
	state int // 0: size line, 1: data, 2: CRLF after data, 3: trailer
	size  int64
	left  int64
	line  []byte
	done  bool
}

func (d *dechunker) feed(b []byte, out func([]byte)) error {
	for len(b) > 0 {
		switch d.state {
		case 0, 3:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				d.line = append(d.line, b...)
				if len(d.line) > 1024 {
					return errors.New("chunk size line too long")
				}
				return nil
			}
			line := b[:i]
			if len(d.line) > 0 {
				line = append(d.line, line...)
				d.line = d.line[:0]
			}
			b = b[i+1:]
			line = bytes.TrimRight(line, "\r")
			if d.state == 3 {
				if len(line) == 0 {
					d.done = true
					return nil
				}
				continue
			}
			if j := bytes.IndexByte(line, ';'); j >= 0 {
				line = line[:j]
			}
			n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("bad chunk size %q", line)
			}
			if n == 0 {
				d.state = 3
				continue
			}
			d.size, d.left, d.state = n, n, 1
		case 1:
			k := int64(len(b))
			if k > d.left {
				k = d.left
			}
			out(b[:k])
			b = b[k:]
			d.left -= k
			if d.left == 0 {
				d.state = 2
			}
		case 2:
			// Skip the CRLF that ends the chunk data.
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				return nil
			}
			b = b[i+1:]
			d.state = 0
		}
	}
	return nil
}

// parser splits the body into lines and events. It only looks at the data
// and id fields; comments, event types and retry fields are skipped.
type parser struct {
	c        *Client
	fresh    int64                 // events received since the last flush to Shared
	wantTime func(seq uint64) bool // whether to read an event's time
	pending  []byte                // an unfinished line
	hasData  bool
	seq      uint64
	ts       int64
	id       string
}

func (p *parser) feed(b []byte, now int64) {
	defer p.flush()
	if len(p.pending) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.pending = append(p.pending, b...)
			return
		}
		p.pending = append(p.pending, b[:i]...)
		p.line(p.pending, now)
		p.pending = p.pending[:0]
		b = b[i+1:]
	}
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.pending = append(p.pending, b...)
			return
		}
		p.line(b[:i], now)
		b = b[i+1:]
	}
}

// flush adds the events counted since the last flush to Shared.Received.
func (p *parser) flush() {
	if p.fresh > 0 {
		p.c.shared.Received.Add(p.fresh)
		p.fresh = 0
	}
}

func (p *parser) line(l []byte, now int64) {
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	switch {
	case len(l) == 0:
		if p.hasData {
			p.dispatch(now)
		}
		p.hasData = false
	case bytes.HasPrefix(l, []byte("data:")):
		v := l[5:]
		if len(v) > 0 && v[0] == ' ' {
			v = v[1:]
		}
		p.hasData = true
		p.seq, p.ts = parsePayload(v, p.wantTime)
	case bytes.HasPrefix(l, []byte("id:")):
		if p.c.IDs != nil {
			v := l[3:]
			if len(v) > 0 && v[0] == ' ' {
				v = v[1:]
			}
			p.id = string(v)
		}
	}
}

// parsePayload reads "<seq>,<nanos>," from the start of v; zeros if absent.
// It reads the time only if wantTime says so for seq.
func parsePayload(v []byte, wantTime func(seq uint64) bool) (seq uint64, ts int64) {
	i := 0
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		seq = seq*10 + uint64(v[i]-'0')
	}
	if i == 0 || i >= len(v) || v[i] != ',' {
		return 0, 0
	}
	if wantTime != nil && !wantTime(seq) {
		return seq, 0
	}
	i++
	j := i
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		ts = ts*10 + int64(v[i]-'0')
	}
	if i == j {
		return seq, 0
	}
	return seq, ts
}

func (p *parser) dispatch(now int64) {
	c := p.c
	if p.seq == 0 {
		c.Others++
		return
	}
	if c.LastSeq != 0 && p.seq <= c.LastSeq {
		c.Dups++
		return
	}
	if c.LastSeq == 0 {
		c.FirstSeq, c.FirstAt = p.seq, now
		c.shared.Live.Add(1)
	} else if p.seq > c.LastSeq+1 {
		c.Lost += int64(p.seq - c.LastSeq - 1)
	}
	c.LastSeq, c.LastAt = p.seq, now
	c.lastSeq.Store(p.seq)
	c.Received++
	p.fresh++
	if c.IDs != nil {
		c.IDs[p.seq] = p.id
	}
	if p.ts != 0 {
		c.shared.Latency.Record(now - p.ts)
	}
}

// Payload writes the data of event seq, published at nanos, padded with 'x'
// to size bytes (or longer, if the numbers need it), into dst.
func Payload(dst []byte, seq uint64, nanos int64, size int) []byte {
	dst = strconv.AppendUint(dst[:0], seq, 10)
	dst = append(dst, ',')
	dst = strconv.AppendInt(dst, nanos, 10)
	dst = append(dst, ',')
	for len(dst) < size {
		dst = append(dst, 'x')
	}
	return dst
}
