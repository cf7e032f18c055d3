package sse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A fresh stream starts with the newest event of every key it may receive,
// in the order they were published, then its position, then live events.
func TestSnapshotOnFreshStream(t *testing.T) {
	starts := make(chan StartKind, 4)
	h, srv := newTestHub(t, Config{
		ClientID:  headerID,
		Topics:    queryTopics,
		OnConnect: func(s StreamInfo) { starts <- s.Start },
	})
	h.Broadcast(Event{Key: "a", Data: []byte("a1")})
	h.Broadcast(Event{Key: "b", Data: []byte("b1")})
	h.Broadcast(Event{Data: []byte("plain, not state")})
	h.Publish("x", Event{Key: "a", Data: []byte("x:a1")}) // same key, another audience
	h.Publish("y", Event{Key: "a", Data: []byte("y:a1")}) // a topic the stream does not follow
	h.Send("ann", Event{Key: "inbox", Data: []byte("ann's inbox")})
	h.Send("bob", Event{Key: "inbox", Data: []byte("bob's inbox")})
	h.Broadcast(Event{Key: "a", Data: []byte("a2")})

	c := dial(t, nil, srv.URL+"?topic=x", user("ann"))
	if k := <-starts; k != StartFresh {
		t.Fatalf("start %v", k)
	}
	var got []string
	for range 4 {
		got = append(got, string(c.next().Data))
	}
	if want := "b1,x:a1,ann's inbox,a2"; strings.Join(got, ",") != want {
		t.Fatalf("snapshot %q, want %q", strings.Join(got, ","), want)
	}
	h.Broadcast(data("live"))
	if ev := c.next(); string(ev.Data) != "live" {
		t.Fatalf("after the snapshot: %q", ev.Data)
	}
	if st := h.Stats(); st.Snapshots != 1 {
		t.Fatalf("stats %+v", st)
	}

	// A resume gets what it missed, not the snapshot.
	last := c.stop()
	waitStreams(t, h, 0)
	h.Broadcast(Event{Key: "b", Data: []byte("b2")})
	c = dial(t, nil, srv.URL+"?topic=x", withHeader(user("ann"), lastEventID(last)))
	if k := <-starts; k != StartResumed {
		t.Fatalf("start %v", k)
	}
	if ev := c.next(); string(ev.Data) != "b2" {
		t.Fatalf("resume got %q", ev.Data)
	}
	c.stop()
	waitStreams(t, h, 0)

	// A reset gets the reset event, then the snapshot.
	c = dial(t, nil, srv.URL, withHeader(user("bob"), lastEventID("nonsense")))
	if k := <-starts; k != StartReset {
		t.Fatalf("start %v", k)
	}
	got = got[:0]
	for range 4 {
		ev := c.next()
		got = append(got, ev.Type+":"+string(ev.Data))
	}
	if want := ResetEvent + ":unknown,:bob's inbox,:a2,:b2"; strings.Join(got, ",") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, ","), want)
	}
}

// The broker remembers at most Config.Keys keys, forgetting the least
// recently updated; a negative Keys remembers none.
func TestSnapshotKeyBound(t *testing.T) {
	for _, tt := range []struct {
		keys int
		want string
	}{
		{2, "k0 v2,k2 v1"},
		{-1, ""},
	} {
		t.Run(fmt.Sprint("keys=", tt.keys), func(t *testing.T) {
			h, srv := newTestHub(t, Config{Keys: tt.keys})
			h.Broadcast(Event{Key: "k0", Data: []byte("k0 v1")})
			h.Broadcast(Event{Key: "k1", Data: []byte("k1 v1")})
			h.Broadcast(Event{Key: "k2", Data: []byte("k2 v1")})
			h.Broadcast(Event{Key: "k0", Data: []byte("k0 v2")}) // k0 is now the most recent: k1 goes
			h.Broadcast(Event{Key: "k2", Data: []byte("k2 v1")})
			c, _ := dialAt(t, srv.URL, nil)
			h.Broadcast(data("end"))
			var got []string
			for {
				ev := c.next()
				if string(ev.Data) == "end" {
					break
				}
				got = append(got, string(ev.Data))
			}
			if strings.Join(got, ",") != tt.want {
				t.Fatalf("snapshot %q, want %q", strings.Join(got, ","), tt.want)
			}
		})
	}
}

