package sseredis

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestFollowersDoNotTakeThePool: two brokers share one client with a pool
// of two connections, as doc.go's example shares one between two nodes.
// Their followers, each blocked in an XREAD, must not hold the pool's
// connections: publishes go through at once, and both nodes deliver them.
func TestFollowersDoNotTakeThePool(t *testing.T) {
	r := startRedis(t)
	client := redis.NewClient(&redis.Options{Addr: r.addr(), PoolSize: 2, ReadTimeout: time.Second, WriteTimeout: time.Second})
	a := newNodeOn(t, "A", client, Options{Block: 10 * time.Second})
	b := newNodeOn(t, "B", client, Options{Block: 10 * time.Second})
	ca := connect(t, a, "client=x", "")
	cb := connect(t, b, "client=y", "")
	ca.waitStart()
	cb.waitStart()
	time.Sleep(100 * time.Millisecond) // both followers wait in their XREAD
	for i := range 10 {
		start := time.Now()
		if _, err := a.hub.Broadcast(ev("e%d", i)); err != nil {
			t.Fatalf("broadcast %d: %v", i, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("broadcast %d took %v: the followers hold the pool", i, d)
		}
	}
	ca.expect(seq("e", 0, 10)...)
	cb.expect(seq("e", 0, 10)...)
	if st := client.PoolStats(); st.Timeouts != 0 {
		t.Fatalf("pool timeouts: %+v", st)
	}
}
