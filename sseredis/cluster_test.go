package sseredis

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssehub/sse"
)

// TestClusterClient: a Broker on a *redis.ClusterClient (a Redis Cluster of
// one node holding every slot) publishes and delivers, its follower reads
// on a cluster client of its own, and Close with the node frozen returns
// at once, leaving no goroutine.
func TestClusterClient(t *testing.T) {
	r := startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	admin := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer admin.Close()
	ctx := context.Background()
	if err := admin.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := admin.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster is not ready: %q %v", info, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{r.addr()}, PoolSize: 1, ReadTimeout: time.Second, WriteTimeout: time.Second})
	defer client.Close()
	b, err := New(client, Options{Stream: "{sse}:events", Block: 5 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *sse.Message, 10)
	head, err := b.Subscribe(onMessage{t, func(m *sse.Message) { got <- m }})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.reader.(*redis.ClusterClient); !ok || !b.owned {
		t.Fatalf("the follower reads on %T (owned %v)", b.reader, b.owned)
	}
	time.Sleep(100 * time.Millisecond) // the follower waits in its XREAD, on its own connection
	var pos []string
	for i := range 3 {
		start := time.Now()
		m := &sse.Message{To: sse.Target{Kind: sse.ToEveryone}, Key: "k", Body: []byte("data: x\n\n")}
		if err := b.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("publish %d took %v: the follower holds the pool", i, d)
		}
		pos = append(pos, m.Pos)
	}
	for i := range 3 {
		select {
		case m := <-got:
			if m.Pos != pos[i] {
				t.Fatalf("delivery %d at %s, want %s", i, m.Pos, pos[i])
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("delivery %d did not come", i)
		}
	}
	n := 0
	if ok, why, err := b.Replay(ctx, head, pos[2], []sse.Target{{Kind: sse.ToEveryone}}, func(*sse.Message) bool { n++; return true }); !ok || err != nil || n != 3 {
		t.Fatalf("replay: %v %q %v, %d messages", ok, why, err, n)
	}
	if err := b.Snapshot(ctx, pos[2], []sse.Target{{Kind: sse.ToEveryone}}, func(m *sse.Message) bool { n++; return m.Pos == pos[2] }); err != nil || n != 4 {
		t.Fatalf("snapshot: %v, %d messages", err, n-3)
	}

	r.pause()
	start := time.Now()
	_ = b.Close()
	t.Logf("Close with the cluster's node frozen took %v", time.Since(start))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	noBrokerGoroutines(t, b)
}
