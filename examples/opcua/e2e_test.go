package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// startWait bounds waits that include a simulator start and a first
// connection: 2–3.5 s under the race detector on two cores.
const startWait = 30 * time.Second

// TestEndToEnd runs the example's whole path in process: the simulator, the
// reader's subscription, the dashboard's hub, and streams read with the
// core's decoder. The snapshot arrives, values change, per-point streams
// carry only their points, and the status event reports the connection.
func TestEndToEnd(t *testing.T) {
	sim := startSimulator(t, 100*time.Millisecond)
	s := startStack(t, sim.Endpoint(), ReaderConfig{Interval: 50 * time.Millisecond}, DashboardConfig{})
	const temp = "ns=1;s=Boiler.Temperature"
	const parts = "ns=1;s=Line1.PartsCount"

	// A stream opened before the reader connects sees it connect.
	all := s.openStream(t, "/events?client=e2e-all-0001", "")
	all.waitFor(startWait, "status connected", func(ev sse.Event) bool {
		return ev.Type == EventStatus && status(t, ev).State == StateConnected && status(t, ev).Points == len(simPointNames)
	})
	check := newOrderCheck()
	view := map[string]Sample{}
	all.waitFor(10*time.Second, "every point", func(ev sse.Event) bool {
		if ev.Type == EventPoints {
			batch := samples(t, ev)
			check.see(t, "all", batch)
			for _, x := range batch {
				view[x.PointID] = x
			}
		}
		return len(view) == len(simPointNames)
	})
	first := view[temp]
	all.waitFor(10*time.Second, "a temperature change", func(ev sse.Event) bool {
		if ev.Type != EventPoints {
			return false
		}
		batch := samples(t, ev)
		check.see(t, "all", batch)
		for _, x := range batch {
			if x.PointID == temp && x.UpdateAt.After(first.UpdateAt.Time) && x.Value != nil {
				return true
			}
		}
		return false
	})

	// A stream opened now starts with the status and the full snapshot.
	fresh := s.openStream(t, "/events?client=e2e-fresh-001", "")
	ev, _ := fresh.next(5 * time.Second)
	if ev.Type != EventStatus || status(t, ev).State != StateConnected {
		t.Fatalf("fresh stream: first event %s %s, want status connected", ev.Type, ev.Data)
	}
	ev, _ = fresh.next(5 * time.Second)
	if snap := samples(t, ev); ev.Type != EventPoints || len(snap) != len(simPointNames) || snap[0].PointID != temp {
		t.Fatalf("fresh stream: second event %s %s, want the snapshot of every point in browse order", ev.Type, ev.Data)
	}

	// A stream of two points gets those two only: their current values (the
	// hub's keyed state, one event each), then changes.
	two := s.openStream(t, "/events?client=e2e-two-0001&points="+temp+","+parts, "")
	start := map[string]int{}
	for len(start) < 2 {
		ev, ok := two.next(5 * time.Second)
		if !ok {
			t.Fatalf("two-point stream: its start ended after %v", start)
		}
		if ev.Type != EventPoints {
			continue
		}
		for _, x := range samples(t, ev) {
			if start[x.PointID]++; x.PointID != temp && x.PointID != parts || start[x.PointID] > 1 {
				t.Fatalf("two-point start: %s, after %v", ev.Data, start)
			}
		}
	}
	seen := map[string]int{}
	checkTwo := newOrderCheck()
	two.waitFor(10*time.Second, "changes of both points", func(ev sse.Event) bool {
		if ev.Type == EventPoints {
			batch := samples(t, ev)
			checkTwo.see(t, "two", batch)
			for _, x := range batch {
				if x.PointID != temp && x.PointID != parts {
					t.Fatalf("two-point stream got %s", x.PointID)
				}
				seen[x.PointID]++
			}
		}
		return seen[temp] >= 3 && seen[parts] >= 3
	})

	// -nodes: a reader of named nodes monitors those; a node the server does
	// not have shows up with a Bad status.
	const bogus = "ns=1;s=NoSuchPoint"
	named, err := parseNodeIDs(temp + ", " + bogus)
	if err != nil {
		t.Fatal(err)
	}
	s2 := startStack(t, sim.Endpoint(), ReaderConfig{Interval: 50 * time.Millisecond, Nodes: named}, DashboardConfig{})
	st2 := s2.openStream(t, "/events?client=e2e-named-01", "")
	got := map[string]string{}
	st2.waitFor(startWait, "the named points", func(ev sse.Event) bool {
		if ev.Type == EventPoints {
			for _, x := range samples(t, ev) {
				if x.PointID != temp && x.PointID != bogus {
					t.Fatalf("named-node stream got %s", x.PointID)
				}
				got[x.PointID] = x.Status
			}
		}
		return len(got) == 2
	})
	if got[temp] != "Good" || !strings.HasPrefix(got[bogus], "Bad") {
		t.Errorf("statuses %v, want Good and Bad…", got)
	}

	// The JSON view agrees.
	resp, err := s.client.Get(s.srv.URL + "/api/points")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []Sample
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list) != len(simPointNames) {
		t.Fatalf("/api/points: %d points, %v", len(list), err)
	}
}
