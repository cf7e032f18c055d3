package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	sse "github.com/ssehub/sse"
)

// client is one soak client: a loop of event-stream connections, each
// ended by a fault, that checks every event it receives against the
// ledger. Its counters are written by its own goroutine and read after it
// ends.
type client struct {
	r      *run
	rng    *rand.Rand
	id     string
	auds   []audience // what it may receive: the broadcast, its topics, its ID
	topics []string

	// The check: for each audience, the number of the last certain event
	// received (or skipped by a reset), and the uncertain events received.
	cur     map[audience]int
	seenUnc map[int]bool
	lastID  string   // the resume point: Last-Event-ID of the next connection
	lastG   int      // the event number the resume point stands for
	era     int      // its lineage: the data losses recorded before the epoch of its last fresh or reset start was seen
	sess    *session // its connection, for the logs

	delivered, lost, silent, dups, resets, spurious, ambiguous, lossResets, reconnects, errs int
	reached                                                                                  atomic.Int64 // the newest event reached, for the run's wait for its fence
}

// session is what the check knows of one connection.
type session struct {
	sent       string // its Last-Event-ID
	resumeG    int    // the event number sent stands for
	pubAtDial  int    // events settled when it was opened
	lossAtDial int    // data losses recorded when it was opened
	awaiting   bool   // a fresh or reset start: its position marker is still to come
	reset      bool   // a reset without a position: events of the current epoch may come before the marker
	node       int    // the node it is to
	opened     time.Time
	events     int      // events received on it
	first      []string // its first few events, for the logs
}

func newClient(r *run, i int) *client {
	c := &client{
		r:       r,
		rng:     rand.New(rand.NewPCG(r.seed, uint64(i))),
		id:      "c" + strconv.Itoa(i),
		cur:     make(map[audience]int),
		seenUnc: make(map[int]bool),
	}
	c.auds = append(c.auds, 0)
	for t := range r.topics {
		if c.rng.IntN(3) == 0 {
			c.auds = append(c.auds, 1+t)
			c.topics = append(c.topics, "t"+strconv.Itoa(t))
		}
	}
	c.auds = append(c.auds, r.clientAudience(i))
	return c
}

// errorf records a broken rule of the protocol: the soak fails.
func (c *client) errorf(format string, args ...any) {
	c.errs++
	if c.errs <= 3 {
		c.r.logf("client %s: "+format, append([]any{c.id}, args...)...)
	}
}

// loop connects again and again until the run stops.
func (c *client) loop(ctx context.Context) {
	for n := 0; ctx.Err() == nil; n++ {
		if n > 0 {
			c.reconnects++
		}
		c.connect(ctx, n)
		if ctx.Err() != nil {
			return
		}
		// Like a browser's retry delay, but short and random.
		wait := time.Duration(c.rng.IntN(300)) * time.Millisecond
		if c.r.calm.Load() {
			wait = 10 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// connect runs one connection to a node, resuming from lastID.
func (c *client) connect(ctx context.Context, n int) {
	node := c.r.nodes[c.rng.IntN(len(c.r.nodes))]
	if len(c.r.nodes) > 1 {
		node = c.r.nodes[n%len(c.r.nodes)] // every reconnect moves to the other node
	}
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", node.addr)
	if err != nil {
		c.r.logf("client %s: dial: %v", c.id, err)
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(c.r.rcvbuf) // small, so that a stalled client fills the hub's queue
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer func() {
		stop()
		_ = conn.Close()
	}()

	q := url.Values{"id": {c.id}}
	if len(c.topics) > 0 {
		q.Set("topics", strings.Join(c.topics, ","))
	}
	req := "GET /sse?" + q.Encode() + " HTTP/1.1\r\nHost: soak\r\nAccept: text/event-stream\r\n"
	if c.lastID != "" {
		req += "Last-Event-ID: " + c.lastID + "\r\n"
	}
	cn := c.dial()
	cn.node = slices.Index(c.r.nodes, node)
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		return
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return // a connection cut before its headers
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		c.errorf("answer %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
		return
	}

	fault := c.pickFault()
	var stallUntil time.Time
	if fault != "" {
		life := time.Duration(c.rng.ExpFloat64() * float64(c.r.life))
		t := time.AfterFunc(life, func() {
			switch fault {
			case "close":
				c.r.faults.closes.Add(1)
				_ = conn.Close()
			case "reset":
				c.r.faults.aborts.Add(1)
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // close with an RST
				}
				_ = conn.Close()
			}
		})
		defer t.Stop()
		if fault == "stall" {
			stallUntil = time.Now().Add(life)
		}
	}

	d := sse.NewDecoder(resp.Body)
	d.SetLastEventID(c.lastID)
	for {
		ev, err := d.Decode()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, io.EOF) && !isClosed(err) {
				c.r.debugf("client %s: stream: %v", c.id, err)
			}
			return
		}
		c.lastID = d.LastEventID()
		if !c.take(cn, ev) {
			return
		}
		if fault == "stall" && !stallUntil.IsZero() && time.Now().After(stallUntil) {
			// Stop reading for a while: the hub's queue for this stream
			// fills, and it may end the stream as slow.
			c.r.faults.stalls.Add(1)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(500+c.rng.IntN(2500)) * time.Millisecond):
			}
			stallUntil = time.Time{}
		}
	}
}

