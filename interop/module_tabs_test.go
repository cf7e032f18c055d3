package interop

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// With shared set, eight tabs of one origin hold one stream at the hub,
// with either transport: one tab (the leader, holding a Web Lock) connects
// and the others receive its events through a BroadcastChannel. 600 events
// are sent; after the 150th and the 350th the leader's tab is closed, and
// another tab connects within 2 s, resuming from the last position it saw
// (the hub calls the stream resumed, and sends no reset). Every tab that
// stays open gets every event once, in order.
func TestModuleTabsShareOneStream(t *testing.T) {
	var mu sync.Mutex
	var connects []sse.StreamInfo
	var connectedAt []time.Time
	var ends []string  // each stream's end, for the failure message
	var current string // the subtest's client ID: the tabs an earlier subtest closes may still take over meanwhile
	s := newModuleServer(t, sse.Config{
		History: 4096,
		OnConnect: func(info sse.StreamInfo) {
			mu.Lock()
			defer mu.Unlock()
			if info.ClientID != current {
				return
			}
			connects = append(connects, info)
			connectedAt = append(connectedAt, time.Now())
		},
		OnDisconnect: func(info sse.StreamInfo, why sse.DisconnectReason) {
			mu.Lock()
			defer mu.Unlock()
			if info.ClientID != current {
				return
			}
			ends = append(ends, fmt.Sprintf("%s (%v from %q): %v", info.ClientID, info.Start, info.LastEventID, why))
		},
	})
	browser := launchChromium(t)
	for _, transport := range []string{"eventsource", "fetch"} {
		t.Run(transport, func(t *testing.T) {
			client := "tabs-" + transport
			mu.Lock()
			connects, connectedAt, ends, current = nil, nil, nil, client
			mu.Unlock()
			const tabs = 8
			pages := make([]*modulePage, tabs)
			for i := range pages {
				pages[i] = openModulePage(t, browser, s.srv.URL).in(t)
				pages[i].eval(fmt.Sprintf(`
					window.got = [];
					window.s = sse.connect("/sse?client=%s", { transport: %q, shared: true, retry: 100, onReset: (r) => got.push("reset:" + r) });
					s.on("message", (e) => got.push(e.data));`, client, transport), nil)
			}
			open := pages // the tabs not closed
			for _, p := range open {
				p.waitFor("the shared stream open", `s.state === "open"`, 10*time.Second)
			}
			waitUntil(t, "one stream at the hub", 5*time.Second, func() bool { return s.hub.Stats().Streams == 1 })
			leader := func() int {
				t.Helper()
				who := -1
				for i, p := range open {
					var l bool
					p.eval(`return s.leader;`, &l)
					if l {
						if who >= 0 {
							t.Fatalf("tabs %d and %d both lead", who, i)
						}
						who = i
					}
				}
				return who
			}
			if leader() < 0 {
				t.Fatal("no tab leads")
			}

			const n = 600
			sent := 0
			send := func() {
				t.Helper()
				if _, err := s.hub.Send(client, sse.Event{Data: []byte(strconv.Itoa(sent))}); err != nil {
					t.Fatal(err)
				}
				sent++
				time.Sleep(5 * time.Millisecond)
			}
			var takeovers []time.Duration
			for sent < n {
				if sent == 150 || sent == 350 {
					mu.Lock()
					before := len(connects)
					mu.Unlock()
					l := leader()
					if l < 0 {
						t.Fatalf("no tab leads before event %d", sent)
					}
					closed := time.Now()
					open[l].close()
					open = append(open[:l:l], open[l+1:]...)
					// Keep sending while another tab takes over.
					for range 20 {
						send()
					}
					waitUntil(t, "another tab's stream", 10*time.Second, func() bool {
						mu.Lock()
						defer mu.Unlock()
						return len(connects) > before
					})
					mu.Lock()
					info, at := connects[before], connectedAt[before]
					mu.Unlock()
					takeovers = append(takeovers, at.Sub(closed))
					if info.Start != sse.StartResumed {
						t.Errorf("the new leader's stream started %v from %q, want resumed", info.Start, info.LastEventID)
					}
				}
				send()
			}
			for k, p := range open {
				p.waitFor(fmt.Sprintf("tab %d's %d events", k, n), fmt.Sprintf("got.length >= %d", n), 20*time.Second)
			}
			time.Sleep(300 * time.Millisecond) // a repeat would show now
			for k, p := range open {
				var got []string
				p.eval(`return got;`, &got)
				for i, d := range got {
					if d != strconv.Itoa(i) {
						t.Fatalf("tab %d got %q at %d, want %d (no gap, no repeat, no reset): ... %q", k, d, i, i, got[max(0, i-5):min(len(got), i+5)])
					}
				}
				if len(got) != n {
					t.Fatalf("tab %d got %d events, want %d", k, len(got), n)
				}
			}
			for k, d := range takeovers {
				if d > 2*time.Second {
					t.Errorf("takeover %d: the new leader's stream started %v after the leader's tab closed, want within 2 s", k+1, d)
				}
			}
			mu.Lock()
			nc := len(connects)
			var starts []string
			for i, c := range connects {
				starts = append(starts, fmt.Sprintf("%v from %q at +%v", c.Start, c.LastEventID, connectedAt[i].Sub(connectedAt[0])))
			}
			ended := slices.Clone(ends)
			mu.Unlock()
			if nc != 3 {
				t.Errorf("%d streams started at the hub, want 3 (one per leader): %q; ended: %q", nc, starts, ended)
			}
			t.Logf("takeovers after %v; hub: %d streams now, %d replays, %d resets", takeovers, s.hub.Stats().Streams, s.hub.Stats().Replays, s.hub.Stats().Resets)
			for _, p := range open {
				p.close()
			}
		})
	}
	if r := s.hub.Stats().Resets; r != 0 {
		t.Errorf("the hub sent %d resets", r)
	}
}