// A snapshot holds nothing published after the stream's position: that
// arrives live, so nothing is sent twice.
func TestSnapshotStopsAtThePosition(t *testing.T) {
	b := newMemoryBroker(16, 16)
	b.subscribe(func(*envelope) {})
	publish := func(key, d string) string {
		m := testMessage(&Event{Key: key, Data: []byte(d)}, Target{})
		b.Publish(context.Background(), m)
		return m.Pos
	}
	publish("a", "a1")
	until := publish("b", "b1")
	publish("a", "a2") // after the position: a's state at it is gone, a2 comes live
	publish("c", "c1")
	var got []string
	b.Snapshot(context.Background(), until, []Target{{Kind: ToEveryone}}, func(m *Message) bool {
		got = append(got, string(m.Body))
		return true
	})
	if want := []string{"data: b1\n\n"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// The keys bound applies per audience: a client's many keys push out only
// its own oldest, never the broadcast's state; and over the byte bound,
// clients' states go before shared ones.
func TestSnapshotBoundsKeepSharedState(t *testing.T) {
	t.Run("per audience", func(t *testing.T) {
		h, srv := newTestHub(t, Config{ClientID: headerID, Keys: 2})
		h.Broadcast(Event{Key: "shared", Data: []byte("shared")})
		for i := range 5 {
			h.Send("ann", Event{Key: fmt.Sprint("k", i), Data: []byte(fmt.Sprint("ann ", i))})
		}
		c, _ := dialAt(t, srv.URL, user("ann"))
		h.Broadcast(data("end"))
		if got, want := untilEnd(c), "shared,ann 3,ann 4"; got != want {
			t.Fatalf("snapshot %q, want %q", got, want)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		payload := strings.Repeat("p", 1000)
		h, srv := newTestHub(t, Config{ClientID: headerID, KeyBytes: 8 << 10})
		h.Broadcast(Event{Key: "shared", Data: []byte("shared")})
		for i := range 50 { // 50 KiB of clients' state
			h.Send(fmt.Sprint("u", i), Event{Key: "inbox", Data: []byte(fmt.Sprint(i, payload))})
		}
		c, _ := dialAt(t, srv.URL, user("u49"))
		h.Broadcast(data("end"))
		if got, want := untilEnd(c), "shared,49"+payload; got != want {
			t.Fatalf("snapshot %.40q…, want %.40q…", got, want)
		}
		c, _ = dialAt(t, srv.URL, user("u0"))
		h.Broadcast(data("end"))
		if got := untilEnd(c); got != "shared" {
			t.Fatalf("snapshot %.40q…: the oldest client state should be gone", got)
		}
	})
}

// untilEnd reads events up to one whose data is "end" and returns their data.
func untilEnd(c *testClient) string {
	var got []string
	for {
		ev := c.next()
		if string(ev.Data) == "end" {
			return strings.Join(got, ",")
		}
		got = append(got, string(ev.Data))
	}
}

// Subscribing at run time brings the topic's current state at once, the
// newest event of each key in publish order, then live events; a reconnect
// from there gets nothing twice.
func TestSubscribeDeliversTheTopicsState(t *testing.T) {
	h, srv := newTestHub(t, Config{ClientID: headerID, Topics: queryTopics, Heartbeat: -1})
	h.Publish("line", Event{Key: "speed", Data: []byte("speed 1")})
	h.Publish("line", Event{Key: "temp", Data: []byte("temp 1")})
	h.Publish("line", Event{Key: "speed", Data: []byte("speed 2")})
	h.Publish("line", Event{Data: []byte("a log line, not state")})
	h.Publish("other", Event{Key: "speed", Data: []byte("other topic")})
	h.Send("ann", Event{Key: "speed", Data: []byte("ann's own")}) // another audience's "speed"
	c, _ := dialAt(t, srv.URL, user("ann"))
	if ev := c.next(); string(ev.Data) != "ann's own" { // the fresh stream's snapshot
		t.Fatalf("got %q", ev.Data)
	}
	if n := h.Subscribe("ann", "line"); n != 1 {
		t.Fatalf("Subscribe = %d", n)
	}
	if n := h.Subscribe("ann", "line"); n != 1 { // already subscribed: nothing again
		t.Fatalf("Subscribe = %d", n)
	}
	got := []Event{c.next(), c.next()}
	h.Publish("line", Event{Key: "temp", Data: []byte("temp 2")})
	got = append(got, c.next())
	if d := fmt.Sprintf("%s,%s,%s", got[0].Data, got[1].Data, got[2].Data); d != "temp 1,speed 2,temp 2" {
		t.Fatalf("got %s", d)
	}
	// The state's id moves the client past everything before the
	// subscription, not back to where the state was published.
	if got[0].ID != got[1].ID || got[2].ID == got[1].ID {
		t.Fatalf("ids %q, %q, %q", got[0].ID, got[1].ID, got[2].ID)
	}
	last := c.stop()
	waitStreams(t, h, 0)
	c = dial(t, nil, srv.URL+"?topic=line", withHeader(user("ann"), lastEventID(last)))
	h.Publish("line", data("after"))
	if ev := c.next(); string(ev.Data) != "after" {
		t.Fatalf("the reconnect got %q first", ev.Data)
	}
}

// While values are published, a stream that subscribes sees each key's
// values in order, none twice, starting from the value current when it
// subscribed.
func TestSubscribeWhilePublishing(t *testing.T) {
	h, srv := newTestHub(t, Config{ClientID: headerID, Heartbeat: -1, QueueBytes: 1 << 20})
	const keys, rounds = 8, 400
	stop := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		for r := range rounds {
			for k := range keys {
				h.Publish("line", Event{Key: fmt.Sprint("k", k), Data: []byte(fmt.Sprintf("k%d %05d", k, r))})
			}
			if r == rounds/2 {
				<-stop // the subscription happens mid-way
			}
		}
	}()
	c, _ := dialAt(t, srv.URL, user("ann"))
	for h.Stats().Published < keys*rounds/4 {
		runtime.Gosched()
	}
	h.Subscribe("ann", "line")
	close(stop)
	<-published
	h.Broadcast(data("end"))
	last := map[string]int{}
	for {
		ev := c.next()
		if string(ev.Data) == "end" {
			break
		}
		var k string
		var r int
		fmt.Sscanf(string(ev.Data), "%s %d", &k, &r)
		if prev, ok := last[k]; ok && r <= prev {
			t.Fatalf("%s: value %d after %d", k, r, prev)
		}
		last[k] = r
	}
	for k := range keys {
		if last[fmt.Sprint("k", k)] != rounds-1 {
			t.Fatalf("key k%d ended at %d, want %d", k, last[fmt.Sprint("k", k)], rounds-1)
		}
	}
}

// A client that drops before it got past a run-time subscription (here:
// before anything came after the topic's state) resumes with the topic's
// state, which history cannot replay; one that got past it resumes with a
// plain replay, nothing again.
func TestResumeAfterSubscribe(t *testing.T) {
	h, srv := newTestHub(t, Config{ClientID: headerID, Topics: queryTopics, Heartbeat: -1})
	h.Publish("line", Event{Key: "speed", Data: []byte("speed 1")})
	h.Publish("line", Event{Key: "temp", Data: []byte("temp 1")})
	c := dial(t, nil, srv.URL, user("ann"))
	waitStreams(t, h, 1)
	h.Broadcast(data("before"))
	if ev := c.next(); string(ev.Data) != "before" {
		t.Fatalf("got %q", ev.Data)
	}
	h.Subscribe("ann", "line")
	for _, want := range []string{"speed 1", "temp 1"} {
		if ev := c.next(); string(ev.Data) != want {
			t.Fatalf("got %q, want %q", ev.Data, want)
		}
	}
	last := c.stop() // the id of "before": not past the subscription
	waitStreams(t, h, 0)
	h.Publish("line", Event{Key: "temp", Data: []byte("temp 2")})
	h.Broadcast(data("while away"))

	c = dial(t, nil, srv.URL+"?topic=line", withHeader(user("ann"), lastEventID(last)))
	var got []string
	for range 3 {
		got = append(got, string(c.next().Data))
	}
	// The state of the topic (temp's newest: temp 2), then what the
	// client missed elsewhere; temp 2 is not replayed on top.
	if want := "speed 1,temp 2,while away"; strings.Join(got, ",") != want {
		t.Fatalf("got %s, want %s", strings.Join(got, ","), want)
	}
	h.Broadcast(data("live"))
	if ev := c.next(); string(ev.Data) != "live" {
		t.Fatalf("got %q", ev.Data)
	}
	last = c.stop() // past the subscription now
	waitStreams(t, h, 0)
	h.Publish("line", Event{Key: "speed", Data: []byte("speed 2")})
	c = dial(t, nil, srv.URL+"?topic=line", withHeader(user("ann"), lastEventID(last)))
	if ev := c.next(); string(ev.Data) != "speed 2" {
		t.Fatalf("a resume past the subscription got %q first", ev.Data)
	}
	c.quiet(50 * time.Millisecond)
}

// When the hub has forgotten subscriptions (too many), a resume from
// before the newest it forgot gets the state of all its topics: a repeat
// perhaps, never a loss.
func TestResumeAfterForgottenSubscriptions(t *testing.T) {
	h, srv := newTestHub(t, Config{ClientID: headerID, Topics: queryTopics, Heartbeat: -1})
	h.mu.Lock()
	h.subs.max = 1
	h.mu.Unlock()
	h.Publish("a", Event{Key: "k", Data: []byte("a state")})
	h.Publish("b", Event{Key: "k", Data: []byte("b state")})
	c, last := dialAt(t, srv.URL, user("ann"))
	h.Subscribe("ann", "a")
	h.Subscribe("ann", "b") // "a" is forgotten
	for _, want := range []string{"a state", "b state"} {
		if ev := c.next(); string(ev.Data) != want {
			t.Fatalf("got %q, want %q", ev.Data, want)
		}
	}
	c.stop()
	waitStreams(t, h, 0)
	c = dial(t, nil, srv.URL+"?topic=a&topic=b", withHeader(user("ann"), lastEventID(last)))
	var got []string
	for range 2 {
		got = append(got, string(c.next().Data))
	}
	if strings.Join(got, ",") != "a state,b state" {
		t.Fatalf("got %v", got)
	}
}

// A subscription made while the client has no stream open (a page that
// changes its points while it reconnects) is remembered too: the resume
// with the new topic gets its state.
func TestSubscribeWhileAway(t *testing.T) {
	h, srv := newTestHub(t, Config{ClientID: headerID, Topics: queryTopics, Heartbeat: -1})
	h.Publish("line", Event{Key: "speed", Data: []byte("speed 1")})
	c := dial(t, nil, srv.URL, user("ann"))
	waitStreams(t, h, 1)
	h.Broadcast(data("seen"))
	c.next()
	last := c.stop()
	waitStreams(t, h, 0)
	if n := h.Subscribe("ann", "line"); n != 0 {
		t.Fatalf("Subscribe = %d streams", n)
	}
	c = dial(t, nil, srv.URL+"?topic=line", withHeader(user("ann"), lastEventID(last)))
	if ev := c.next(); string(ev.Data) != "speed 1" {
		t.Fatalf("the resume got %q first, want the topic's state", ev.Data)
	}
}

// A resume that got a topic's state instead of its replay ends past that
// state: the next resume, now past the subscription, does not bring the
// topic's keyed events the state replaced once more.
func TestResumeAfterStateIsNotRepeated(t *testing.T) {
	h, srv := newTestHub(t, Config{ClientID: headerID, Topics: queryTopics, Heartbeat: -1})
	c, start := dialAt(t, srv.URL, user("ann"))
	c.stop()
	waitStreams(t, h, 0)
	h.Subscribe("ann", "line") // while away
	h.Publish("line", Event{Key: "speed", Data: []byte("speed 1")})
	h.Send("ann", data("note")) // after the subscription, with an id
	h.Publish("line", Event{Key: "speed", Data: []byte("speed 2")})

	c = dial(t, nil, srv.URL+"?topic=line", withHeader(user("ann"), lastEventID(start)))
	for _, want := range []string{"speed 2", "note"} {
		if ev := c.next(); string(ev.Data) != want {
			t.Fatalf("the resume got %q, want %q", ev.Data, want)
		}
	}
	// Its position comes after them: a PositionEvent.
	waitFor(t, "a PositionEvent after the topic's state", func() bool { return c.positions.Load() == 1 })
	last := c.stop()
	waitStreams(t, h, 0)

	c = dial(t, nil, srv.URL+"?topic=line", withHeader(user("ann"), lastEventID(last)))
	waitStreams(t, h, 1)
	h.Send("ann", data("live"))
	if ev := c.next(); string(ev.Data) != "live" {
		t.Fatalf("the second resume got %q, want nothing before the live event", ev.Data)
	}
}

// stallingBroker is the in-memory broker whose next Snapshot, once armed,
// waits until released, as a Broker on a stalled Redis does, and then
// fails if fail is set.
type stallingBroker struct {
	*memoryBroker
	armed   atomic.Bool
	stalled chan struct{} // closed when the armed Snapshot starts waiting
	release chan struct{}
	fail    bool
}

func (b *stallingBroker) Snapshot(ctx context.Context, until string, to []Target, fn func(*Message) bool) error {
	if b.armed.CompareAndSwap(true, false) {
		close(b.stalled)
		select {
		case <-b.release:
		case <-ctx.Done():
			return ctx.Err()
		}
		if b.fail {
			return errors.New("redis is gone")
		}
	}
	return b.memoryBroker.Snapshot(ctx, until, to, fn)
}

// Subscribe holds no lock of the hub's while the Broker reads the topic's
// state: streams start, events reach every stream, Stats and Disconnect
// answer, and the subscribing stream then gets the state first and what
// was delivered meanwhile after it, in order.
func TestSubscribeDoesNotFreezeTheHub(t *testing.T) {
	b := &stallingBroker{memoryBroker: newMemoryBroker(64, 64), stalled: make(chan struct{}), release: make(chan struct{})}
	h, srv := newTestHub(t, Config{Broker: b, ClientID: headerID, Heartbeat: -1})
	h.Publish("line", Event{Key: "speed", Data: []byte("speed 1")})
	ann := dial(t, nil, srv.URL, user("ann"))
	bob := dial(t, nil, srv.URL, user("bob"))
	waitStreams(t, h, 2)
	subscribed := make(chan int, 1)
	b.armed.Store(true)
	go func() { subscribed <- h.Subscribe("ann", "line") }()
	<-b.stalled
	h.Broadcast(data("during"))
	h.Publish("line", Event{Key: "temp", Data: []byte("temp 2")})
	if ev := bob.next(); string(ev.Data) != "during" {
		t.Fatalf("bob got %q", ev.Data)
	}
	cat := dial(t, nil, srv.URL, user("cat"))
	waitStreams(t, h, 3)
	if n := h.Disconnect("cat"); n != 1 {
		t.Fatalf("Disconnect = %d", n)
	}
	if _, err := cat.drain(); err == nil {
		t.Fatal("cat's stream did not end")
	}
	close(b.release)
	if n := <-subscribed; n != 1 {
		t.Fatalf("Subscribe = %d", n)
	}
	var got []string
	for range 3 {
		got = append(got, string(ann.next().Data))
	}
	if want := "speed 1,during,temp 2"; strings.Join(got, ",") != want {
		t.Fatalf("ann got %s, want %s", strings.Join(got, ","), want)
	}
}

// A subscription whose state the Broker cannot read ends the stream
// before anything delivered after it; the client's resume brings the
// state, then the rest.
func TestSubscribeWhoseStateFails(t *testing.T) {
	b := &stallingBroker{memoryBroker: newMemoryBroker(64, 64), stalled: make(chan struct{}), release: make(chan struct{}), fail: true}
	h, srv := newTestHub(t, Config{Broker: b, ClientID: headerID, Topics: queryTopics, Heartbeat: -1})
	h.Publish("line", Event{Key: "speed", Data: []byte("speed 1")})
	ann := dial(t, nil, srv.URL, user("ann"))
	waitStreams(t, h, 1)
	h.Broadcast(data("before"))
	if ev := ann.next(); string(ev.Data) != "before" {
		t.Fatalf("got %q", ev.Data)
	}
	subscribed := make(chan int, 1)
	b.armed.Store(true)
	go func() { subscribed <- h.Subscribe("ann", "line") }()
	<-b.stalled
	h.Broadcast(data("after"))
	close(b.release)
	<-subscribed
	rest, err := ann.drain()
	if len(rest) != 0 || err == nil {
		t.Fatalf("the stream got %v, then %v; want its end, nothing after the subscription", rest, err)
	}
	c := dial(t, nil, srv.URL+"?topic=line", withHeader(user("ann"), lastEventID(ann.dec.LastEventID())))
	var got []string
	for range 2 {
		got = append(got, string(c.next().Data))
	}
	if want := "speed 1,after"; strings.Join(got, ",") != want {
		t.Fatalf("the resume got %s, want %s", strings.Join(got, ","), want)
	}
}

// A stream whose snapshot the Broker fails writes nothing, not even its
// reset: OnConnect is told StartUnavailable, the stream ends as
// unavailable, and the client's retry, with the same Last-Event-ID, gets
// its whole start.
func TestFailedSnapshotWritesNothing(t *testing.T) {
	b := &stallingBroker{memoryBroker: newMemoryBroker(64, 64), stalled: make(chan struct{}), release: make(chan struct{}), fail: true}
	close(b.release)
	starts := make(chan StartKind, 4)
	h, srv := newTestHub(t, Config{Broker: b, Heartbeat: -1, OnConnect: func(s StreamInfo) { starts <- s.Start }})
	h.Broadcast(Event{Key: "k", Data: []byte("state")})
	for _, last := range []string{"", "nonsense"} { // fresh; an id to reset
		b.armed.Store(true)
		b.stalled = make(chan struct{})
		var header http.Header
		if last != "" {
			header = lastEventID(last)
		}
		c, resp := tryDial(t, nil, srv.URL, header)
		giveUp := time.AfterFunc(testTimeout, c.close) // a failure, not a hang, if the stream goes on
		body, err := io.ReadAll(resp.Body)
		giveUp.Stop()
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || strings.Contains(string(body), "data:") || strings.Contains(string(body), "id:") {
			t.Fatalf("Last-Event-ID %q: a failed snapshot wrote %s %q (%v)", last, resp.Status, body, err)
		}
		if k := <-starts; k != StartUnavailable {
			t.Fatalf("Last-Event-ID %q: OnConnect saw %v", last, k)
		}
	}
	if st := h.Stats(); st.ReplayFailures != 2 || st.Resets != 0 || st.Snapshots != 0 {
		t.Fatalf("stats %+v", st)
	}
	c := dial(t, nil, srv.URL, lastEventID("nonsense"))
	if ev := c.next(); ev.Type != ResetEvent {
		t.Fatalf("the retry got %s %q first", ev.Type, ev.Data)
	}
	if ev := c.next(); string(ev.Data) != "state" {
		t.Fatalf("the retry got %q, want the snapshot", ev.Data)
	}
}