// pickFault chooses how this connection will end, if the run is not calm:
// "close" (a clean close), "reset" (an abrupt one), "stall" (stop reading
// for a while, then go on), or "" (only the hub or the run ends it).
func (c *client) pickFault() string {
	if c.r.calm.Load() {
		return ""
	}
	switch p := c.rng.IntN(100); {
	case p < 45:
		return "close"
	case p < 65:
		return "reset"
	case p < 85:
		return "stall"
	}
	return ""
}

// dial starts the check of a connection, opened now from c.lastID.
func (c *client) dial() *session {
	c.sess = &session{sent: c.lastID, resumeG: c.lastG, pubAtDial: c.r.ledger.published(),
		lossAtDial: c.r.ledger.lossCount(), awaiting: c.lastID == "", opened: time.Now()}
	return c.sess
}

// take checks one event of connection cn, after c.lastID took its id. It
// returns false when the protocol is broken beyond checking the rest.
func (c *client) take(cn *session, ev sse.Event) bool {
	cn.events++
	if len(cn.first) < 4 {
		g, _ := c.r.ledger.g(ev.ID)
		cn.first = append(cn.first, fmt.Sprintf("%s id=%s (%d) data=%q", ev.Type, ev.ID, g, ev.Data))
	}
	switch ev.Type {
	case sse.PositionEvent:
		g, ok := c.r.positionG(ev.ID)
		if !ok {
			c.errorf("position %q stands for no event the soak knows", ev.ID)
			return false
		}
		if cn.awaiting {
			c.rebase(ev.ID, g)
			cn.awaiting, cn.reset = false, false
		} else {
			c.lastG = g
			c.reach(g)
		}
	case sse.ResetEvent:
		c.resets++
		c.judgeReset(cn, string(ev.Data))
		cn.awaiting, cn.reset = true, true
		if ev.ID != cn.sent {
			// A reset followed by nothing carries the position itself as
			// its id.
			g, ok := c.r.positionG(ev.ID)
			if !ok {
				c.errorf("reset position %q stands for no event the soak knows", ev.ID)
				return false
			}
			c.rebase(ev.ID, g)
			cn.awaiting, cn.reset = false, false
		}
	default:
		switch {
		case cn.reset:
			c.since(ev)
		case cn.awaiting:
			c.errorf("event %q before the start's position marker", ev.Data)
			return false
		default:
			c.check(ev)
		}
	}
	return true
}

// baseline starts the check at g, as a fresh or reset start does: the
// client has everything up to g, from a snapshot or its own reload.
func (c *client) baseline(g int) {
	for _, a := range c.auds {
		c.cur[a] = c.r.ledger.upTo(a, g)
	}
	c.lastG = g
	c.reach(g)
}

// rebase starts the check at position pos, event g, and in its lineage:
// what Redis lost before pos's epoch was seen was never the client's to
// receive (its reload, or the snapshot, stands for it).
func (c *client) rebase(pos string, g int) {
	c.baseline(g)
	c.era = c.r.ledger.era(pos)
}

func (c *client) reach(g int) {
	if int64(g) > c.reached.Load() {
		c.reached.Store(int64(g))
	}
}

// entitled parses an event and checks that the client may receive it.
func (c *client) entitled(ev sse.Event) (a audience, aseq, g int, ok bool) {
	a, aseq, g, err := parseData(ev.Data)
	if err != nil {
		c.errorf("%v", err)
		return 0, 0, 0, false
	}
	if !slices.Contains(c.auds, a) {
		c.errorf("event for audience %d, which it may not receive", a)
		return 0, 0, 0, false
	}
	if c.r.redis {
		c.r.ledger.learn(ev.ID, g)
	}
	return a, aseq, g, true
}

