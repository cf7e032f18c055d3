package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

func TestPointsFromQuery(t *testing.T) {
	cases := map[string]watchSpec{
		"":                        {},
		"?points=":                {},
		"?points=a,b":             {ids: []string{"a", "b"}},
		"?points=a&points=b,a":    {ids: []string{"a", "b"}},
		"?points=ns=1;s=Temp":     {ids: []string{"ns=1;s=Temp"}},
		"?points=ns%3D1%3Bs%3DT":  {ids: []string{"ns=1;s=T"}},
		"?client=x&points=+a+,,b": {ids: []string{"a", "b"}},
		"?points=*":               {all: true},
		"?points=%2A&points=":     {all: true},
	}
	for q, want := range cases {
		got, named, err := parsePoints(httptest.NewRequest("GET", "/events"+q, nil))
		if err != nil || got.all != want.all || !slices.Equal(got.ids, want.ids) || named != (want.all || want.ids != nil) {
			t.Errorf("%q: got %+v, %v, %v; want %+v", q, got, named, err, want)
		}
	}
	// What a stream follows without a watch set: topicAll, or the points'
	// topics.
	d, err := NewDashboard(DashboardConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	for q, want := range map[string][]string{"": {topicAll}, "?points=": {topicAll}, "?points=a,b": {"point:a", "point:b"}} {
		if got, err := d.streamTopics(httptest.NewRequest("GET", "/events"+q, nil)); err != nil || !slices.Equal(got, want) {
			t.Errorf("topics of %q: %q, %v; want %q", q, got, err, want)
		}
	}
	var many []string
	for i := range maxWatched + 1 {
		many = append(many, fmt.Sprint("p", i))
	}
	tooMany := "?points=" + strings.Join(many, ",")
	for _, bad := range []string{"?points=%zz", "?points=*,a", tooMany, "?points=" + strings.Repeat("x", maxPointID+1), "?points=a%0Ab"} {
		if _, _, err := parsePoints(httptest.NewRequest("GET", "/events"+bad, nil)); err == nil {
			t.Errorf("%.40q was accepted", bad)
		}
	}
}

func TestClientIDFromQuery(t *testing.T) {
	if id, err := clientID(httptest.NewRequest("GET", "/events?client=page-1234_AB", nil)); err != nil || id != "page-1234_AB" {
		t.Errorf("got %q, %v", id, err)
	}
	for _, bad := range []string{"short", "has%20space", strings.Repeat("x", 65)} {
		_, err := clientID(httptest.NewRequest("GET", "/events?client="+bad, nil))
		var se *sse.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusBadRequest {
			t.Errorf("client %q: got %v, want 400", bad, err)
		}
	}
	a, _ := clientID(httptest.NewRequest("GET", "/events", nil))
	b, _ := clientID(httptest.NewRequest("GET", "/events", nil))
	if a == "" || a == b {
		t.Errorf("random IDs %q and %q", a, b)
	}
}

// feed gives the dashboard n points with values stamped at ms.
func feed(d *Dashboard, n, ms int) {
	batch := make([]Sample, n)
	for i := range batch {
		batch[i] = Sample{PointID: fmt.Sprintf("p%d", i), Value: ms, Status: "Good", UpdateAt: at(ms)}
	}
	d.Update(batch)
}

func TestFreshStreamStartsWithSnapshot(t *testing.T) {
	s := startStack(t, "", ReaderConfig{}, DashboardConfig{})
	s.dash.SetStatus(Status{State: StateConnected, Endpoint: "opc.tcp://test"})
	feed(s.dash, 3, 1)

	all := s.openStream(t, "/events?client=all-points-1", "")
	ev := all.waitFor(time.Second, "status", func(ev sse.Event) bool { return ev.Type != "" })
	if ev.Type != EventStatus || status(t, ev).State != StateConnected {
		t.Fatalf("first event %s %s, want the status", ev.Type, ev.Data)
	}
	ev, _ = all.next(time.Second)
	if snap := samples(t, ev); ev.Type != EventPoints || len(snap) != 3 {
		t.Fatalf("second event %s %s, want a snapshot of 3 points", ev.Type, ev.Data)
	}

	one := s.openStream(t, "/events?client=one-point-1&points=p1", "")
	one.waitFor(time.Second, "status", func(ev sse.Event) bool { return ev.Type == EventStatus })
	ev, _ = one.next(time.Second)
	if snap := samples(t, ev); len(snap) != 1 || snap[0].PointID != "p1" {
		t.Fatalf("filtered snapshot %s", ev.Data)
	}

	feed(s.dash, 3, 2)
	ev, _ = all.next(time.Second)
	if batch := samples(t, ev); len(batch) != 3 || batch[0].Value != 2.0 {
		t.Fatalf("live batch %s, want all 3 points at 2", ev.Data)
	}
	ev, _ = one.next(time.Second)
	if batch := samples(t, ev); len(batch) != 1 || batch[0].PointID != "p1" || batch[0].Value != 2.0 {
		t.Fatalf("filtered live event %s, want p1 only", ev.Data)
	}
	if ev, ok := one.next(100 * time.Millisecond); ok {
		t.Fatalf("filtered stream got %s %s", ev.Type, ev.Data)
	}
}

func TestResumeReplaysWithoutSnapshot(t *testing.T) {
	s := startStack(t, "", ReaderConfig{}, DashboardConfig{})
	feed(s.dash, 2, 1)
	batches := s.openStream(t, "/events?client=resumer-1", "")
	batches.waitFor(time.Second, "snapshot", func(ev sse.Event) bool { return ev.Type == EventPoints })
	perPoint := s.openStream(t, "/events?client=resumer-2&points=p0,p1", "")
	perPoint.waitFor(time.Second, "p1's current value", func(ev sse.Event) bool {
		return ev.Type == EventPoints && samples(t, ev)[0].PointID == "p1"
	})
	lastBatches, lastPerPoint := batches.lastID(), perPoint.lastID()

	feed(s.dash, 2, 2)
	feed(s.dash, 2, 3)
	// Batches are not keyed (see Dashboard): the replay has both, in order.
	batches = s.openStream(t, "/events?client=resumer-1", lastBatches)
	for _, want := range []float64{2, 3} {
		ev := batches.waitFor(time.Second, "replay", func(ev sse.Event) bool { return ev.Type != "" })
		if batch := samples(t, ev); ev.Type != EventPoints || len(batch) != 2 || batch[0].Value != want || batch[1].Value != want {
			t.Fatalf("replay %s %s, want both points at %v and no snapshot", ev.Type, ev.Data, want)
		}
	}
	if ev, ok := batches.next(100 * time.Millisecond); ok {
		t.Fatalf("after the replay: %s %s", ev.Type, ev.Data)
	}
	// Per-point events are keyed: the replay keeps the newest of each.
	perPoint = s.openStream(t, "/events?client=resumer-2&points=p0,p1", lastPerPoint)
	for _, id := range []string{"p0", "p1"} {
		ev := perPoint.waitFor(time.Second, "replay", func(ev sse.Event) bool { return ev.Type != "" })
		if x := samples(t, ev); ev.Type != EventPoints || len(x) != 1 || x[0].PointID != id || x[0].Value != 3.0 {
			t.Fatalf("replay %s %s, want %s at 3 and no snapshot", ev.Type, ev.Data, id)
		}
	}
	if ev, ok := perPoint.next(100 * time.Millisecond); ok {
		t.Fatalf("after the replay: %s %s", ev.Type, ev.Data)
	}
}

func TestUnknownResumeGetsReset(t *testing.T) {
	s := startStack(t, "", ReaderConfig{}, DashboardConfig{})
	feed(s.dash, 2, 1)
	st := s.openStream(t, "/events?client=resetme-1", "nosuchepoch-7")
	ev := st.waitFor(time.Second, "reset", func(ev sse.Event) bool { return ev.Type != "" })
	if ev.Type != sse.ResetEvent {
		t.Fatalf("got %s %s, want %s", ev.Type, ev.Data, sse.ResetEvent)
	}
	// What the page does: a fresh stream, which starts with a snapshot.
	st = s.openStream(t, "/events?client=resetme-2", "")
	st.waitFor(time.Second, "snapshot", func(ev sse.Event) bool { return ev.Type == EventPoints && len(samples(t, ev)) == 2 })
}

// TestNoDuplicatesAcrossReconnects races fresh streams and resumes against a
// fast publisher. Every client, all-points (batches) or filtered (per-point
// topics), drops its stream at random points and resumes with Last-Event-ID
// like a browser; after a reset it opens a fresh stream. Across all of it, a
// client must never see a point repeat or go back in time, every fresh
// stream must start with the snapshot of what it watches (one batch of
// every point; one event per watched point), and in the end every client
// must hold the latest value of every point it watches.
func TestNoDuplicatesAcrossReconnects(t *testing.T) {
	const (
		nPoints  = 6
		nClients = 8
		rounds   = 20
	)
	s := startStack(t, "", ReaderConfig{}, DashboardConfig{History: 300})
	s.dash.SetStatus(Status{State: StateConnected})
	ms := 1
	feed(s.dash, nPoints, ms)

	stop := make(chan struct{})
	fed := make(chan int)
	go func() { // the publisher: some points per update, now and then a stale or repeated sample
		rng := rand.New(rand.NewPCG(3, 4))
		for {
			select {
			case <-stop:
				fed <- ms
				return
			default:
			}
			ms++
			var batch []Sample
			for i := range nPoints {
				if rng.IntN(3) > 0 {
					batch = append(batch, Sample{PointID: fmt.Sprintf("p%d", i), Value: ms, Status: "Good", UpdateAt: at(ms)})
				}
			}
			if rng.IntN(10) == 0 {
				batch = append(batch, Sample{PointID: "p0", Value: -1, Status: "Good", UpdateAt: at(ms - 5)})
			}
			s.dash.Update(batch)
			time.Sleep(200 * time.Microsecond)
		}
	}()

	// Clients run their rounds while the publisher runs, then wait for it
	// to stop and resume once more to catch up.
	var wg, rounding sync.WaitGroup
	stopped := make(chan struct{})
	var resumes, resets atomic.Int64
	views := make([]map[string]Sample, nClients)
	filters := make([][]string, nClients)
	for c := range nClients {
		if c%2 == 1 {
			filters[c] = []string{fmt.Sprintf("p%d", c%nPoints), fmt.Sprintf("p%d", (c+1)%nPoints)}
		}
		wg.Add(1)
		rounding.Add(1)
		go func() {
			defer wg.Done()
			views[c] = runClient(t, s, c, filters[c], rounds, &rounding, stopped, &resumes, &resets)
		}()
	}
	rounding.Wait()
	close(stop)
	last := <-fed
	close(stopped)
	wg.Wait()

	// One last resume per client must bring it to the store's final state.
	final := map[string]Sample{}
	for _, x := range s.dash.store.Snapshot(nil) {
		final[x.PointID] = x
	}
	for c := range nClients {
		want := filters[c]
		if want == nil {
			want = slices.Sorted(func(yield func(string) bool) {
				for id := range final {
					if !yield(id) {
						return
					}
				}
			})
		}
		for _, id := range want {
			if got := views[c][id]; !got.UpdateAt.Equal(final[id].UpdateAt.Time) {
				t.Errorf("client %d ends with %s at %v, want %v", c, id, got.UpdateAt, final[id].UpdateAt)
			}
		}
	}
	st := s.dash.hub.Stats()
	t.Logf("%d updates; client resumes %d, resets %d; hub replays %d, resets %d", last, resumes.Load(), resets.Load(), st.Replays, st.Resets)
	if st.Replays == 0 {
		t.Error("no stream resumed from history; the test did not test replay")
	}
}

// runClient is one page: it reads a few events, drops the stream, resumes,
// and so on for rounds; then it marks rounding done, waits for stopped and
// catches up. It returns the latest value it holds per point.
func runClient(t *testing.T, s *testStack, c int, filter []string, rounds int,
	rounding *sync.WaitGroup, stopped chan struct{}, resumes, resets *atomic.Int64) map[string]Sample {
	rng := rand.New(rand.NewPCG(uint64(c), 99))
	view := map[string]Sample{}
	check := newOrderCheck()
	newID := func(gen int) string { return fmt.Sprintf("client-%02d-%04d", c, gen) }
	full := len(filter)
	if filter == nil {
		full = len(s.dash.store.Snapshot(nil))
	}
	gen := 0
	id, last := newID(gen), ""
	query := "/events?client="
	if filter != nil {
		query = "/events?points=" + strings.Join(filter, ",") + "&client="
	}
	for round := 0; ; round++ {
		catchUp := round >= rounds
		if round == rounds {
			rounding.Done()
			<-stopped
		}
		st, err := s.tryStream(query+id, last)
		if err != nil {
			t.Errorf("client %d: %v", c, err)
			if round < rounds {
				rounding.Done()
			}
			return view
		}
		fresh := last == ""
		if !fresh {
			resumes.Add(1)
		}
		seenPoints := false
		started := map[string]bool{} // per-point stream: the points its start has brought so far
		reset := false
		for n := rng.IntN(40); catchUp || n > 0; n-- {
			wait := time.Second
			if catchUp {
				wait = 300 * time.Millisecond // the publisher has stopped: quiet means caught up
			}
			ev, ok := st.next(wait)
			if !ok {
				break
			}
			switch ev.Type {
			case sse.ResetEvent:
				reset = true
			case EventPoints:
				batch := samples(t, ev)
				switch {
				case fresh && filter == nil && !seenPoints && len(batch) != full:
					t.Errorf("client %d: fresh stream began with %d points, want the full snapshot", c, len(batch))
				case fresh && filter != nil && len(started) < full:
					// The hub's keyed state: one event per point, every
					// watched point before any comes again.
					for _, x := range batch {
						if started[x.PointID] {
							t.Errorf("client %d: %s came again before the fresh stream had every point", c, x.PointID)
						}
						started[x.PointID] = true
					}
				}
				if filter != nil {
					for _, x := range batch {
						if !slices.Contains(filter, x.PointID) {
							t.Errorf("client %d watching %v got %s", c, filter, x.PointID)
						}
					}
				}
				seenPoints = true
				check.see(t, fmt.Sprintf("client %d round %d", c, round), batch)
				for _, x := range batch {
					view[x.PointID] = x
				}
			}
			if reset {
				break
			}
		}
		last = st.lastID()
		if reset {
			// A batch client's answer to sse-reset (a per-point client may
			// do the same): a fresh stream under a new ID. Its snapshot may
			// repeat what the client holds; the page drops that by
			// updateAt, and so does the check.
			resets.Add(1)
			gen++
			id, last = newID(gen), ""
			check = newOrderCheck()
			for _, x := range view {
				check.last[x.PointID] = x.UpdateAt.Add(-time.Nanosecond)
			}
			continue
		}
		if catchUp {
			return view
		}
		switch rng.IntN(8) {
		case 0: // away long enough that history may not cover it: a reset
			time.Sleep(time.Duration(100+rng.IntN(100)) * time.Millisecond)
		case 1, 2:
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		}
	}
}

// The page and its assets are embedded and served.
func TestServesPage(t *testing.T) {
	s := startStack(t, "", ReaderConfig{}, DashboardConfig{})
	for path, want := range map[string]string{
		"/":              `src="dashboard.js"`,
		"/dashboard.js":  `addEventListener("monitor_points"`,
		"/dashboard.css": "--ok",
		"/api/points":    "[]",
		"/api/status":    `"state"`,
	} {
		resp, err := s.client.Get(s.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
}
