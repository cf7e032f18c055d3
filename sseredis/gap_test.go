package sseredis

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// cutter dials Redis for one node and can cut it off: it closes the
// node's connections and refuses new ones until it is healed.
type cutter struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (c *cutter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return nil, errors.New("cut off from Redis (test)")
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		c.conns = append(c.conns, conn)
	}
	return conn, err
}

func (c *cutter) set(cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	if cut {
		for _, conn := range c.conns {
			conn.Close()
		}
		c.conns = nil
	}
}

// A node cut off from Redis while the other publishes past its history
// cannot deliver what was trimmed: its hub hears of the gap and ends its
// streams, and a client that resumes is reset (it lost broadcasts), never
// left with a silent gap.
func TestFollowerBehindTheHistoryEndsStreams(t *testing.T) {
	r := startRedis(t)
	cut := &cutter{}
	a := newNodeOn(t, "A", redis.NewClient(&redis.Options{Addr: r.addr(), Dialer: cut.dial,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: -1}), Options{History: 8})
	b := newNode(t, "B", r, Options{History: 8})

	c := connect(t, a, "client=ann", "")
	c.waitStart()
	if _, err := b.hub.Broadcast(ev("before")); err != nil {
		t.Fatal(err)
	}
	c.expect("before")

	cut.set(true)
	time.Sleep(300 * time.Millisecond) // A's follower has noticed
	for i := range 20 {
		if _, err := b.hub.Broadcast(ev("away %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	cut.set(false)

	// A's stream ends without the trimmed broadcasts, and without a
	// silent gap: what it got is what it had when the gap was found.
	deadline := time.Now().Add(10 * time.Second)
	var got []string
	for {
		e, ok := c.raw(time.Until(deadline))
		if !ok {
			break
		}
		if e.Type == "" {
			got = append(got, string(e.Data))
		}
	}
	select {
	case err := <-c.errc:
		if err == nil {
			t.Fatalf("A's stream: %v", err)
		}
	default:
		t.Fatalf("A's stream did not end within 10 s (got %v)", got)
	}
	for _, d := range got {
		if d == "away 0" {
			t.Fatalf("A delivered a trimmed event: %v", got)
		}
	}
	if st := a.hub.Stats(); st.BrokerGaps != 1 {
		t.Fatalf("A's stats %+v, want one gap", st)
	}
	resumed := connect(t, b, "client=ann", c.last)
	resumed.waitReset()
	if len(resumed.resets) != 1 || resumed.resets[0] != "expired" {
		t.Fatalf("resets %v, want one expired", resumed.resets)
	}
	t.Logf("A delivered %v after the cut; the resume on B was reset (%v)", got, resumed.resets)
}
