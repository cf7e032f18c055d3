package sse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stop closes the client and returns the last event ID its decoder ended
// with: what a browser would send on its reconnect.
func (c *testClient) stop() string {
	c.t.Helper()
	last, _ := c.stopDrain()
	return last
}

// stopDrain is stop that also returns the events decoded but not yet read:
// the client has seen them, and its last event ID counts them.
func (c *testClient) stopDrain() (string, []Event) {
	c.t.Helper()
	c.close()
	rest, _ := c.drain()
	return c.dec.LastEventID(), rest
}

func lastEventID(id string) http.Header { return http.Header{"Last-Event-Id": {id}} }

func withHeader(a, b http.Header) http.Header {
	out := http.Header{}
	for _, h := range []http.Header{a, b} {
		for k, v := range h {
			out[k] = v
		}
	}
	return out
}

func data(s string) Event { return Event{Data: []byte(s)} }

// A reconnect receives exactly the events it missed and is entitled to:
// broadcasts, its topics, its own client ID's sends; never another ID's.
func TestReplayExactlyWhatWasMissed(t *testing.T) {
	h, srv := newTestHub(t, Config{ClientID: headerID, Topics: queryTopics})
	url := srv.URL + "?topic=a"
	c := dial(t, nil, url, user("ann"))
	waitStreams(t, h, 1)
	h.Broadcast(data("seen"))
	if ev := c.next(); string(ev.Data) != "seen" {
		t.Fatalf("got %q", ev.Data)
	}
	last := c.stop()
	waitStreams(t, h, 0)

	h.Broadcast(data("b1"))
	h.Publish("a", data("topic a"))
	h.Publish("b", data("topic b"))
	h.Send("ann", data("for ann"))
	h.Send("bob", data("for bob"))
	h.Broadcast(data("b2"))

	c = dial(t, nil, url, withHeader(user("ann"), lastEventID(last)))
	h.Broadcast(data("live"))
	var got []string
	for range 5 {
		got = append(got, string(c.next().Data))
	}
	if want := "b1,topic a,for ann,b2,live"; strings.Join(got, ",") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, ","), want)
	}
	c.quiet(50e6)
	if st := h.Stats(); st.Replays != 1 || st.Resets != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A stream that received no event still learns the hub's position when it
// starts, so its reconnect misses nothing published in between.
func TestIdleStreamResumesFromItsStart(t *testing.T) {
	h, srv := newTestHub(t, Config{})
	for _, published := range []int{0, 3} {
		for range published {
			h.Broadcast(data("before anyone connected"))
		}
		c, last := dialAt(t, srv.URL, nil)
		if want := fmt.Sprint("-", h.Stats().Published); !strings.HasSuffix(last, want) {
			t.Fatalf("starting position %q, want it to end in %q", last, want)
		}
		c.stop()
		waitStreams(t, h, 0)
		h.Broadcast(data("while away"))
		c = dial(t, nil, srv.URL, lastEventID(last))
		if ev := c.next(); string(ev.Data) != "while away" {
			t.Fatalf("got %q", ev.Data)
		}
		c.stop()
		waitStreams(t, h, 0)
	}
}

