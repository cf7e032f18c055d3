package sseredis

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssehub/sse"
)

// TestCloseWithRedisFrozen: with redis-server stopped (SIGSTOP: its
// connections open, nothing answers), Close returns promptly, no goroutine
// of the broker is left, and Publish, Replay and Snapshot then fail at
// once.
func TestCloseWithRedisFrozen(t *testing.T) {
	r := startRedis(t)
	client := redis.NewClient(&redis.Options{Addr: r.addr(), ReadTimeout: time.Second, WriteTimeout: time.Second})
	defer client.Close()
	b, err := New(client, Options{Block: 5 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *sse.Message, 1)
	head, err := b.Subscribe(onMessage{t, func(m *sse.Message) { got <- m }})
	if err != nil {
		t.Fatal(err)
	}
	m := &sse.Message{To: sse.Target{Kind: sse.ToEveryone}, Body: []byte("data: x\n\n")}
	if err := b.Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}
	time.Sleep(100 * time.Millisecond) // the follower waits in its XREAD
	r.pause()

	start := time.Now()
	if err := b.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
	took := time.Since(start)
	t.Logf("Close with Redis frozen took %v", took)
	if took > 2*time.Second {
		t.Errorf("Close with Redis frozen took %v", took)
	}
	noBrokerGoroutines(t, b)

	// The hub may still call these for streams ending after its Shutdown
	// gave up: they fail at once, without waiting for the frozen Redis.
	everyone := []sse.Target{{Kind: sse.ToEveryone}}
	for name, call := range map[string]func() error{
		"Publish": func() error { return b.Publish(context.Background(), &sse.Message{To: everyone[0]}) },
		"Replay": func() error {
			_, _, err := b.Replay(context.Background(), head, m.Pos, everyone, func(*sse.Message) bool { return true })
			return err
		},
		"Snapshot": func() error {
			return b.Snapshot(context.Background(), m.Pos, everyone, func(*sse.Message) bool { return true })
		},
	} {
		start := time.Now()
		err := call()
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("%s after Close took %v", name, d)
		}
	}
	if err := b.Close(); err != nil { // again: harmless
		t.Fatal(err)
	}
}

// sharedClient hides a *redis.Client's type, as a wrapper would: the
// broker's follower then uses it rather than a client of its own.
type sharedClient struct{ *redis.Client }

// TestCloseFollowerOnSharedClient: a follower on a client the broker cannot
// copy waits for pushes on a subscription of its own, which Close closes:
// Close returns at once and leaves nothing in Redis.
func TestCloseFollowerOnSharedClient(t *testing.T) {
	r := startRedis(t)
	client := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer client.Close()
	b, err := New(sharedClient{client}, Options{Block: 10 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *sse.Message, 1)
	if _, err := b.Subscribe(onMessage{t, func(m *sse.Message) { got <- m }}); err != nil {
		t.Fatal(err)
	}
	if b.owned {
		t.Fatal("the follower has a client of its own")
	}
	if err := b.Publish(context.Background(), &sse.Message{To: sse.Target{Kind: sse.ToEveryone}, Body: []byte("data: x\n\n")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}
	time.Sleep(100 * time.Millisecond) // the follower waits for a push
	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	noBrokerGoroutines(t, b)
	if keys, err := client.Keys(context.Background(), "sse:events:wake:*").Result(); err != nil || len(keys) != 0 {
		t.Fatalf("wake keys left: %v %v", keys, err)
	}
}
