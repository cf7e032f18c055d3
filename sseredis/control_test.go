package sseredis

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssehub/sse"
)

// TestDisconnectAcrossNodes: Hub.Disconnect on A ends the client's streams
// on B (ReasonDisconnected) and no other client's; a control sent while
// B's link to Redis is broken, or stalled, reaches B when the link is back.
func TestDisconnectAcrossNodes(t *testing.T) {
	r := startRedis(t)
	reasons := make(chan string, 16)
	record := func(c *sse.Config) {
		c.OnDisconnect = func(s sse.StreamInfo, why sse.DisconnectReason) { reasons <- s.ClientID + ": " + why.String() }
	}
	expectReasons := func(want string, n int) {
		t.Helper()
		for range n {
			select {
			case got := <-reasons:
				if got != want {
					t.Fatalf("a stream ended as %q, want %q", got, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no stream ended as %q", want)
			}
		}
	}
	cut := &cutter{}
	g := newGate()
	a := newNode(t, "A", r, Options{})
	b := newNodeWith(t, "B", redis.NewClient(&redis.Options{Addr: r.addr(), Dialer: cut.dial,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: -1}), Options{}, record)
	c := newNodeWith(t, "C", redis.NewClient(&redis.Options{Addr: r.addr(), Dialer: g.dial,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second}), Options{}, record)

	x1 := connect(t, b, "client=x", "")
	x2 := connect(t, b, "client=x", "")
	y := connect(t, b, "client=y", "")
	for _, s := range []*sub{x1, x2, y} {
		s.waitStart()
	}
	if n := a.hub.Disconnect("x"); n != 0 {
		t.Fatalf("Disconnect on A ended %d streams of A's", n)
	}
	x1.ended()
	x2.ended()
	expectReasons("x: disconnected", 2)
	if _, err := a.hub.Broadcast(ev("y stays")); err != nil {
		t.Fatal(err)
	}
	y.expect("y stays")

	// B's link breaks (its connections closed, new ones refused) between
	// the Disconnect and B's read; C's stalls (nothing goes through).
	x3 := connect(t, b, "client=x", "")
	x4 := connect(t, c, "client=x", "")
	x3.waitStart()
	x4.waitStart()
	time.Sleep(100 * time.Millisecond) // the followers wait for news
	cut.set(true)
	g.stall()
	a.hub.Disconnect("x")
	time.Sleep(1500 * time.Millisecond) // B's follower has failed, C's has timed out
	cut.set(false)
	g.open()
	x3.ended()
	x4.ended()
	expectReasons("x: disconnected", 2)
	y.quiet(100 * time.Millisecond)
	if _, err := a.hub.Broadcast(ev("y still")); err != nil {
		t.Fatal(err)
	}
	y.expect("y still")

	// Controls are not events: no entry in the stream, no position.
	if n, err := a.client.XLen(t.Context(), "sse:events").Result(); err != nil || n != 2 {
		t.Fatalf("stream length %d (%v), want the 2 broadcasts", n, err)
	}
}
