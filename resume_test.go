package sse

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file guards a stream's resume point: it never moves past an event
// the stream is entitled to and did not receive.

// cuttingBroker is the in-memory broker whose Replay calls during, once, after
// the first message it replays.
type cuttingBroker struct {
	*memoryBroker
	once   sync.Once
	during func()
}

func (b *cuttingBroker) Replay(ctx context.Context, after, until string, to []Target, fn func(*Message) bool) (bool, string, error) {
	return b.memoryBroker.Replay(ctx, after, until, to, func(m *Message) bool {
		more := fn(m)
		b.once.Do(b.during)
		return more
	})
}

// readAll reads a stream until it ends and returns the data of its events
// and the last event ID its client ends with.
func readAll(t *testing.T, c *testClient) ([]string, string) {
	t.Helper()
	var got []string
	rest, _ := c.drain()
	for _, ev := range rest {
		got = append(got, string(ev.Data))
	}
	return got, c.dec.LastEventID()
}

// A replay cut short, because the stream ended while it was collected
// (Hub.Disconnect) or because live events overflowed its queue meanwhile,
// leaves the client's resume point at the last event it received: its
// reconnect gets the rest, with nothing lost and nothing twice.
func TestReplayCutShortLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		during func(h *Hub) // what ends the stream while its replay is collected
		live   int          // events it publishes
	}{
		{"disconnect", func(h *Hub) { h.Disconnect("ann") }, 0},
		{"overflow", func(h *Hub) {
			for i := range 40 {
				h.Broadcast(data(fmt.Sprintf("live %02d %s", i, strings.Repeat("x", 200))))
			}
		}, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &cuttingBroker{memoryBroker: newMemoryBroker(1024, 16)}
			var h *Hub
			b.during = func() { tc.during(h) }
			h, srv := newTestHub(t, Config{Broker: b, ClientID: headerID, QueueBytes: 4096, Heartbeat: -1})
			c, last := dialAt(t, srv.URL, user("ann"))
			c.stop()
			waitStreams(t, h, 0)
			var want []string
			for i := range 20 {
				want = append(want, fmt.Sprintf("missed %02d", i))
				h.Broadcast(data(want[i]))
			}
			for i := range tc.live {
				want = append(want, fmt.Sprintf("live %02d %s", i, strings.Repeat("x", 200)))
			}
			// The first reconnect is cut short after one replayed event.
			first := dial(t, nil, srv.URL, withHeader(user("ann"), lastEventID(last)))
			got, resume := readAll(t, first)
			if len(got) >= len(want) {
				t.Fatalf("the replay was not cut short: %d events", len(got))
			}
			// The next one gets the rest.
			second := dial(t, nil, srv.URL, withHeader(user("ann"), lastEventID(resume)))
			waitStreams(t, h, 1)
			h.Broadcast(data("end"))
			for {
				ev := second.next()
				if string(ev.Data) == "end" {
					break
				}
				got = append(got, string(ev.Data))
			}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("over two streams the client got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// laggingBroker is the in-memory broker delivering to its hub only when
// told to, as a node of a shared broker that lags behind the others does.
type laggingBroker struct {
	*memoryBroker
	mu      sync.Mutex
	held    []*Message
	handler BrokerHandler
}

func (b *laggingBroker) Subscribe(h BrokerHandler) (string, error) {
	b.handler = h
	return b.memoryBroker.subscribe(func(e *envelope) {
		b.mu.Lock()
		b.held = append(b.held, &e.Message)
		b.mu.Unlock()
	}), nil
}

// release delivers what the hub was not delivered yet.
func (b *laggingBroker) release() {
	b.mu.Lock()
	held := b.held
	b.held = nil
	b.mu.Unlock()
	for _, m := range held {
		b.handler.HandleMessage(m)
	}
}

// A client whose Last-Event-ID is ahead of this hub's deliveries (it read
// those events from another node) resumes once the hub catches up, from
// its own Last-Event-ID: the events it already had do not come twice.
func TestResumeAheadOfTheHub(t *testing.T) {
	b := &laggingBroker{memoryBroker: newMemoryBroker(1024, 16)}
	h, srv := newTestHub(t, Config{Broker: b, Heartbeat: -1})
	var positions []string
	for i := range 3 {
		m := testMessage(&Event{Data: []byte(fmt.Sprint("event ", i+1))}, Target{Kind: ToEveryone})
		if err := b.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		positions = append(positions, m.Pos)
	}
	// The client saw events 1 and 2 elsewhere; this hub has delivered none.
	// Its stream starts (its headers come) once the hub has caught up.
	dialed := make(chan *testClient, 1)
	go func() {
		c, resp := tryDial(t, nil, srv.URL, lastEventID(positions[1]))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %s", resp.Status)
		}
		c.start(positions[1])
		dialed <- c
	}()
	waitStreams(t, h, 1)
	b.release()
	c := <-dialed
	h.Broadcast(data("live"))
	b.release()
	for _, want := range []string{"event 3", "live"} {
		if ev := c.next(); string(ev.Data) != want {
			t.Fatalf("got %q (id %s), want %q", ev.Data, ev.ID, want)
		}
	}
	if st := h.Stats(); st.Resets != 0 {
		t.Fatalf("stats %+v: a resume ahead of the hub is no reset", st)
	}
}

// A resume whose Last-Event-ID this hub never reaches in time is no resume:
// OnConnect is told StartUnavailable, nothing is written, the stream ends
// as unavailable and its client retries with the same id.
func TestResumeAheadThatNeverCatchesUp(t *testing.T) {
	defer func(d time.Duration) { aheadWait = d }(aheadWait)
	aheadWait = 200 * time.Millisecond
	b := &laggingBroker{memoryBroker: newMemoryBroker(1024, 16)}
	starts := make(chan StartKind, 1)
	reasons := make(chan DisconnectReason, 1)
	_, srv := newTestHub(t, Config{Broker: b, Heartbeat: -1,
		OnConnect:    func(s StreamInfo) { starts <- s.Start },
		OnDisconnect: func(_ StreamInfo, r DisconnectReason) { reasons <- r },
	})
	m := testMessage(&Event{Data: []byte("elsewhere")}, Target{Kind: ToEveryone})
	if err := b.Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	_, resp := tryDial(t, nil, srv.URL, lastEventID(m.Pos)) // never released to the hub
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || strings.Contains(string(body), "id:") || strings.Contains(string(body), "data:") {
		t.Fatalf("the stream wrote %q (%v), want nothing but its retry field", body, err)
	}
	if k := <-starts; k != StartUnavailable {
		t.Fatalf("OnConnect saw %v, want %v", k, StartUnavailable)
	}
	if r := <-reasons; r != ReasonUnavailable {
		t.Fatalf("OnDisconnect saw %v, want %v", r, ReasonUnavailable)
	}
}

// A client that stops reading in the middle of its replay is ended (here as
// slow, once live events overflow its queue), and resumes from the last
// event it read in whole: over its two streams it gets every event once, in
// order.
func TestClientStopsReadingMidReplay(t *testing.T) {
	ended := make(chan DisconnectReason, 4)
	h, err := NewHub(testConfig(Config{
		ClientID: headerID, History: 10_000, QueueBytes: 64 << 10, WriteTimeout: time.Hour, Heartbeat: -1,
		OnDisconnect: func(_ StreamInfo, r DisconnectReason) { ended <- r },
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := smallBufferServer(t, h)
	c, last := dialAt(t, srv.URL, user("ann"))
	c.stop()
	<-ended
	var want []string
	publish := func(prefix string, n int) {
		for i := range n {
			d := fmt.Sprintf("%s %04d %s", prefix, i, strings.Repeat("x", 1000))
			want = append(want, d)
			if _, err := h.Broadcast(data(d)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish("missed", 2000) // 2 MB: far more than the socket buffers hold

	// The client reads a little of its replay, then nothing.
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.(*net.TCPConn).SetReadBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: test\r\nX-User: ann\r\nLast-Event-ID: %s\r\n\r\n", last)
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	dec := NewDecoder(br)
	dec.SetLastEventID(last)
	var got []string
	for range 5 {
		ev, err := dec.Decode()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(ev.Data))
	}
	waitStreams(t, h, 1)
	for h.Stats().SlowDisconnects == 0 {
		publish("live", 10)
	}
	if r := <-ended; r != ReasonSlow {
		t.Fatalf("the stream ended %v, want slow", r)
	}
	// Now it reads what reached it, up to the end of the stream.
	_ = conn.SetReadDeadline(time.Now().Add(testTimeout))
	for {
		ev, err := dec.Decode()
		if err != nil {
			break // the end: EOF, or a reset after the hub closed
		}
		got = append(got, string(ev.Data))
	}
	// It reconnects from the last event it read whole.
	second := dial(t, nil, srv.URL, withHeader(user("ann"), lastEventID(dec.LastEventID())))
	waitStreams(t, h, 1)
	h.Broadcast(data("end"))
	for {
		ev := second.next()
		if ev.Type == ResetEvent {
			t.Fatalf("the reconnect was reset (%s)", ev.Data)
		}
		if string(ev.Data) == "end" {
			break
		}
		got = append(got, string(ev.Data))
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events over two streams, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("event %d: got %.12q, want %.12q", i, got[i], want[i])
		}
	}
}

// A stream on a quiet topic resumes exactly after the history has wrapped
// many times over events it may not receive, whether it had received an
// event or only its start's PositionEvent, with history kept or none; it
// is reset once, and only, when an event it may receive is really gone.
func TestQuietStreamResumesExactly(t *testing.T) {
	url := func(srv string) string { return srv + "?id=ann&topic=quiet" }
	byQuery := func(r *http.Request) (string, error) { return r.URL.Query().Get("id"), nil }
	for _, history := range []int{8, -1} {
		t.Run(fmt.Sprint("history=", history), func(t *testing.T) {
			cfg := Config{History: history, Heartbeat: -1, Topics: queryTopics, ClientID: byQuery}

			// After an event of its own.
			h, srv := newTestHub(t, cfg)
			c := dial(t, nil, url(srv.URL), nil)
			waitStreams(t, h, 1)
			h.Publish("quiet", data("first"))
			if ev := c.next(); string(ev.Data) != "first" {
				t.Fatalf("got %+v", ev)
			}
			last := c.stop()
			waitStreams(t, h, 0)
			for range 80 {
				h.Publish("loud", data("not for ann"))
			}
			if history > 0 {
				h.Publish("quiet", data("news"))
			}
			c = dial(t, nil, url(srv.URL), lastEventID(last))
			waitStreams(t, h, 1)
			h.Send("ann", data("live"))
			want := []string{"news", "live"}
			if history < 0 {
				want = want[1:]
			}
			for _, w := range want {
				if ev := c.next(); ev.Type == ResetEvent || string(ev.Data) != w {
					t.Fatalf("resumed from %s: got %s %q, want %q", last, ev.Type, ev.Data, w)
				}
			}
			last = c.stop()
			waitStreams(t, h, 0)

			// Before any event: its resume point is its start's position.
			fresh, pos := dialAt(t, srv.URL+"?id=bob&topic=quiet", nil)
			if fresh.positions.Load() != 1 {
				t.Fatalf("the fresh stream read %d PositionEvents, want 1", fresh.positions.Load())
			}
			fresh.stop()
			waitStreams(t, h, 0)
			for range 80 {
				h.Publish("loud", data("not for bob"))
			}
			if history > 0 {
				h.Send("bob", data("hello"))
				h.Broadcast(data("to all"))
			}
			c = dial(t, nil, srv.URL+"?id=bob&topic=quiet", lastEventID(pos))
			waitStreams(t, h, 1)
			h.Publish("quiet", data("live"))
			want = []string{"hello", "to all", "live"}
			if history < 0 {
				want = want[2:]
			}
			for _, w := range want {
				if ev := c.next(); ev.Type == ResetEvent || string(ev.Data) != w {
					t.Fatalf("resumed from its start %s: got %s %q, want %q", pos, ev.Type, ev.Data, w)
				}
			}
			if n := c.positions.Load(); n != 0 {
				t.Fatalf("a resumed stream got %d PositionEvents", n)
			}
			c.stop()
			waitStreams(t, h, 0)
			if st := h.Stats(); st.Resets != 0 || st.Replays != 2 {
				t.Fatalf("stats %+v, want 2 replays and no reset", st)
			}

			// A real loss: an event for ann leaves history while she is away.
			h.Publish("quiet", data("lost"))
			for range 80 {
				h.Publish("loud", data("not for ann"))
			}
			c = dial(t, nil, url(srv.URL), lastEventID(last))
			if ev := c.next(); ev.Type != ResetEvent || string(ev.Data) != "expired" {
				t.Fatalf("got %s %q, want a reset", ev.Type, ev.Data)
			}
			waitStreams(t, h, 1)
			h.Publish("quiet", data("after"))
			if ev := c.next(); ev.Type == ResetEvent || string(ev.Data) != "after" {
				t.Fatalf("after the reset: got %s %q", ev.Type, ev.Data)
			}
			if st := h.Stats(); st.Resets != 1 || st.ResetsBy != (Resets{Expired: 1}) {
				t.Fatalf("stats %+v, want one reset, expired", st)
			}
		})
	}
}

// gapBroker is the in-memory broker with a way to report a gap in its
// deliveries, as a shared engine's follower that fell behind would.
type gapBroker struct {
	*memoryBroker
	handler BrokerHandler
}

func (b *gapBroker) Subscribe(h BrokerHandler) (string, error) {
	b.handler = h
	return b.memoryBroker.Subscribe(h)
}

// A Broker that reports lost deliveries (BrokerHandler.HandleGap) ends every stream,
// once each has written what it was queued, so that their clients resume
// from what they received; new streams start normally.
func TestBrokerGapEndsEveryStream(t *testing.T) {
	b := &gapBroker{memoryBroker: newMemoryBroker(64, 16)}
	reasons := make(chan DisconnectReason, 4)
	h, srv := newTestHub(t, Config{Broker: b, Heartbeat: -1, OnDisconnect: func(_ StreamInfo, r DisconnectReason) { reasons <- r }})
	one, two := dial(t, nil, srv.URL, nil), dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 2)
	h.Broadcast(data("before"))
	b.mu.Lock() // as the broker delivers: never concurrently with itself
	b.handler.HandleGap(b.pos(b.seq))
	b.mu.Unlock()
	for _, c := range []*testClient{one, two} {
		rest, err := c.drain()
		if len(rest) != 1 || string(rest[0].Data) != "before" || err == nil {
			t.Fatalf("the stream got %v, then %v; want what was queued, then its end", rest, err)
		}
	}
	for range 2 {
		if r := <-reasons; r != ReasonUnavailable {
			t.Fatalf("ended as %v, want unavailable", r)
		}
	}
	if st := h.Stats(); st.BrokerGaps != 1 || st.Streams != 0 {
		t.Fatalf("stats %+v", st)
	}
	c := dial(t, nil, srv.URL, lastEventID(one.dec.LastEventID()))
	waitStreams(t, h, 1)
	h.Broadcast(data("after"))
	if ev := c.next(); ev.Type == ResetEvent || string(ev.Data) != "after" {
		t.Fatalf("the resume got %s %q", ev.Type, ev.Data)
	}
}

// earlyBroker delivers a message to its hub from within Subscribe, and
// then returns the position before it, as a Broker's follower may.
type earlyBroker struct{ *memoryBroker }

func (b *earlyBroker) Subscribe(h BrokerHandler) (string, error) {
	last, err := b.memoryBroker.Subscribe(h)
	if err != nil {
		return "", err
	}
	m := testMessage(&Event{Key: "k", Data: []byte("delivered during Subscribe")}, Target{Kind: ToEveryone})
	if err := b.memoryBroker.Publish(context.Background(), m); err != nil {
		return "", err
	}
	return last, nil
}

// A delivery that comes before the Broker's Subscribe returns is not
// undone by the older position Subscribe returns: a fresh stream's
// snapshot holds it.
func TestDeliveryDuringSubscribe(t *testing.T) {
	b := &earlyBroker{memoryBroker: newMemoryBroker(16, 16)}
	_, srv := newTestHub(t, Config{Broker: b, Heartbeat: -1})
	c := dial(t, nil, srv.URL, nil)
	if ev := c.next(); string(ev.Data) != "delivered during Subscribe" {
		t.Fatalf("the fresh stream got %q first, want the state delivered during Subscribe", ev.Data)
	}
}
