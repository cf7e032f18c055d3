package sseredis

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestRestartKeepsData: a Redis that restarts from a snapshot holding
// everything keeps its epoch: the followers carry on and a client resumes
// exactly across the restart.
func TestRestartKeepsData(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, "A", r, Options{})
	b := newNode(t, "B", r, Options{})
	c := connect(t, a, "client=c", "")
	c.waitStart()
	a.broadcast(t, "e", 0, 5)
	c.expect(seq("e", 0, 5)...)
	last := c.last
	c.close()
	if err := a.client.Save(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	r.stop()
	r.start()
	publishUntilUp(t, b, "e5")
	for i := 6; i < 10; i++ {
		if _, err := b.hub.Broadcast(ev("e%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	c2 := connect(t, a, "client=c", last)
	c2.expect(seq("e", 5, 10)...)
	if len(c2.resets) != 0 {
		t.Fatalf("resets %v", c2.resets)
	}
}

// TestLostWrites: Redis comes back without writes the followers had
// delivered (a restart from an older snapshot, as a failover to a replica
// that missed them would be). The followers start a new epoch instead of
// carrying on silently, after the newest entry Redis kept of what they had
// delivered: events published since belong to it. Every stream ends, and
// its client resumes with one reset ("epoch") followed by the new epoch's
// events; clients holding ids of the lost writes, or of before, are reset
// with "epoch".
func TestLostWrites(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, "A", r, Options{})
	b := newNode(t, "B", r, Options{})
	live := connect(t, b, "client=live", "")
	live.waitStart()
	c := connect(t, a, "client=c", "")
	c.waitStart()
	a.broadcast(t, "e", 0, 5)
	c.expect(seq("e", 0, 5)...)
	if err := a.client.Save(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	for i := 5; i < 8; i++ { // acknowledged, delivered, then lost
		if _, err := a.hub.Broadcast(ev("e%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	c.expect(seq("e", 5, 8)...)
	live.expect(seq("e", 0, 8)...)
	lostID := c.last
	c.close()
	r.stop()
	r.start() // from the snapshot: e5..e7 are gone, the epoch is the same

	publishUntilUp(t, b, "n0")
	for i := 1; i < 5; i++ {
		if _, err := a.hub.Broadcast(ev("n%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	live, got := live.resuming(b, "client=live", 5)
	if !slices.Equal(got, seq("n", 0, 5)) {
		t.Fatalf("live client got %v after the loss, want n0..n4", got)
	}
	if len(live.resets) != 1 || live.resets[0] != "epoch" {
		t.Fatalf("live client: resets %v, want [epoch]", live.resets)
	}
	// Both nodes deliver in the new epoch.
	deadline := time.Now().Add(5 * time.Second)
	for a.broker.lineage.Load().epoch != b.broker.lineage.Load().epoch {
		if time.Now().After(deadline) {
			t.Fatalf("nodes in epochs %s and %s", a.broker.lineage.Load().epoch, b.broker.lineage.Load().epoch)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if e, _, _ := parsePos(lostID); e == a.broker.lineage.Load().epoch {
		t.Fatal("no new epoch after lost writes")
	}
	old := connect(t, a, "client=c", lostID)
	old.waitReset()
	if len(old.resets) != 1 || old.resets[0] != "epoch" {
		t.Fatalf("resume from a lost write: resets %v, want [epoch]", old.resets)
	}
	old.expect(seq("n", 0, 5)...)
	t.Logf("lost writes became a new epoch; resume from %s reset with %v", lostID, old.resets)
}

// publishUntilUp broadcasts data on n until Redis takes it (go-redis
// answers with its last dial error for a moment after Redis is back).
func publishUntilUp(t *testing.T, n *node, data string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := n.hub.Broadcast(ev("%s", data))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis still refuses publishes: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
