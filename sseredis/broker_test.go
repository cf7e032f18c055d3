package sseredis

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssehub/sse"
)

// TestBroadcastAcrossNodes: a client on A receives, in order, what is
// broadcast on B.
func TestBroadcastAcrossNodes(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, "A", r, Options{})
	b := newNode(t, "B", r, Options{})
	c := connect(t, a, "client=c1", "")
	c.waitStart()
	b.broadcast(t, "e", 0, 50)
	c.expect(seq("e", 0, 50)...)
	if len(c.last) > 43 || !strings.Contains(c.last, "-") {
		t.Fatalf("position %q: longer than 43 bytes or malformed", c.last)
	}
	c.quiet(300 * time.Millisecond)
}

// TestResumeOnOtherNode: a client leaves A and resumes on B with its
// Last-Event-ID: no gap, no duplicate, no reset.
func TestResumeOnOtherNode(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, "A", r, Options{})
	b := newNode(t, "B", r, Options{})
	c := connect(t, a, "client=c1", "")
	c.waitStart()
	a.broadcast(t, "e", 0, 10)
	c.expect(seq("e", 0, 10)...)
	last := c.last
	c.close()
	for i := 10; i < 20; i++ { // missed, published on both nodes
		hub := a.hub
		if i%2 == 1 {
			hub = b.hub
		}
		if _, err := hub.Broadcast(ev("e%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	c2 := connect(t, b, "client=c1", last)
	c2.expect(seq("e", 10, 20)...)
	if _, err := a.hub.Broadcast(ev("e20")); err != nil {
		t.Fatal(err)
	}
	c2.expect("e20")
	c2.quiet(300 * time.Millisecond)
	if len(c2.resets) != 0 {
		t.Fatalf("resets: %v", c2.resets)
	}
	if st := b.hub.Stats(); st.Replays != 1 || st.Resets != 0 {
		t.Fatalf("B: %d replays, %d resets; want 1, 0", st.Replays, st.Resets)
	}

	// A resume from the position a fresh stream was given, before any
	// event, is exact too.
	fresh := connect(t, b, "client=c2", "")
	fresh.waitStart()
	pos := fresh.last
	fresh.close()
	if _, err := b.hub.Broadcast(ev("e21")); err != nil {
		t.Fatal(err)
	}
	again := connect(t, a, "client=c2", pos)
	again.expect("e21")
	if len(again.resets) != 0 {
		t.Fatalf("resets: %v", again.resets)
	}
}

// TestSendAndTopicsAcrossNodes: a Send reaches the client ID's streams on
// the other node and no other stream; a topic's publish likewise.
func TestSendAndTopicsAcrossNodes(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, "A", r, Options{})
	b := newNode(t, "B", r, Options{})
	alice := connect(t, a, "client=alice", "")
	bob := connect(t, b, "client=bob", "")
	bob2 := connect(t, a, "client=bob", "") // bob's other tab, on A
	news := connect(t, b, "client=carol&topic=news", "")
	other := connect(t, a, "client=dave&topic=sport", "")
	all := []*sub{alice, bob, bob2, news, other}
	for _, s := range all {
		s.waitStart()
	}
	if _, err := a.hub.Send("bob", ev("to bob")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.hub.Publish("news", ev("news")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.hub.Send("alice", ev("to alice")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.hub.Broadcast(ev("end")); err != nil {
		t.Fatal(err)
	}
	alice.expect("to alice", "end")
	bob.expect("to bob", "end")
	bob2.expect("to bob", "end")
	news.expect("news", "end")
	other.expect("end")
}

// TestSnapshotAcrossNodes: a fresh stream on B starts with the newest
// state of each key published on A, in position order.
func TestSnapshotAcrossNodes(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, "A", r, Options{Keys: 2})
	b := newNode(t, "B", r, Options{Keys: 2})
	keyed := func(key, data string) sse.Event { return sse.Event{Key: key, Data: []byte(data)} }
	for _, e := range []sse.Event{keyed("k1", "k1 v1"), keyed("k2", "k2 v1"), keyed("k1", "k1 v2")} {
		if _, err := a.hub.Broadcast(e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.hub.Send("bob", keyed("k1", "bob k1")); err != nil { // bob's own k1
		t.Fatal(err)
	}
	if _, err := a.hub.Publish("news", keyed("k9", "news k9")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let B's follower deliver them
	c := connect(t, b, "client=bob", "")
	c.expect("k2 v1", "k1 v2", "bob k1")
	c.waitStart()
	// Keys bounds the states per audience: a third key pushes out k2.
	if _, err := a.hub.Broadcast(keyed("k3", "k3 v1")); err != nil {
		t.Fatal(err)
	}
	c.expect("k3 v1")
	time.Sleep(300 * time.Millisecond)
	d := connect(t, b, "client=dave&topic=news", "")
	d.expect("k1 v2", "news k9", "k3 v1")
	d.waitStart()
}

// TestTrimming: a client on a quiet topic resumes exactly after other
// audiences rolled History over many times; a client whose own event was
// trimmed gets exactly one reset, "expired".
func TestTrimming(t *testing.T) {
	r := startRedis(t)
	const history = 8
	a := newNode(t, "A", r, Options{History: history})
	b := newNode(t, "B", r, Options{History: history})

	quiet := connect(t, a, "client=q&topic=quiet", "")
	quiet.waitStart()
	if _, err := a.hub.Publish("quiet", ev("q0")); err != nil {
		t.Fatal(err)
	}
	quiet.expect("q0")
	victim := connect(t, a, "client=v", "")
	victim.waitStart()
	quietLast, victimLast := quiet.last, victim.last
	quiet.close()
	victim.close()

	if _, err := a.hub.Send("v", ev("v0")); err != nil { // the victim's, soon trimmed
		t.Fatal(err)
	}
	for i := range 10 * history { // other audiences only: topics and client IDs
		hub := a.hub
		if i%2 == 1 {
			hub = b.hub
		}
		var err error
		if i%3 == 0 {
			_, err = hub.Send(fmt.Sprintf("other%d", i), ev("x%d", i))
		} else {
			_, err = hub.Publish("noisy", ev("n%d", i))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.hub.Publish("quiet", ev("q1")); err != nil { // within history
		t.Fatal(err)
	}
	n, err := a.client.XLen(context.Background(), "sse:events").Result()
	if err != nil || n != history {
		t.Fatalf("stream length %d (%v), want %d", n, err, history)
	}

	q := connect(t, b, "client=q&topic=quiet", quietLast)
	q.expect("q1")
	q.quiet(300 * time.Millisecond)
	if len(q.resets) != 0 {
		t.Fatalf("quiet client reset: %v", q.resets)
	}

	v := connect(t, b, "client=v", victimLast)
	v.waitReset()
	if len(v.resets) != 1 || v.resets[0] != "expired" {
		t.Fatalf("victim resets %v, want [expired]", v.resets)
	}
	if _, err := a.hub.Send("v", ev("v1")); err != nil {
		t.Fatal(err)
	}
	v.expect("v1")
	// Its resume point is good again: no second reset.
	last := v.last
	v.close()
	v2 := connect(t, a, "client=v", last)
	if _, err := a.hub.Send("v", ev("v2")); err != nil {
		t.Fatal(err)
	}
	v2.expect("v2")
	if len(v2.resets) != 0 {
		t.Fatalf("second resume reset: %v", v2.resets)
	}
	st := b.hub.Stats()
	if st.ResetsBy.Expired != 1 || st.Replays != 1 {
		t.Fatalf("B: %d expired resets, %d replays; want 1, 1", st.ResetsBy.Expired, st.Replays)
	}
}

// TestRedisRestart: Redis restarts without persistence while both hubs
// serve streams. Publishes fail promptly during the outage and succeed
// after. Nothing tells whether the lost Redis held events a node had not
// read yet, so each node ends its streams when it finds the new epoch:
// their clients resume with one reset ("epoch") followed by every event of
// the new epoch, so that each client gets every event Redis accepted, in
// order. A resume from before the restart is reset with "epoch".
func TestRedisRestart(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, "A", r, Options{})
	b := newNode(t, "B", r, Options{})
	ca := connect(t, a, "client=ca", "")
	cb := connect(t, b, "client=cb", "")
	ca.waitStart()
	cb.waitStart()

	var mu sync.Mutex
	var accepted []string
	published, failed := 0, 0
	publish := func(i int, during bool) {
		hub := []*sse.Hub{a.hub, b.hub}[i%2]
		data := fmt.Sprintf("e%d", i)
		start := time.Now()
		_, err := hub.Broadcast(ev("%s", data))
		took := time.Since(start)
		mu.Lock()
		defer mu.Unlock()
		published++
		if err != nil {
			failed++
			if !during {
				t.Errorf("publish %d failed with Redis up: %v", i, err)
			}
			if took > 3*time.Second {
				t.Errorf("a publish during the outage took %v", took)
			}
			return
		}
		accepted = append(accepted, data)
	}
	for i := range 20 {
		publish(i, false)
	}
	n := len(accepted)
	gotA := readN(t, ca, n)
	gotB := readN(t, cb, n)
	before := ca.last

	r.stop()
	outage := time.Now()
	for i := 20; i < 30; i++ {
		publish(i, true)
	}
	t.Logf("outage publishes: %d failed in %v", failed, time.Since(outage))
	r.start()
	// go-redis keeps answering with the dial error for up to a second
	// after Redis is back: publish on each node until one succeeds, then
	// every one must.
	recovered := time.Now()
	i := 30
	for h := range 2 {
		for ; ; i += 2 {
			if i%2 != h {
				i++
			}
			mu.Lock()
			k := len(accepted)
			mu.Unlock()
			publish(i, true)
			mu.Lock()
			ok := len(accepted) > k
			mu.Unlock()
			if ok {
				break
			}
			if time.Since(recovered) > 10*time.Second {
				t.Fatal("publishes still fail 10 s after Redis came back")
			}
			time.Sleep(50 * time.Millisecond)
		}
		i++
	}
	t.Logf("publishes succeeded on both nodes %v after Redis came back (%d failed in all)", time.Since(recovered), failed)
	for j := i; j < i+30; j++ {
		publish(j, false)
	}
	mu.Lock()
	total := len(accepted)
	mu.Unlock()
	ca, more := ca.resuming(a, "client=ca", total-n)
	gotA = append(gotA, more...)
	cb, more = cb.resuming(b, "client=cb", total-n)
	gotB = append(gotB, more...)
	if !slices.Equal(gotA, accepted) || !slices.Equal(gotB, accepted) {
		t.Errorf("A got %v\nB got %v\naccepted %v", gotA, gotB, accepted)
	}
	ca.quiet(200 * time.Millisecond)
	for _, c := range []*sub{ca, cb} {
		if len(c.resets) != 1 || c.resets[0] != "epoch" {
			t.Errorf("%s: resets %v, want [epoch]", c.name, c.resets)
		}
	}

	old := connect(t, b, "client=ca", before)
	old.waitReset()
	t.Logf("published %d, accepted by Redis %d, failed %d, delivered to A's client %d and B's %d, resets on resume from before the restart %v",
		published, total, failed, len(gotA), len(gotB), old.resets)
	if len(old.resets) != 1 || old.resets[0] != "epoch" {
		t.Fatalf("resume from before the restart: resets %v, want [epoch]", old.resets)
	}
	if failed == 0 {
		t.Fatal("no publish failed during the outage")
	}
}

// readN reads n application events.
func readN(t *testing.T, s *sub, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ev, ok := s.next(10 * time.Second)
		if !ok {
			t.Fatalf("%s: got %d events, wanted %d", s.name, len(out), n)
		}
		out = append(out, string(ev.Data))
	}
	return out
}

// TestCloseStopsGoroutines: after Shutdown no goroutine of the broker is
// left.
func TestCloseStopsGoroutines(t *testing.T) {
	r := startRedis(t)
	count := func() int {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		return strings.Count(string(buf), "sseredis.(*Broker)")
	}
	// settled is count once it is zero, or after a second: Close returns
	// once the follower has called wg.Done, which it does as it returns,
	// so its frame may still be on its stack for a moment.
	settled := func() int {
		n := count()
		for deadline := time.Now().Add(time.Second); n != 0 && time.Now().Before(deadline); n = count() {
			time.Sleep(time.Millisecond)
		}
		return n
	}
	a := newNode(t, "A", r, Options{Block: 10 * time.Second})
	if count() == 0 {
		t.Fatal("no follower running")
	}
	c := connect(t, a, "client=x", "")
	c.waitStart()
	if _, err := a.hub.Broadcast(ev("e")); err != nil {
		t.Fatal(err)
	}
	c.expect("e")
	time.Sleep(50 * time.Millisecond) // the follower is in its XREAD
	start := time.Now()
	a.close()
	if d := time.Since(start); d > time.Second { // Close wakes the XREAD
		t.Errorf("Shutdown took %v", d)
	}
	if n := settled(); n != 0 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d broker frames left:\n%s", n, buf[:runtime.Stack(buf, true)])
	}
	// Close again is harmless.
	if err := a.broker.Close(); err != nil {
		t.Fatal(err)
	}
	check := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer check.Close()
	if keys, err := check.Keys(context.Background(), "sse:events:wake:*").Result(); err != nil || len(keys) != 0 {
		t.Fatalf("wake keys left: %v %v", keys, err)
	}

	// With Redis gone, the follower still ends.
	r2 := startRedis(t)
	b := newNode(t, "B", r2, Options{Block: 300 * time.Millisecond})
	time.Sleep(50 * time.Millisecond)
	r2.stop()
	time.Sleep(100 * time.Millisecond)
	start = time.Now()
	b.close()
	if n := settled(); n != 0 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d broker frames left with Redis down:\n%s", n, buf[:runtime.Stack(buf, true)])
	}
	t.Logf("Shutdown with Redis down took %v", time.Since(start))
}

// TestBroker exercises the Broker directly: positions, replay reasons,
// ComparePositions, errors.
func TestBroker(t *testing.T) {
	r := startRedis(t)
	b, client := brokerOn(t, r, Options{Stream: "{t}:s", Block: 100 * time.Millisecond, History: 4})
	var mu sync.Mutex
	var got []*sse.Message
	head, err := b.Subscribe(onMessage{t, func(m *sse.Message) { mu.Lock(); got = append(got, m); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe(onMessage{t, func(*sse.Message) {}}); err == nil {
		t.Fatal("second Subscribe accepted")
	}
	epoch, id, ok := parsePos(head)
	if !ok || id != (streamID{}) {
		t.Fatalf("head %q, want <epoch>-0-0", head)
	}
	ctx := context.Background()
	everyone := []sse.Target{{Kind: sse.ToEveryone}}
	var pos []string
	for i := range 3 {
		m := &sse.Message{To: sse.Target{Kind: sse.ToEveryone}, Body: fmt.Appendf(nil, "data: %d\n\n", i)}
		if err := b.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(m.Pos, epoch+"-") || len(m.Pos) > 43 {
			t.Fatalf("position %q", m.Pos)
		}
		pos = append(pos, m.Pos)
	}
	if c, ok := b.ComparePositions(pos[0], pos[1]); !ok || c != -1 {
		t.Fatalf("ComparePositions(%s, %s) = %d, %v", pos[0], pos[1], c, ok)
	}
	if c, ok := b.ComparePositions(pos[2], pos[1]); !ok || c != 1 {
		t.Fatalf("ComparePositions = %d, %v", c, ok)
	}
	if _, ok := b.ComparePositions("zzzzzzzz-1-0", pos[1]); ok {
		t.Fatal("ordered another epoch")
	}
	if _, ok := b.ComparePositions("my-id", pos[1]); ok {
		t.Fatal("ordered an application ID")
	}
	replay := func(after, until string) (bool, string, []string) {
		var bodies []string
		ok, why, err := b.Replay(ctx, after, until, everyone, func(m *sse.Message) bool {
			bodies = append(bodies, string(m.Body))
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return ok, why, bodies
	}
	if ok, _, bodies := replay(head, pos[2]); !ok || len(bodies) != 3 {
		t.Fatalf("replay from head: %v %v", ok, bodies)
	}
	if ok, _, bodies := replay(pos[0], pos[1]); !ok || len(bodies) != 1 || bodies[0] != "data: 1\n\n" {
		t.Fatalf("replay: %v %q", ok, bodies)
	}
	if ok, _, bodies := replay(pos[1], pos[1]); !ok || len(bodies) != 0 {
		t.Fatalf("replay of nothing: %v %v", ok, bodies)
	}
	for _, c := range []struct{ after, until, why string }{
		{pos[2], pos[1], "ahead"},
		{"abcdefgh-1-0", pos[1], "epoch"},
		{"hello", pos[1], "unknown"},
		{epoch + "-99999999999999-0", pos[1], "unknown"}, // later than anything Redis has
		{epoch + "-1-0", pos[1], "unknown"},              // never an entry
	} {
		if ok, why, _ := replay(c.after, c.until); ok || why != c.why {
			t.Errorf("Replay(%s, %s) = %v %q, want %q", c.after, c.until, ok, why, c.why)
		}
	}
	delivered := func(n int) []*sse.Message {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			out := slices.Clone(got)
			mu.Unlock()
			if len(out) >= n {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("delivered %d of %d", len(out), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for i, m := range delivered(3) {
		if m.Pos != pos[i] {
			t.Fatalf("delivery %d at %s, want %s", i, m.Pos, pos[i])
		}
	}
	// Trim pos[0..2] away with events for a topic: everyone's resume from
	// head is expired, a topic-only audience's is not.
	var last string
	for range 6 {
		m := &sse.Message{To: sse.Target{Kind: sse.ToTopic, Name: "t"}, Body: []byte("data: t\n\n")}
		if err := b.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
		last = m.Pos
	}
	if ok, why, _ := replay(head, last); ok || why != "expired" {
		t.Fatalf("replay over a trimmed broadcast: %v %q", ok, why)
	}
	if ok, _, err := b.Replay(ctx, pos[2], last, []sse.Target{{Kind: sse.ToTopic, Name: "u"}}, func(*sse.Message) bool { return true }); err != nil || !ok {
		t.Fatalf("quiet audience: %v %v", ok, err)
	}
	// The newest entry is never trimmed, so the follower delivers it (with
	// History 4, a burst may trim entries before it reads them: see the
	// package's Limits).
	deadline := time.Now().Add(5 * time.Second)
	for {
		all := delivered(3)
		if all[len(all)-1].Pos == last {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the last delivery is at %s, want %s", all[len(all)-1].Pos, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Errors are clear and prompt.
	if _, err := New(client, Options{History: -1}); err == nil {
		t.Fatal("negative History accepted")
	}
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer dead.Close()
	if _, err := New(dead, Options{}); err == nil || !strings.HasPrefix(err.Error(), "sseredis: ") {
		t.Fatalf("New on a dead Redis: %v", err)
	}
}
