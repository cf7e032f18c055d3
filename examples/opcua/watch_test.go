package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// set gives the dashboard the named points, each with the value ms stamped
// at ms.
func set(d *Dashboard, ms int, ids ...string) {
	batch := make([]Sample, len(ids))
	for i, id := range ids {
		batch[i] = Sample{PointID: id, Value: ms, Status: "Good", UpdateAt: at(ms)}
	}
	d.Update(batch)
}

// until reads events up to the first that match accepts and returns the
// values read before it, as "point@value", in order.
func until(t *testing.T, st *testStream, what string, match func(sse.Event) bool) []string {
	t.Helper()
	var got []string
	st.waitFor(5*time.Second, what, func(ev sse.Event) bool {
		if match(ev) {
			return true
		}
		if ev.Type == EventPoints {
			for _, x := range samples(t, ev) {
				got = append(got, fmt.Sprintf("%s@%v", x.PointID, x.Value))
			}
		}
		return false
	})
	return got
}

// untilWatch reads events up to the watch event of generation gen.
func untilWatch(t *testing.T, st *testStream, gen uint64) []string {
	t.Helper()
	return until(t, st, fmt.Sprintf("the watch event of generation %d", gen), func(ev sse.Event) bool {
		return ev.Type == EventWatch && strings.Contains(string(ev.Data), fmt.Sprintf(`"gen":%d,`, gen))
	})
}

// quiet reads events until none comes for a while and returns the values.
func quiet(t *testing.T, st *testStream) []string {
	t.Helper()
	var got []string
	for {
		ev, ok := st.next(300 * time.Millisecond)
		if !ok {
			return got
		}
		if ev.Type == EventPoints {
			for _, x := range samples(t, ev) {
				got = append(got, fmt.Sprintf("%s@%v", x.PointID, x.Value))
			}
		}
	}
}

func sameValues(got []string, want ...string) bool {
	return slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want)))
}