// What keeps a takeover free of repeats, tested from inside: a follower
// that was ahead of the tab that takes over gets again, from the new
// leader, events it delivered already, and drops them by id (every event of
// a hub has an id of its own), until a reset (whose snapshot may repeat
// ids). The race is rare between real tabs, so this test posts the leader's
// messages itself, on the channel sse.js uses ("sse.js " + the URL).
func TestModuleTabsDropRepeats(t *testing.T) {
	s := newModuleServer(t, sse.Config{})
	browser := launchChromium(t)
	var pages [2]*modulePage
	for i := range pages {
		pages[i] = openModulePage(t, browser, s.srv.URL)
		pages[i].eval(`
			window.got = [];
			window.ids = [];
			window.s = sse.connect("/sse?client=repeats", { shared: true, retry: 100 });
			s.on("message", (e) => { got.push(e.data); ids.push(e.lastEventId); });`, nil)
		pages[i].waitFor("the shared stream open", `s.state === "open"`, 10*time.Second)
	}
	follower := pages[1]
	var lead bool
	pages[0].eval(`return s.leader;`, &lead)
	if !lead {
		follower = pages[0]
	}
	for i := range 3 {
		if _, err := s.hub.Send("repeats", sse.Event{Data: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	follower.waitFor("three events", "got.length === 3", 10*time.Second)
	follower.eval(`
		const ch = new BroadcastChannel("sse.js " + s.url);
		ch.postMessage({ k: "event", type: "message", data: "1 again", id: ids[1] });
		ch.postMessage({ k: "event", type: "message", data: "new", id: "another-id" });
		ch.postMessage({ k: "reset", reason: "test", id: "" });
		ch.postMessage({ k: "event", type: "message", data: "1 after the reset", id: ids[1] });
		ch.postMessage({ k: "event", type: "message", data: "1 after the reset, again", id: ids[1] });`, nil)
	follower.waitFor("the posted events", `got.includes("1 after the reset")`, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	var got []string
	follower.eval(`return got;`, &got)
	if want := fmt.Sprint([]string{"0", "1", "2", "new", "1 after the reset"}); fmt.Sprint(got) != want {
		t.Fatalf("the follower got %q, want %s", got, want)
	}
}

// A shared EventSource receives the types every tab listens to, not only
// the leader's (an EventSource dispatches a named event only to a listener
// of its type): a follower's type, one a tab registers after it joined,
// and after the leader's tab closes, the new leader listens to them all.
func TestModuleTabsShareEveryType(t *testing.T) {
	s := newModuleServer(t, sse.Config{})
	browser := launchChromium(t)
	open := func(types ...string) *modulePage {
		p := openModulePage(t, browser, s.srv.URL)
		js, _ := json.Marshal(append([]string{}, types...))
		p.eval(fmt.Sprintf(`
			window.got = [];
			window.s = sse.connect("/sse?client=types", { shared: true, retry: 100 });
			for (const type of %s) s.on(type, (e) => got.push(type + ":" + e.data));`, js), nil)
		p.waitFor("the shared stream open", `s.state === "open"`, 10*time.Second)
		return p
	}
	first := open("message")
	var lead bool
	first.eval(`return s.leader;`, &lead)
	if !lead {
		t.Fatal("the first tab does not lead")
	}
	second := open("follower-type")
	third := open()
	third.eval(`s.on("late-type", (e) => got.push("late-type:" + e.data));`, nil)
	send := func(typ, data string) {
		t.Helper()
		if _, err := s.hub.Send("types", sse.Event{Type: typ, Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // the tabs' types reach the leader
	send("follower-type", "1")
	send("late-type", "2")
	send("", "3")
	second.waitFor("the follower's type", `got.includes("follower-type:1")`, 10*time.Second)
	third.waitFor("the late type", `got.includes("late-type:2")`, 10*time.Second)
	first.waitFor("a message", `got.includes("message:3")`, 10*time.Second)

	first.close()
	waitUntil(t, "the new leader's stream", 10*time.Second, func() bool { return s.hub.Stats().Replays >= 1 })
	send("late-type", "4")
	third.waitFor("the late type after the takeover", `got.includes("late-type:4")`, 10*time.Second)
	var got []string
	third.eval(`return got;`, &got)
	if want := "late-type:2 late-type:4"; strings.Join(got, " ") != want {
		t.Fatalf("the third tab got %q, want %q", got, want)
	}
}