// since takes an event between a reset and its position marker: the
// events of the current epoch, from its start (see sse.StartReset). The
// reset told the client to reload, so each certain one is a new start of
// the check, at its position.
func (c *client) since(ev sse.Event) {
	_, _, g, ok := c.entitled(ev)
	if !ok {
		return
	}
	c.delivered++
	if c.r.ledger.isUncertain(g) {
		c.seenUnc[g] = true
		c.lastG = g
		c.reach(g)
		return
	}
	c.rebase(ev.ID, g)
}

// check takes one event: the next of its audience, or a loss, or a
// duplicate.
func (c *client) check(ev sse.Event) {
	a, aseq, g, ok := c.entitled(ev)
	if !ok {
		return
	}
	if c.r.ledger.isUncertain(g) {
		// A Publish that failed may still have been kept (its command
		// reached Redis after the publisher gave up): at most once.
		if c.seenUnc[g] {
			c.dups++
		} else {
			c.seenUnc[g] = true
			c.delivered++
		}
	} else {
		switch cur := c.cur[a]; {
		case aseq <= cur:
			c.dups++
			if c.dups <= 3 {
				c.r.logf("client %s: duplicate: audience %d event %d (g %d), had up to %d", c.id, a, aseq, g, cur)
			}
		default:
			c.skip(a, cur, aseq, fmt.Sprintf("before its event %d (g %d)", aseq, g))
			c.cur[a] = aseq
			c.delivered++
		}
	}
	c.lastG = g
	c.reach(g)
}

// skip counts the events of a after from and before to that the client
// skipped: lost, or silent gaps.
func (c *client) skip(a audience, from, to int, where string) {
	lost, silent := c.r.ledger.missed(a, from, to, c.era)
	c.lost += lost
	c.silent += silent
	if lost+silent == 0 {
		return
	}
	if s := c.sess; s != nil {
		where += fmt.Sprintf(", on a connection to node %d opened %v ago with Last-Event-ID %q (event %d), %d events into it, the first %q",
			s.node, time.Since(s.opened).Round(time.Millisecond), s.sent, s.resumeG, s.events, s.first)
	}
	if lost > 0 {
		c.r.logf("client %s: lost %d events of audience %d %s", c.id, lost, a, where)
	}
	if silent > 0 {
		c.r.logf("client %s: %d events of audience %d that Redis lost skipped without a reset (lineage %d) %s", c.id, silent, a, c.era, where)
	}
}

// judgeReset decides whether the reset of connection cn was due: it is
// when its resume point's epoch was first seen before a data loss (Redis
// lost events after it, or its epoch; whatever the reason the hub gave),
// or, but for reason "epoch", when an event the client may receive, after
// its resume point, has left the history of H events. The dial and now
// bracket the moment the hub decided.
func (c *client) judgeReset(cn *session, why string) {
	if cn.sent != "" {
		era := c.r.ledger.era(cn.sent)
		switch {
		case era < cn.lossAtDial:
			c.lossResets++
			return
		case era < c.r.ledger.lossCount():
			c.ambiguous++ // a data loss recorded since the dial: due, but not provably
			return
		}
	}
	if why == "epoch" {
		c.spurious++
		c.r.logf("client %s: spurious reset (epoch) from %q (event %d): no data loss since its epoch was seen", c.id, cn.sent, cn.resumeG)
		return
	}
	first := c.r.ledger.firstAfter(c.auds, cn.resumeG)
	now := c.r.ledger.added() // one being published may be in Redis already
	switch {
	case first == 0 || first > now-c.r.history:
		c.spurious++
		c.r.logf("client %s: spurious reset (%s) from event %d: the first it missed, %d, was never evicted (%d published)",
			c.id, why, cn.resumeG, first, now)
	case first > cn.pubAtDial-c.r.history:
		c.ambiguous++ // evicted between the dial and the reset: due, but not provably
	}
}

// finish counts what the client never received up to the fence, gFence.
func (c *client) finish(gFence int) {
	for _, a := range c.auds {
		c.skip(a, c.cur[a], c.r.ledger.upTo(a, gFence)+1, "before the fence")
	}
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "connection reset")
}