// TestWatchWithoutReconnect changes what one stream watches with POST
// /api/watch: the points it adds arrive at once with their current values
// (p5 never changes after the start, so its value can only come from the
// hub's state), once each, the points it drops stop, all on the same
// connection; "all" adds only what was not watched yet and follows a point
// seen for the first time; and a resume with Last-Event-ID follows the
// new set with nothing missing or twice, also after a change made while
// the stream was away.
func TestWatchWithoutReconnect(t *testing.T) {
	s := startStack(t, "", ReaderConfig{}, DashboardConfig{})
	s.dash.SetStatus(Status{State: StateConnected})
	set(s.dash, 1, "p0", "p1", "p2", "p3", "p4", "p5")
	set(s.dash, 2, "p0", "p1", "p2", "p3", "p4")
	const id = "watcher-0001"
	st := s.openStream(t, "/events?client="+id+"&points=p0,p1", "")
	if got := until(t, st, "the status", func(ev sse.Event) bool { return ev.Type == EventStatus }); len(got) != 0 {
		t.Fatalf("before the status: %v", got)
	}
	if got := quiet(t, st); !sameValues(got, "p0@2", "p1@2") {
		t.Fatalf("fresh stream of p0, p1 began with %v", got)
	}

	// p0 and p1 out, p2 and p5 in.
	if rep := s.watch(t, watchRequest{Client: id, Points: []string{"p2", "p5"}}); rep.Gen != 1 || rep.Streams != 1 || rep.All || !slices.Equal(rep.Points, []string{"p2", "p5"}) {
		t.Fatalf("reply %+v", rep)
	}
	if got := untilWatch(t, st, 1); !slices.Equal(got, []string{"p5@1", "p2@2"}) {
		t.Fatalf("after the change to p2, p5: %v, want their current values in publish order", got)
	}
	set(s.dash, 3, "p0", "p1", "p2", "p3", "p4")
	if got := quiet(t, st); !sameValues(got, "p2@3") {
		t.Fatalf("watching p2, p5: %v", got)
	}

	// Every point: the values of those not watched yet, and not of p2 or p5
	// again.
	s.watch(t, watchRequest{Client: id, All: true})
	if got := untilWatch(t, st, 2); !sameValues(got, "p0@3", "p1@3", "p3@3", "p4@3") {
		t.Fatalf("after the change to every point: %v", got)
	}
	set(s.dash, 4, "p9") // a point never seen before
	if got := quiet(t, st); !slices.Equal(got, []string{"p9@4"}) {
		t.Fatalf("watching every point, a new point: %v", got)
	}
	set(s.dash, 5, "p0", "p9")
	if got := quiet(t, st); !slices.Equal(got, []string{"p0@5", "p9@5"}) {
		t.Fatalf("watching every point: %v", got)
	}

	// One point: nothing but the watch event.
	s.watch(t, watchRequest{Client: id, Points: []string{"p1"}})
	if got := untilWatch(t, st, 3); len(got) != 0 {
		t.Fatalf("after the change to p1: %v", got)
	}
	set(s.dash, 6, "p0", "p1", "p2", "p3", "p4", "p9")
	if got := quiet(t, st); !sameValues(got, "p1@6") {
		t.Fatalf("watching p1: %v", got)
	}
	if n, streams := s.events.Load(), s.dash.hub.Stats().Streams; n != 1 || streams != 1 {
		t.Fatalf("%d requests to /events, %d streams: the changes reconnected", n, streams)
	}

	// Away: p1 changes twice, p3 once, and the client adds p3 and p5 (whose
	// value is older than the client's Last-Event-ID) meanwhile.
	last := st.lastID()
	waitStreams(t, s, 0)
	set(s.dash, 7, "p1", "p3")
	set(s.dash, 8, "p1")
	if rep := s.watch(t, watchRequest{Client: id, Points: []string{"p1", "p3", "p5"}}); rep.Streams != 0 || rep.Gen != 4 {
		t.Fatalf("reply %+v", rep)
	}
	replays := s.dash.hub.Stats().Replays
	st = s.openStream(t, "/events?client="+id+"&points=p0", last) // the watch set rules, not ?points=
	if got := quiet(t, st); !sameValues(got, "p1@8", "p3@7", "p5@1") {
		t.Fatalf("the resume brought %v, want p1's newest value and the current ones of p3 and p5", got)
	}
	if s.dash.hub.Stats().Replays != replays+1 {
		t.Fatal("the stream did not resume")
	}
	set(s.dash, 9, "p0", "p1", "p3", "p5")
	if got := quiet(t, st); !sameValues(got, "p1@9", "p3@9", "p5@9") {
		t.Fatalf("watching p1, p3, p5 after the resume: %v", got)
	}

	// A resume after all that was read: just what was missed.
	last = st.lastID()
	waitStreams(t, s, 0)
	set(s.dash, 10, "p3")
	st = s.openStream(t, "/events?client="+id, last)
	if got := quiet(t, st); !sameValues(got, "p3@10") {
		t.Fatalf("the second resume brought %v", got)
	}
}

// A stream that drops before it has read the values of a change it was
// sent gets them again on its resume, and so does one that read them but
// not the watch event after them (the core's one repeat: its Last-Event-ID
// is not past the subscription); a stream that read the watch event does
// not. The values sent again are the current ones: a point that changed
// meanwhile comes once, with its new value.
func TestWatchResumeAfterUnreadChange(t *testing.T) {
	s := startStack(t, "", ReaderConfig{}, DashboardConfig{})
	set(s.dash, 1, "p1", "p2", "p3", "p4") // older than anything the stream reads
	set(s.dash, 2, "p0")
	const id = "watcher-0002"
	st := s.openStream(t, "/events?client="+id+"&points=p0", "")
	if got := quiet(t, st); !sameValues(got, "p0@2") {
		t.Fatalf("start: %v", got)
	}
	// The change reaches the open stream, but its client leaves without
	// reading any of it, with the Last-Event-ID from before.
	s.watch(t, watchRequest{Client: id, Points: []string{"p0", "p1", "p2"}})
	last := st.lastID()
	st = s.openStream(t, "/events?client="+id, last)
	if got := quiet(t, st); !sameValues(got, "p1@1", "p2@1") {
		t.Fatalf("resume after the unread change: %v", got)
	}
	// Everything read: no repeat.
	last = st.lastID()
	st = s.openStream(t, "/events?client="+id, last)
	if got := quiet(t, st); len(got) != 0 {
		t.Fatalf("resume after everything was read: %v", got)
	}

	// The values of the next change are read, its watch event is not; p4
	// changes while the client is away.
	s.watch(t, watchRequest{Client: id, Points: []string{"p0", "p1", "p2", "p3", "p4"}})
	seen := map[string]bool{}
	st.waitFor(5*time.Second, "the values of p3 and p4", func(ev sse.Event) bool {
		if ev.Type == EventWatch {
			t.Fatalf("the watch event came before the values of p3 and p4: %v", seen)
		}
		if ev.Type == EventPoints {
			for _, x := range samples(t, ev) {
				seen[fmt.Sprintf("%s@%v", x.PointID, x.Value)] = true
			}
		}
		return seen["p3@1"] && seen["p4@1"]
	})
	last = st.lastID()
	set(s.dash, 5, "p4")
	st = s.openStream(t, "/events?client="+id, last)
	if got := untilWatch(t, st, 2); !sameValues(got, "p3@1", "p4@5") {
		t.Fatalf("resume after the values but before the watch event: %v, want p3's value again and p4's new one once", got)
	}
	if got := quiet(t, st); len(got) != 0 {
		t.Fatalf("after the watch event: %v", got)
	}
	// Past the watch event: a plain replay.
	last = st.lastID()
	set(s.dash, 6, "p3")
	st = s.openStream(t, "/events?client="+id, last)
	if got := quiet(t, st); !slices.Equal(got, []string{"p3@6"}) {
		t.Fatalf("resume past the watch event: %v", got)
	}
}

