package sseredis

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssehub/sse"
)

// ended waits for s's stream to end, failing the test if an application
// event other than the next ones of allowed, in order, comes first or the
// stream stays open for 10 s. Position and reset events are allowed.
func (s *sub) ended(allowed ...string) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ev, ok := s.raw(time.Until(deadline))
		if !ok {
			break
		}
		if ev.Type == "" {
			if len(allowed) > 0 && string(ev.Data) == allowed[0] {
				allowed = allowed[1:]
				continue
			}
			s.t.Fatalf("%s: got %q (id %s) where its stream should have ended", s.name, ev.Data, ev.ID)
		}
	}
	select {
	case <-s.errc:
	default:
		s.t.Fatalf("%s: its stream did not end within 10 s", s.name)
	}
}

// TestLaggingNodeEpochChange: a node whose link to Redis stalls while
// Redis loses its data (FLUSHALL) and another node moves to the new epoch
// must not carry on as if nothing happened: its client sees its stream end
// without E3, the first event of the new epoch (E2, published before the
// loss, may reach it first: its push was on the way when the link
// stalled), and resumes with one reset ("epoch") followed by every event
// of the new epoch. The other node's client, which cannot be shown to have
// missed nothing, likewise.
func TestLaggingNodeEpochChange(t *testing.T) {
	r := startRedis(t)
	g := newGate()
	a := newNodeOn(t, "A", redis.NewClient(&redis.Options{Addr: r.addr(), Dialer: g.dial,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second}), Options{})
	b := newNode(t, "B", r, Options{})
	ca := connect(t, a, "client=c", "")
	cb := connect(t, b, "client=c", "")
	ca.waitStart()
	cb.waitStart()
	b.broadcast(t, "E", 1, 2)
	ca.expect("E1")
	cb.expect("E1")
	time.Sleep(50 * time.Millisecond) // A's follower waits in its XREAD

	g.stall()
	b.broadcast(t, "E", 2, 3)
	cb.expect("E2")
	old := b.broker.lineage.Load().epoch
	flushAll(t, r)
	deadline := time.Now().Add(5 * time.Second)
	for b.broker.lineage.Load().epoch == old {
		if time.Now().After(deadline) {
			t.Fatal("B did not move to a new epoch")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.broadcast(t, "E", 3, 4)
	g.open()

	ca.ended("E2") // never E3 after E1 without E2
	cb.ended()
	for _, s := range []struct {
		n    *node
		last string
	}{{a, ca.last}, {b, cb.last}} {
		c := connect(t, s.n, "client=c", s.last)
		c.waitReset()
		if len(c.resets) != 1 || c.resets[0] != "epoch" {
			t.Fatalf("%s: resets %v, want [epoch]", c.name, c.resets)
		}
		c.expect("E3")
		c.quiet(200 * time.Millisecond)
	}
}

// TestEpochOrigin: a client that comes back with an id of an epoch Redis
// lost is reset ("epoch") and then replayed every event of the new epoch
// it may receive, in order (sse.EpochOrigin), not only the keyed states.
func TestEpochOrigin(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, "A", r, Options{})
	b := newNode(t, "B", r, Options{})
	c := connect(t, a, "client=c&topic=news", "")
	c.waitStart()
	a.broadcast(t, "old", 0, 3)
	c.expect(seq("old", 0, 3)...)
	last := c.last
	c.close()

	flushAll(t, r)
	publishUntilUp(t, b, "new0")
	if _, err := b.hub.Send("someone else", ev("not for c")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.hub.Publish("news", ev("new1")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.hub.Send("c", sse.Event{Key: "k", Data: []byte("new2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.hub.Broadcast(ev("new3")); err != nil {
		t.Fatal(err)
	}
	c2 := connect(t, a, "client=c&topic=news", last)
	c2.waitReset()
	if len(c2.resets) != 1 || c2.resets[0] != "epoch" {
		t.Fatalf("resets %v, want [epoch]", c2.resets)
	}
	c2.expect(seq("new", 0, 4)...)
	c2.quiet(200 * time.Millisecond)
	if st := a.hub.Stats(); st.EpochReplays != 1 {
		t.Fatalf("A's stats: %d epoch replays, want 1", st.EpochReplays)
	}
}

// startFresh opens fresh streams on n until one starts (a stream may end
// before it writes anything while n's broker catches up with Redis), and
// returns it with the position it was given and the snapshot it got
// before. It fails the test if none starts within 3 s.
func startFresh(t *testing.T, n *node, query string) (s *sub, pos string, snapshot []string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		s := connect(t, n, query, "")
		snapshot = nil
		for {
			ev, ok := s.raw(time.Until(deadline))
			if !ok {
				break
			}
			switch ev.Type {
			case sse.PositionEvent:
				return s, ev.ID, snapshot
			case "":
				snapshot = append(snapshot, string(ev.Data))
			}
		}
		s.close()
	}
	t.Fatalf("no stream started on %s within 3 s", n.name)
	return nil, "", nil
}

// TestFlushWhileIdle: Redis loses its data while no event is published, and
// the followers wait in a long XREAD. A fresh stream on a node must not be
// given a position of the lost epoch, nor a snapshot of nothing: within
// about a second it starts at a position of the new epoch, with the states
// published since; a resume from an application-set ID published since is
// not stuck; and the broker answers a Replay or Snapshot up to a position
// of the lost epoch with "ahead" and an error.
func TestFlushWhileIdle(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, "A", r, Options{Block: 30 * time.Second})
	b := newNode(t, "B", r, Options{Block: 30 * time.Second})
	c := connect(t, a, "client=c", "")
	c.waitStart()
	a.broadcast(t, "e", 0, 1)
	c.expect("e0")
	stale := c.last
	old, _, _ := parsePos(stale)
	time.Sleep(50 * time.Millisecond) // both followers wait in their XREAD

	flushAll(t, r)
	start := time.Now()
	f, pos, snap := startFresh(t, a, "client=f")
	t.Logf("a fresh stream on A started at %s %v after the flush", pos, time.Since(start))
	e, _, _ := parsePos(pos)
	if e == old {
		t.Fatalf("fresh stream given %s, a position of the lost epoch", pos)
	}
	word, err := a.client.Get(context.Background(), "sse:events:epoch").Result()
	if err != nil || !strings.HasPrefix(word, e+" ") {
		t.Fatalf("fresh stream given %s; Redis's epoch is %q (%v)", pos, word, err)
	}
	if len(snap) != 0 {
		t.Fatalf("fresh stream given the snapshot %v of a Redis that lost everything", snap)
	}

	// The broker's own answers for positions of the lost epoch.
	everyone := []sse.Target{{Kind: sse.ToEveryone}}
	ok, why, err := a.broker.Replay(context.Background(), old+"-0-0", stale, everyone, func(*sse.Message) bool { return true })
	if ok || why != "ahead" || err != nil {
		t.Errorf("Replay up to a lost epoch: %v %q %v, want ahead", ok, why, err)
	}
	if err := a.broker.Snapshot(context.Background(), stale, everyone, func(*sse.Message) bool { return true }); err == nil {
		t.Error("Snapshot up to a lost epoch: no error")
	}

	// States and application-set IDs published after the loss, on B.
	if _, err := b.hub.Broadcast(sse.Event{Key: "k", Data: []byte("state")}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.hub.Broadcast(sse.Event{ID: "app-1", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.hub.Broadcast(ev("after app-1")); err != nil {
		t.Fatal(err)
	}
	f.expect("state", "x", "after app-1") // A has delivered them
	_, _, snap = startFresh(t, a, "client=g")
	if !slices.Equal(snap, []string{"state"}) {
		t.Fatalf("fresh stream given the snapshot %v, want [state]", snap)
	}
	resumed := connect(t, a, "client=h", "app-1")
	resumed.expect("after app-1")
	if len(resumed.resets) != 0 {
		t.Fatalf("resume from app-1: resets %v", resumed.resets)
	}
}