// A reconnect that already has everything replays nothing.
func TestReplayNothingMissed(t *testing.T) {
	h, srv := newTestHub(t, Config{})
	c := dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	h.Broadcast(data("one"))
	c.next()
	last := c.stop()
	waitStreams(t, h, 0)
	c = dial(t, nil, srv.URL, lastEventID(last))
	waitStreams(t, h, 1)
	h.Broadcast(data("two"))
	if ev := c.next(); string(ev.Data) != "two" {
		t.Fatalf("got %q", ev.Data)
	}
	if st := h.Stats(); st.Replays != 1 || st.Resets != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// An id the hub cannot resume from gets one explicit ResetEvent, whose id is
// the hub's position, so the next reconnect resumes normally.
func TestResetWhenHistoryCannotResume(t *testing.T) {
	other, otherSrv := newTestHub(t, Config{})
	oc := dial(t, nil, otherSrv.URL, nil)
	waitStreams(t, other, 1)
	other.Broadcast(data("elsewhere"))
	otherID := oc.next().ID

	h, srv := newTestHub(t, Config{History: 4})
	first := dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	h.Broadcast(data("old"))
	oldID := first.next().ID
	for i := range 10 {
		h.Broadcast(data(fmt.Sprint(i)))
	}
	first.stop()
	waitStreams(t, h, 0)
	current := strings.Split(oldID, "-")[0] + "-11"

	tests := []struct{ lastID, reason string }{
		{oldID, "expired"},
		{otherID, "epoch"},
		{"hello", "unknown"},
		{strings.Split(oldID, "-")[0] + "-999", "unknown"},
		{strings.Repeat("z", 10000), "unknown"},
		{"\u00e9t\u00e9", "unknown"},
	}
	for i, tt := range tests {
		c := dial(t, nil, srv.URL, lastEventID(tt.lastID))
		ev := c.next()
		if ev.Type != ResetEvent || string(ev.Data) != tt.reason || ev.ID != current {
			t.Fatalf("%.20q: got %+v, want a %s reset with id %s", tt.lastID, ev, tt.reason, current)
		}
		last := c.stop()
		waitStreams(t, h, 0)
		if st := h.Stats(); st.Resets != uint64(i+1) {
			t.Fatalf("stats %+v", st)
		}
		// Resuming from the reset's id works, and live events follow.
		c = dial(t, nil, srv.URL, lastEventID(last))
		waitStreams(t, h, 1)
		h.Send("x", data("not for this stream")) // moves the position on
		h.Broadcast(data("after reset"))
		if ev := c.next(); string(ev.Data) != "after reset" {
			t.Fatalf("after a reset: got %+v", ev)
		}
		c.stop()
		waitStreams(t, h, 0)
		current = strings.Split(current, "-")[0] + "-" + strconv.Itoa(13+2*i)
	}
	if got, want := h.Stats().ResetsBy, (Resets{Expired: 1, Epoch: 1, Unknown: 4}); got != want {
		t.Fatalf("resets by reason %+v, want %+v", got, want)
	}
}

// With history off, a reconnect that missed nothing still resumes; one that
// missed something gets a reset.
func TestNoHistory(t *testing.T) {
	h, srv := newTestHub(t, Config{History: -1})
	c := dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	h.Broadcast(data("a"))
	c.next()
	last := c.stop()
	waitStreams(t, h, 0)
	c = dial(t, nil, srv.URL, lastEventID(last))
	waitStreams(t, h, 1)
	h.Broadcast(data("b"))
	if ev := c.next(); string(ev.Data) != "b" {
		t.Fatalf("got %+v", ev)
	}
	c.stop()
	waitStreams(t, h, 0)
	h.Broadcast(data("missed"))
	c = dial(t, nil, srv.URL, lastEventID(last))
	if ev := c.next(); ev.Type != ResetEvent || string(ev.Data) != "expired" {
		t.Fatalf("got %+v", ev)
	}
}

// An application-chosen id resumes while its event is in history.
func TestUserSetIDResumes(t *testing.T) {
	h, srv := newTestHub(t, Config{})
	c := dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	h.Broadcast(Event{ID: "order-41", Data: []byte("41")})
	if ev := c.next(); ev.ID != "order-41" {
		t.Fatalf("the user id was not written: %+v", ev)
	}
	last := c.stop()
	waitStreams(t, h, 0)
	h.Broadcast(Event{ID: "order-42", Data: []byte("42")})
	h.Broadcast(data("plain"))
	c = dial(t, nil, srv.URL, lastEventID(last))
	if ev := c.next(); ev.ID != "order-42" || string(ev.Data) != "42" {
		t.Fatalf("got %+v", ev)
	}
	if ev := c.next(); string(ev.Data) != "plain" || ev.ID == "order-42" {
		t.Fatalf("got %+v", ev)
	}
}

// A replay keeps only the newest of several events with the same Key.
func TestReplayConflatesKeys(t *testing.T) {
	h, srv := newTestHub(t, Config{})
	c, last := dialAt(t, srv.URL, nil)
	c.stop()
	waitStreams(t, h, 0)
	for i := range 5 {
		h.Broadcast(Event{Key: "temp", Data: []byte(fmt.Sprint("temp ", i))})
		h.Broadcast(Event{Data: []byte(fmt.Sprint("log ", i))})
		if i < 2 {
			h.Broadcast(Event{Key: "pressure", Data: []byte(fmt.Sprint("pressure ", i))})
		}
	}
	c = dial(t, nil, srv.URL, lastEventID(last))
	var got []string
	for range 7 {
		got = append(got, string(c.next().Data))
	}
	want := "log 0,log 1,pressure 1,log 2,log 3,temp 4,log 4"
	if strings.Join(got, ",") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(got, ","), want)
	}
}