func TestWatchRequestErrors(t *testing.T) {
	s := startStack(t, "", ReaderConfig{}, DashboardConfig{})
	set(s.dash, 1, "p0")
	st := s.openStream(t, "/events?client=errors-0001&points=p0", "")
	st.waitFor(5*time.Second, "p0", func(ev sse.Event) bool { return ev.Type == EventPoints })
	batches := s.openStream(t, "/events?client=batches-001", "")
	batches.waitFor(5*time.Second, "the snapshot", func(ev sse.Event) bool { return ev.Type == EventPoints })

	var many []string
	for i := range maxWatched + 1 {
		many = append(many, fmt.Sprint("p", i))
	}
	const jsonType = "application/json"
	for _, c := range []struct {
		contentType, body string
		code              int
	}{
		{"text/plain", `{"client":"errors-0001","all":true}`, http.StatusUnsupportedMediaType},
		{"application/x-www-form-urlencoded", `client=errors-0001`, http.StatusUnsupportedMediaType},
		{jsonType, `{"client":"errors-0001",`, http.StatusBadRequest},
		{jsonType, `{"client":"errors-0001","all":true,"extra":1}`, http.StatusBadRequest},
		{jsonType, `{"client":"errors-0001","all":true} {}`, http.StatusBadRequest},
		{jsonType, `{"client":"short","all":true}`, http.StatusBadRequest},
		{jsonType, `{"client":"errors-0001","all":true,"points":["p0"]}`, http.StatusBadRequest},
		{jsonType, `{"client":"errors-0001","points":["*"]}`, http.StatusBadRequest},
		{jsonType, `{"client":"errors-0001","points":["a\nb"]}`, http.StatusBadRequest},
		{jsonType, `{"client":"errors-0001","points":["` + strings.Repeat("x", maxPointID+1) + `"]}`, http.StatusBadRequest},
		{jsonType, string(mustJSON(watchRequest{Client: "errors-0001", Points: many})), http.StatusBadRequest},
		{jsonType, `{"client":"errors-0001","points":["` + strings.Repeat("x", maxWatchBody) + `"]}`, http.StatusRequestEntityTooLarge},
		{jsonType, `{"client":"nobody-00001","all":true}`, http.StatusConflict}, // no stream ever
		{jsonType, `{"client":"batches-001","all":true}`, http.StatusConflict},  // a batch stream
		{"application/json; charset=utf-8", `{"client":"errors-0001","points":["p0","p0"," p1 "]}`, http.StatusOK},
	} {
		code, body := s.postWatch(t, c.contentType, []byte(c.body))
		if code != c.code {
			t.Errorf("%s %.60s: %d %s, want %d", c.contentType, c.body, code, body, c.code)
		}
	}
	if rep := s.watch(t, watchRequest{Client: "errors-0001", Points: []string{"p1", "p0"}}); rep.Gen != 1 || !slices.Equal(rep.Points, []string{"p0", "p1"}) {
		t.Errorf("the same set in another order changed it: %+v", rep)
	}
	resp, err := s.client.Get(s.srv.URL + "/api/watch")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/watch: %d", resp.StatusCode)
	}
}

