package sseredis

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// TestConcurrentOrder: publishers on both nodes at once; streams on both
// nodes receive every event in one and the same order.
func TestConcurrentOrder(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, "A", r, Options{})
	b := newNode(t, "B", r, Options{})
	ca := connect(t, a, "client=x", "")
	cb := connect(t, b, "client=y", "")
	ca.waitStart()
	cb.waitStart()
	const per = 100
	var wg sync.WaitGroup
	for w, hub := range []*sse.Hub{a.hub, b.hub, a.hub, b.hub} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if _, err := hub.Broadcast(ev("w%d-%d", w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	gotA := readN(t, ca, 4*per)
	gotB := readN(t, cb, 4*per)
	if !slices.Equal(gotA, gotB) {
		t.Fatal("the nodes delivered in different orders")
	}
	for w := range 4 { // each publisher's events in its order
		n := 0
		for _, d := range gotA {
			var ww, i int
			if _, err := fmt.Sscanf(d, "w%d-%d", &ww, &i); err == nil && ww == w {
				if i != n {
					t.Fatalf("publisher %d: event %d came %dth", w, i, n)
				}
				n++
			}
		}
	}
}

// TestApplicationIDs: an application-set ID is written as the event's id,
// and a resume from it on another node is exact; an ID the index does not
// hold (never published, or forgotten past its bound) is reset with
// "unknown".
func TestApplicationIDs(t *testing.T) {
	r := startRedis(t)
	old := maxIDs
	maxIDs = 2
	t.Cleanup(func() { maxIDs = old })
	a := newNode(t, "A", r, Options{})
	b := newNode(t, "B", r, Options{})
	c := connect(t, a, "client=c", "")
	c.waitStart()
	if _, err := a.hub.Broadcast(sse.Event{ID: "order-17", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	got, ok := c.next(5 * time.Second)
	if !ok || got.ID != "order-17" {
		t.Fatalf("got %+v", got)
	}
	c.close()
	if _, err := b.hub.Broadcast(ev("after 17")); err != nil {
		t.Fatal(err)
	}
	c2 := connect(t, b, "client=c", "order-17")
	c2.expect("after 17")
	if len(c2.resets) != 0 {
		t.Fatalf("resets %v", c2.resets)
	}
	for _, id := range []string{"", "nope"} {
		if id == "" {
			// Two more IDs push order-17 out of an index of 2.
			for _, more := range []string{"order-18", "order-19"} {
				if _, err := a.hub.Broadcast(sse.Event{ID: more, Data: []byte(more)}); err != nil {
					t.Fatal(err)
				}
			}
			id = "order-17"
		}
		c3 := connect(t, b, "client=c", id)
		c3.waitReset()
		if len(c3.resets) != 1 || c3.resets[0] != "unknown" {
			t.Fatalf("resume from %s: resets %v", id, c3.resets)
		}
		c3.close()
	}
}

// TestEvictionRecordBound: past its bound the eviction record forgets the
// least recently evicted audiences, folded into one bound, which answers
// conservatively for every audience it does not remember.
func TestEvictionRecordBound(t *testing.T) {
	r := startRedis(t)
	old := maxEvicted
	maxEvicted = 2
	t.Cleanup(func() { maxEvicted = old })
	b, client := brokerOn(t, r, Options{History: 1, Block: 100 * time.Millisecond})
	ctx := context.Background()
	head, err := b.Subscribe(onMessage{t, func(*sse.Message) {}})
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]string{}
	for _, topic := range []string{"t1", "t2", "t3", "t4"} {
		m := &sse.Message{To: sse.Target{Kind: sse.ToTopic, Name: topic}, Body: []byte("data: " + topic + "\n\n")}
		if err := b.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
		pos[topic] = m.Pos
	}
	// Trimmed: t1, t2, t3; remembered: t2, t3; forgotten: t1.
	n, _ := client.HLen(ctx, "sse:events:evicted").Result()
	if n != 2 {
		t.Fatalf("eviction record holds %d audiences, want 2", n)
	}
	until := pos["t4"]
	check := func(after string, to string, want bool) {
		t.Helper()
		ok, why, err := b.Replay(ctx, after, until, []sse.Target{{Kind: sse.ToTopic, Name: to}}, func(*sse.Message) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		if ok != want || (!ok && why != "expired") {
			t.Errorf("resume of %s from %s: %v %q, want %v", to, after, ok, why, want)
		}
	}
	check(head, "quiet", false)     // the forgotten t1 is after head: conservative
	check(pos["t1"], "quiet", true) // nothing forgotten after t1, quiet never evicted
	check(pos["t1"], "t1", true)    // t1 lost nothing after its own event
	check(pos["t1"], "t2", false)   // t2's event was trimmed
	check(pos["t2"], "t3", false)
	check(pos["t3"], "t3", true)
	check(pos["t3"], "t4", true)
}

// TestRunTimeSubscribe: Hub.Subscribe on A gives a stream the state of a
// topic kept by events published on B, then the topic's live events.
func TestRunTimeSubscribe(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, "A", r, Options{})
	b := newNode(t, "B", r, Options{})
	if _, err := b.hub.Publish("news", sse.Event{Key: "headline", Data: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.hub.Publish("news", sse.Event{Key: "headline", Data: []byte("current")}); err != nil {
		t.Fatal(err)
	}
	c := connect(t, a, "client=c", "")
	c.waitStart()
	time.Sleep(200 * time.Millisecond) // A's follower has delivered both
	if n := a.hub.Subscribe("c", "news"); n != 1 {
		t.Fatalf("Subscribe reached %d streams", n)
	}
	c.expect("current")
	if _, err := b.hub.Publish("news", ev("live")); err != nil {
		t.Fatal(err)
	}
	c.expect("live")
	// Its resume after the live event is exact, on the other node.
	last := c.last
	c.close()
	if _, err := a.hub.Publish("news", ev("missed")); err != nil {
		t.Fatal(err)
	}
	c2 := connect(t, b, "client=c&topic=news", last)
	c2.expect("missed")
	if len(c2.resets) != 0 {
		t.Fatalf("resets %v", c2.resets)
	}
}