// A replay conflates a state within its audience only: the newest of one
// Key is kept per audience, so a Send never hides a broadcast's state.
func TestReplayConflatesWithinAnAudience(t *testing.T) {
	h, srv := newTestHub(t, Config{ClientID: headerID, Topics: queryTopics})
	url := srv.URL + "?topic=line"
	c, last := dialAt(t, url, user("ann"))
	c.stop()
	waitStreams(t, h, 0)
	h.Broadcast(Event{Key: "a", Data: []byte("shared 1")})
	h.Send("ann", Event{Key: "a", Data: []byte("ann 1")})
	h.Publish("line", Event{Key: "a", Data: []byte("line 1")})
	h.Broadcast(Event{Key: "a", Data: []byte("shared 2")})
	h.Send("ann", Event{Key: "a", Data: []byte("ann 2")})
	c = dial(t, nil, url, withHeader(user("ann"), lastEventID(last)))
	var got []string
	for range 3 {
		got = append(got, string(c.next().Data))
	}
	if want := "line 1,shared 2,ann 2"; strings.Join(got, ",") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(got, ","), want)
	}
	c.quiet(50 * time.Millisecond)
}

// Clients that disconnect and resume at random while many goroutines
// publish never see a gap, a duplicate or another client's event: register
// live first, replay up to that point, then go live.
func TestReplayUnderConcurrentPublishing(t *testing.T) {
	const (
		publishers  = 4
		perProducer = 500
		clients     = 3
	)
	h, srv := newTestHub(t, Config{ClientID: headerID, History: publishers * perProducer * 3})
	names := []string{"c0", "c1", "c2"}
	start := make(chan struct{})
	var pubs sync.WaitGroup
	for p := range publishers {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			<-start
			r := rand.New(rand.NewPCG(uint64(p), 7))
			for k := range perProducer {
				if k%5 == 0 {
					time.Sleep(200 * time.Microsecond) // let readers reconnect mid-stream
				}
				var err error
				switch r.IntN(3) {
				case 0:
					_, err = h.Broadcast(data("all"))
				case 1:
					_, err = h.Send(names[r.IntN(clients)], data("mine"))
				default:
					_, err = h.Send("stranger", data("stranger"))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	type result struct {
		seqs []uint64
		data []string
	}
	results := make([]result, clients)
	var resMu sync.Mutex
	var reconnects atomic.Int64
	record := func(i int, ev Event) {
		if ev.Type == ResetEvent {
			t.Errorf("%s got a reset: %s", names[i], ev.Data)
		}
		seq, _ := strconv.ParseUint(ev.ID[strings.IndexByte(ev.ID, '-')+1:], 10, 64)
		resMu.Lock()
		results[i].seqs = append(results[i].seqs, seq)
		results[i].data = append(results[i].data, string(ev.Data))
		resMu.Unlock()
	}
	var readers sync.WaitGroup
	stop := make(chan struct{})
	for i := range clients {
		// Each client connects before publishing starts, so everything
		// published is owed to it.
		c, _ := dialAt(t, srv.URL, user(names[i]))
		readers.Add(1)
		go func() {
			defer readers.Done()
			r := rand.New(rand.NewPCG(uint64(i), 11))
			for {
				n := 1 + r.IntN(40)
				for range n {
					select {
					case ev, ok := <-c.events:
						if !ok {
							t.Errorf("stream ended early")
							return
						}
						record(i, ev)
					case <-stop:
						c.stop()
						return
					}
				}
				last, rest := c.stopDrain()
				for _, ev := range rest {
					record(i, ev)
				}
				reconnects.Add(1)
				c = dial(t, nil, srv.URL, withHeader(user(names[i]), lastEventID(last)))
			}
		}()
	}
	close(start)
	pubs.Wait()
	// Every client must eventually see everything it is entitled to.
	want := make([]int, clients)
	h.mem.mu.Lock()
	if h.mem.seq != publishers*perProducer {
		t.Fatalf("%d events published", h.mem.seq)
	}
	for s := uint64(1); s <= h.mem.seq; s++ {
		m := h.mem.ring[s%uint64(len(h.mem.ring))]
		for i, name := range names {
			if m.To.Kind == ToEveryone || m.To.Name == name {
				want[i]++
			}
		}
	}
	h.mem.mu.Unlock()
	// Readers keep cycling; give them time to drain, then stop them.
	for i := range clients {
		waitFor(t, fmt.Sprintf("client %s to see %d events", names[i], want[i]), func() bool {
			resMu.Lock()
			defer resMu.Unlock()
			return len(results[i].seqs) >= want[i]
		})
	}
	close(stop)
	readers.Wait()
	if reconnects.Load() < 10 {
		t.Fatalf("only %d reconnects: the test exercised too little", reconnects.Load())
	}
	for i, res := range results {
		for k := 1; k < len(res.seqs); k++ {
			if res.seqs[k] <= res.seqs[k-1] {
				t.Fatalf("%s: position %d after %d: duplicate or reordered", names[i], res.seqs[k], res.seqs[k-1])
			}
		}
		for _, d := range res.data {
			if d == "stranger" {
				t.Fatalf("%s received another client's event", names[i])
			}
		}
		if len(res.seqs) != want[i] {
			t.Fatalf("%s: %d events, want %d", names[i], len(res.seqs), want[i])
		}
	}
}

// History is bounded by bytes as well as by count: large events push the
// oldest out, and a resume from before them is a reset, not a gap.
func TestHistoryBytesBound(t *testing.T) {
	h, srv := newTestHub(t, Config{History: 1000, HistoryBytes: 64 << 10})
	c, last := dialAt(t, srv.URL, nil)
	c.stop()
	waitStreams(t, h, 0)
	big := strings.Repeat("b", 8<<10)
	for range 20 { // 160 KiB in 20 events: far under the count bound
		h.Broadcast(data(big))
	}
	c = dial(t, nil, srv.URL, lastEventID(last))
	if ev := c.next(); ev.Type != ResetEvent || string(ev.Data) != "expired" {
		t.Fatalf("got %s %.20q", ev.Type, ev.Data)
	}
	if h.mem.bytes > 64<<10 {
		t.Fatalf("history holds %d bytes", h.mem.bytes)
	}
}

// An application-set ID resumes after its event has left history, as long
// as nothing the stream may receive went with it, and resets once
// something did.
func TestUserSetIDBeyondHistory(t *testing.T) {
	h, srv := newTestHub(t, Config{History: 4})
	h.Broadcast(Event{ID: "order-1", Data: []byte("1")})
	for range 8 { // history wraps twice, over events of another audience
		h.Publish("elsewhere", data("not for the client"))
	}
	c := dial(t, nil, srv.URL, lastEventID("order-1"))
	h.Broadcast(data("live"))
	if ev := c.next(); ev.Type == ResetEvent || string(ev.Data) != "live" {
		t.Fatalf("got %s %q, want the live event and no reset", ev.Type, ev.Data)
	}
	c.stop()
	waitStreams(t, h, 0)
	for range 4 { // the broadcast "live" leaves history
		h.Broadcast(data("more"))
	}
	c = dial(t, nil, srv.URL, lastEventID("order-1"))
	if ev := c.next(); ev.Type != ResetEvent || string(ev.Data) != "expired" {
		t.Fatalf("got %s %q, want a reset", ev.Type, ev.Data)
	}
	c.stop()
	waitStreams(t, h, 0)
	c = dial(t, nil, srv.URL, lastEventID("order-2"))
	if ev := c.next(); ev.Type != ResetEvent || string(ev.Data) != "unknown" {
		t.Fatalf("an ID never seen: got %s %q", ev.Type, ev.Data)
	}
}

// A client's Last-Event-ID goes to the log cut short, never whole.
func TestLastEventIDIsLoggedCut(t *testing.T) {
	var logged syncBuffer
	h, srv := newTestHub(t, Config{Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	long := strings.Repeat("x", 64<<10)
	c := dial(t, nil, srv.URL, lastEventID(long))
	if ev := c.next(); ev.Type != ResetEvent {
		t.Fatalf("got %+v", ev)
	}
	c.stop()
	waitStreams(t, h, 0)
	out := logged.String()
	if !strings.Contains(out, "(65536 bytes)") || strings.Contains(out, strings.Repeat("x", 100)) {
		t.Fatalf("log holds %d bytes, want the id cut: %.300q", len(out), out)
	}
}

// answeringBroker is the in-memory broker whose Replay gives a fixed answer
// while err or reason is set.
type answeringBroker struct {
	*memoryBroker
	mu     sync.Mutex
	reason string
	err    error
}

func (b *answeringBroker) Replay(ctx context.Context, after, until string, to []Target, fn func(*Message) bool) (bool, string, error) {
	b.mu.Lock()
	reason, err := b.reason, b.err
	b.mu.Unlock()
	if reason == "" && err == nil {
		return b.memoryBroker.Replay(ctx, after, until, to, fn)
	}
	return false, reason, err
}

// A Broker that names a reason of its own resets the stream, and Stats
// counts it by reason.
func TestResetsByReason(t *testing.T) {
	b := &answeringBroker{memoryBroker: newMemoryBroker(16, 16), reason: "trimmed"}
	h, srv := newTestHub(t, Config{Broker: b, Heartbeat: -1})
	c := dial(t, nil, srv.URL, lastEventID("anything"))
	if ev := c.next(); ev.Type != ResetEvent || string(ev.Data) != "trimmed" {
		t.Fatalf("got %s %q, want a reset %q", ev.Type, ev.Data, "trimmed")
	}
	if st := h.Stats(); st.Resets != 1 || st.ResetsBy != (Resets{Other: 1}) || st.Replays != 0 {
		t.Fatalf("stats %+v, want one other reset", st)
	}
}

// A Broker that fails to replay resets nobody, since nothing says anything
// was lost: the stream ends before any event moves its client's resume
// point, and the client's retry with the same Last-Event-ID resumes
// exactly once the Broker answers again.
func TestFailingReplayEndsWithoutReset(t *testing.T) {
	b := &answeringBroker{memoryBroker: newMemoryBroker(16, 16)}
	var mu sync.Mutex
	var reasons []DisconnectReason
	var starts []StartKind
	h, srv := newTestHub(t, Config{Broker: b, Heartbeat: -1, OnDisconnect: func(_ StreamInfo, r DisconnectReason) {
		mu.Lock()
		reasons = append(reasons, r)
		mu.Unlock()
	}, OnConnect: func(s StreamInfo) {
		mu.Lock()
		starts = append(starts, s.Start)
		mu.Unlock()
	}})
	c, _ := dialAt(t, srv.URL, nil)
	h.Broadcast(data("one"))
	last := c.next().ID
	c.close()
	h.Broadcast(data("two"))

	b.mu.Lock()
	b.err = errors.New("disk on fire")
	b.mu.Unlock()
	fail, resp := tryDial(t, nil, srv.URL, lastEventID(last))
	giveUp := time.AfterFunc(testTimeout, fail.close) // a failure, not a hang, if the stream goes on
	body, err := io.ReadAll(resp.Body)
	giveUp.Stop()
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("answered %s", resp.Status)
	}
	if err != nil || strings.Contains(string(body), "id:") || strings.Contains(string(body), "data:") {
		t.Fatalf("a failed replay wrote %q (%v): it must end the stream before any event or id", body, err)
	}
	waitFor(t, "the stream to end as unavailable", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(reasons, ReasonUnavailable) // the first stream's end may come later
	})
	if st := h.Stats(); st.Resets != 0 || st.ReplayFailures != 1 {
		t.Fatalf("stats %+v, want no reset and one replay failure", st)
	}
	mu.Lock()
	if len(starts) != 2 || starts[1] != StartUnavailable {
		t.Errorf("OnConnect saw the starts %v, want the failed replay's as %v", starts, StartUnavailable)
	}
	mu.Unlock()

	b.mu.Lock()
	b.err = nil
	b.mu.Unlock()
	c = dial(t, nil, srv.URL, lastEventID(last))
	if ev := c.next(); string(ev.Data) != "two" {
		t.Fatalf("the retry got %s %q, want the missed event", ev.Type, ev.Data)
	}
	if st := h.Stats(); st.Resets != 0 || st.Replays != 1 {
		t.Fatalf("stats %+v, want the retry resumed exactly", st)
	}
}