// TestWatchSetsAreBounded checks what the dashboard keeps of clients that
// have gone: at most MaxIdleWatches sets, none idle for longer than
// WatchIdle; a client whose set is gone gets 409 for its resume (the page
// then opens a fresh stream) and for a change.
func TestWatchSetsAreBounded(t *testing.T) {
	s := startStack(t, "", ReaderConfig{}, DashboardConfig{WatchIdle: time.Minute, MaxIdleWatches: 3})
	set(s.dash, 1, "p0")
	var lasts []string
	for i := range 5 {
		st := s.openStream(t, fmt.Sprintf("/events?client=bounded-%04d&points=p0", i), "")
		st.waitFor(5*time.Second, "p0", func(ev sse.Event) bool { return ev.Type == EventPoints })
		lasts = append(lasts, st.lastID())
		waitSets(t, s, min(i+1, 3), min(i+1, 3))
	}
	if all, idle := s.dash.watch.len(); all != 3 || idle != 3 {
		t.Fatalf("%d watch sets kept, %d idle; want the last 3", all, idle)
	}
	var se *sse.StatusError
	if _, err := s.tryStream("/events?client=bounded-0000&points=p0", lasts[0]); !errors.As(err, &se) || se.Code != http.StatusConflict {
		t.Fatalf("resume of a client whose set was dropped: %v, want 409", err)
	}
	if code, _ := s.postWatch(t, "application/json", []byte(`{"client":"bounded-0001","all":true}`)); code != http.StatusConflict {
		t.Fatalf("change for a client whose set was dropped: %d, want 409", code)
	}
	st := s.openStream(t, "/events?client=bounded-0004&points=p0", lasts[4])
	if all, idle := s.dash.watch.len(); all != 3 || idle != 2 {
		t.Fatalf("with one client back: %d sets, %d idle", all, idle)
	}
	st.close()
	waitSets(t, s, 3, 3)

	// Sets idle for longer than WatchIdle go.
	ws := &s.dash.watch
	ws.mu.Lock()
	ws.expire(time.Now().Add(time.Minute))
	ws.mu.Unlock()
	if all, idle := s.dash.watch.len(); all != 0 || idle != 0 {
		t.Fatalf("after WatchIdle: %d sets, %d idle", all, idle)
	}
	// A fresh stream makes a new set.
	st = s.openStream(t, "/events?client=bounded-0004&points=p0", "")
	st.waitFor(5*time.Second, "p0", func(ev sse.Event) bool { return ev.Type == EventPoints })
	if all, idle := s.dash.watch.len(); all != 1 || idle != 0 {
		t.Fatalf("after a fresh stream: %d sets, %d idle", all, idle)
	}
}

// waitSets waits until the dashboard keeps n watch sets, idle of them
// clients without an open stream.
func waitSets(t *testing.T, s *testStack, n, idle int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		gotN, gotIdle := s.dash.watch.len()
		if gotN == n && gotIdle == idle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d watch sets, %d idle; want %d, %d idle", gotN, gotIdle, n, idle)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWatchChangesAcrossReconnects races watch changes, made on open
// streams and while streams are away, against a fast publisher, with
// streams that drop at random points (also in the middle of a change's
// values) and resume with Last-Event-ID, some after so long that they are
// reset. p5 and p7 change only at the start, so a value the hub's state
// should have brought cannot come later by chance. (TestWatchWithoutReconnect
// has points appear while clients watch every point.)
//
// Each client checks, per point, that from the moment it watches the point
// it never sees a value twice or an older one after a newer one, and never
// a value of a point it does not watch. A point's watch period begins with
// its current value, so a point dropped and watched again may repeat a
// value, and so may everything after a reset. The one other repeat is the
// core's: the hub remembers where it subscribed the client to a point's
// topic, and a resume from a Last-Event-ID not past that starts with the
// point's current value instead of its replay. The first event with an id
// after those values is the watch event, so the client mirrors the rule
// with it: a point a change added is pending until the client has read its
// value and a watch event of that change or a later one (in either order:
// a live value that replaces the state queued before the watch event
// comes after it, with an id past the subscription); on a resume
// the first value of a pending point may repeat the last one it saw (not
// be older). (After a reset a point stays pending until the next watch
// event: the client cannot tell where in the reset's start it dropped.)
// The state a resume starts with is as of where the stream joined, but
// the replay after it carries older ids: a client that drops in that
// replay resumes from before the state's values, and the plain replay then
// brings them again. So a point whose first value on a resume may have
// been that state may repeat it on later resumes, until a newer value of
// it is read. No other value may repeat. In the end every client must hold
// the latest value of every point it watches, and have read the value of
// every point a change added before a watch event.
func TestWatchChangesAcrossReconnects(t *testing.T) {
	const (
		nClients = 6
		rounds   = 25
	)
	s := startStack(t, "", ReaderConfig{}, DashboardConfig{History: 300})
	s.dash.SetStatus(Status{State: StateConnected})
	ms := 1
	set(s.dash, ms, "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7")

	stop := make(chan struct{})
	fed := make(chan int)
	go func() {
		rng := rand.New(rand.NewPCG(5, 6))
		for {
			select {
			case <-stop:
				fed <- ms
				return
			default:
			}
			ms++
			var ids []string
			for _, id := range []string{"p0", "p1", "p2", "p3", "p4", "p6"} {
				if rng.IntN(3) > 0 {
					ids = append(ids, id)
				}
			}
			set(s.dash, ms, ids...)
			time.Sleep(200 * time.Microsecond)
		}
	}()

	var wg, rounding sync.WaitGroup
	stopped := make(chan struct{})
	watchers := make([]*watcher, nClients)
	for c := range nClients {
		w := &watcher{t: t, s: s, c: c, rng: rand.New(rand.NewPCG(uint64(c), 7))}
		watchers[c] = w
		wg.Add(1)
		rounding.Add(1)
		go func() {
			defer wg.Done()
			w.run(rounds, &rounding, stopped)
		}()
	}
	rounding.Wait()
	close(stop)
	last := <-fed
	close(stopped)
	wg.Wait()

	final := map[string]Sample{}
	for _, x := range s.dash.store.Snapshot(nil) {
		final[x.PointID] = x
	}
	var changes, away, resumes, resets, repeats int
	for _, w := range watchers {
		changes, away, resumes, resets, repeats = changes+w.changes, away+w.away, resumes+w.resumes, resets+w.resets, repeats+w.repeats
		if len(w.pending) > 0 {
			t.Errorf("client %d ends with points pending %v: no watch event after their values", w.c, w.pending)
		}
		spec := w.sets[w.latest]
		for id, x := range final {
			if spec.all || slices.Contains(spec.ids, id) {
				if got, ok := w.last[id]; !ok || !got.Equal(x.UpdateAt.Time) {
					t.Errorf("client %d watching %+v ends with %s at %v, want %v", w.c, spec, id, got, x.UpdateAt)
				}
			}
		}
	}
	st := s.dash.hub.Stats()
	t.Logf("%d updates; %d watch changes, %d of them while away; %d resumes, %d resets; hub replays %d, resets %d; %d values repeated, as allowed",
		last, changes, away, resumes, resets, st.Replays, st.Resets, repeats)
	if changes == 0 || away == 0 || st.Replays == 0 {
		t.Error("the test did not change watch sets on open and on closed streams, or did not resume")
	}
}

// watcher is one client of TestWatchChangesAcrossReconnects.
type watcher struct {
	t   *testing.T
	s   *testStack
	c   int
	rng *rand.Rand

	id        string
	sets      map[uint64]watchSpec // the client's watch sets, by the generation the server gave them
	latest    uint64               // the generation of the last change the server answered
	confirmed uint64               // the generation of the last watch event read
	period    map[string]bool      // the points whose watch period has begun
	last      map[string]time.Time // the newest value seen per point, in its period

	// The points added by a change, by its generation, whose subscription
	// the client may not be past: it has not read their value and then a
	// watch event of that generation or a later one. A resume may repeat
	// their current value (see the test).
	pending map[string]uint64
	unread  map[string]bool // pending points whose value has not been read since the change
	again   map[string]bool // points whose first value on this stream may repeat the last one
	// Points whose last value may have come from the hub's state at the
	// start of a resume. That state is as of where the stream joined, but
	// the replay after it has older ids: a client that drops in the replay
	// resumes from before the value, and the replay then brings it again.
	// So, until a newer value of the point is read, a resume may repeat it.
	stated map[string]bool

	changes, away, resumes, resets int
	repeats                        int      // values that repeated the last one, as allowed
	trace                          []string // what the client did and saw lately, for a failure's message
}

// note adds a line to the client's trace.
func (w *watcher) note(format string, args ...any) {
	if len(w.trace) == 80 {
		w.trace = w.trace[1:]
	}
	w.trace = append(w.trace, fmt.Sprintf(format, args...))
}

// fail reports an error with the client's trace.
func (w *watcher) fail(format string, args ...any) {
	w.t.Errorf("client %d: %s\n\t%s", w.c, fmt.Sprintf(format, args...), strings.Join(w.trace, "\n\t"))
}

var watcherPoints = []string{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"}

// randomSpec returns every point one time in four, else one to four points.
func (w *watcher) randomSpec() watchSpec {
	if w.rng.IntN(4) == 0 {
		return watchSpec{all: true}
	}
	ids := slices.Clone(watcherPoints)
	w.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return watchSpec{ids: ids[:1+w.rng.IntN(4)]}
}

func (spec watchSpec) has(id string) bool { return spec.all || slices.Contains(spec.ids, id) }

// watching reports whether id may come now: it is watched by the last set
// the client read the watch event of, or by a later one.
func (w *watcher) watching(id string) bool {
	for g := w.confirmed; g <= w.latest; g++ {
		if spec, ok := w.sets[g]; ok && spec.has(id) {
			return true
		}
	}
	return false
}

func (w *watcher) see(ev sse.Event, where string) {
	w.note("%s: id %s %s %s", where, ev.ID, ev.Type, ev.Data)
	switch ev.Type {
	case sse.ResetEvent:
		w.resets++
		clear(w.period) // the hub's state follows, which may repeat values
		clear(w.last)
	case EventWatch:
		var m struct{ Gen uint64 }
		if err := json.Unmarshal(ev.Data, &m); err != nil {
			w.t.Fatalf("client %d: watch event %s: %v", w.c, ev.Data, err)
		}
		if m.Gen < w.confirmed || m.Gen > w.latest {
			w.fail("%s: watch event of generation %d after %d, latest %d", where, m.Gen, w.confirmed, w.latest)
		}
		w.confirmed = m.Gen
		for id, gen := range w.pending {
			if !w.unread[id] && m.Gen >= gen {
				delete(w.pending, id) // the watch event after the value: past the subscription
			}
		}
		for id := range w.period {
			if !w.sets[m.Gen].has(id) {
				delete(w.period, id) // after the watch event, no value of a dropped point
				delete(w.last, id)
			}
		}
	case EventPoints:
		for _, x := range samples(w.t, ev) {
			switch {
			case !w.watching(x.PointID):
				w.fail("%s: %s, which it does not watch (sets %d to %d)", where, x.PointID, w.confirmed, w.latest)
			case w.again[x.PointID] && x.UpdateAt.Before(w.last[x.PointID]),
				!w.again[x.PointID] && w.period[x.PointID] && !x.UpdateAt.After(w.last[x.PointID]):
				w.fail("%s: %s at %s after %s: repeated or out of order",
					where, x.PointID, x.UpdateAt.Format(stampLayout), w.last[x.PointID].Format(stampLayout))
			case w.period[x.PointID] && x.UpdateAt.Equal(w.last[x.PointID]):
				w.repeats++
			}
			if w.again[x.PointID] {
				w.stated[x.PointID] = true
			} else {
				delete(w.stated, x.PointID)
			}
			delete(w.again, x.PointID)
			delete(w.unread, x.PointID)
			if gen, ok := w.pending[x.PointID]; ok && w.confirmed >= gen {
				// Its value after the watch event of its change (a live
				// value that replaced the queued state): past the
				// subscription too.
				delete(w.pending, x.PointID)
			}
			w.period[x.PointID] = true
			w.last[x.PointID] = x.UpdateAt.Time
		}
	}
}

// change posts a new watch set.
func (w *watcher) change(spec watchSpec) {
	req := watchRequest{Client: w.id, All: spec.all, Points: spec.ids}
	rep := w.s.watch(w.t, req)
	w.note("POST %+v: gen %d, %d streams", spec, rep.Gen, rep.Streams)
	w.changes++
	if rep.Gen == w.latest {
		return // the same set again: nothing changed
	}
	prev := w.sets[w.latest]
	for _, id := range watcherPoints {
		switch {
		case spec.has(id) && !prev.has(id):
			w.pending[id], w.unread[id] = rep.Gen, true
		case !spec.has(id):
			delete(w.pending, id)
			delete(w.unread, id)
			delete(w.stated, id)
		}
	}
	w.sets[rep.Gen], w.latest = spec, rep.Gen
}

// read reads up to n events (any number if n is negative), or until none
// comes for wait.
func (w *watcher) read(st *testStream, n int, wait time.Duration, where string) {
	for i := 0; n < 0 || i < n; i++ {
		ev, ok := st.next(wait)
		if !ok {
			return
		}
		w.see(ev, where)
	}
}

// run opens a stream, then drops and resumes it for rounds, changing the
// watch set on the way; then it marks rounding done, waits for stopped and
// catches up.
func (w *watcher) run(rounds int, rounding *sync.WaitGroup, stopped chan struct{}) {
	w.id = fmt.Sprintf("watcher-%02d-0000", w.c)
	first := w.randomSpec()
	w.sets, w.period, w.last = map[uint64]watchSpec{0: first}, map[string]bool{}, map[string]time.Time{}
	w.pending, w.unread, w.again, w.stated = map[string]uint64{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	points := "*"
	if !first.all {
		points = strings.Join(first.ids, ",")
	}
	last := ""
	for round := 0; ; round++ {
		catchUp := round >= rounds
		if round == rounds {
			rounding.Done()
			<-stopped
			// The last change, made while away, adds the points that do
			// not change any more: only the server's state can bring them.
			waitStreamGone(w.s, w.id)
			w.change(watchSpec{ids: []string{"p5", "p7", watcherPoints[w.rng.IntN(5)]}})
			w.away++
		}
		if last != "" {
			w.resumes++
			// The points of changes whose watch event was not read begin
			// again with their current values. A pending point starts with
			// its current value again, which repeats it if the client had
			// read it (but not the watch event after it), and stays
			// pending until a watch event after its value is read: the
			// watch event replayed, or the one after the values the server
			// sends a point added while the client had no stream. A stated
			// point may repeat its value in the replay.
			for id := range w.period {
				if !w.sets[w.confirmed].has(id) {
					delete(w.period, id)
					delete(w.last, id)
				}
			}
			clear(w.again)
			for id := range w.pending {
				w.again[id] = true
			}
			for id := range w.stated {
				w.again[id] = true
			}
		}
		w.note("round %d: open, Last-Event-ID %q", round, last)
		st, err := w.s.tryStream("/events?client="+w.id+"&points="+points, last)
		if err != nil {
			w.t.Errorf("client %d: %v", w.c, err)
			if round < rounds {
				rounding.Done()
			}
			return
		}
		where := fmt.Sprintf("round %d", round)
		if catchUp {
			w.read(st, -1, 300*time.Millisecond, where) // the publisher has stopped: quiet means caught up
			st.close()
			return
		}
		w.read(st, w.rng.IntN(30), time.Second, where)
		if w.rng.IntN(3) == 0 {
			w.change(w.randomSpec())
			w.read(st, w.rng.IntN(10), time.Second, where+" after a change")
		}
		last = st.lastID()
		if w.rng.IntN(4) == 0 {
			waitStreamGone(w.s, w.id)
			w.change(w.randomSpec())
			w.away++
		}
		switch w.rng.IntN(8) {
		case 0: // away long enough that history may not cover it: a reset
			time.Sleep(time.Duration(100+w.rng.IntN(100)) * time.Millisecond)
		case 1, 2:
			time.Sleep(time.Duration(w.rng.IntN(20)) * time.Millisecond)
		}
	}
}

// waitStreamGone waits until client's watch set counts no open stream (a
// change then reaches no stream, only the client's history).
func waitStreamGone(s *testStack, client string) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		s.dash.watch.mu.Lock()
		w := s.dash.watch.byID[client]
		gone := w == nil || w.streams == 0
		s.dash.watch.mu.Unlock()
		if gone {
			return
		}
	}
}
