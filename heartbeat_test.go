package sse

import (
	"bufio"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawClient collects a stream's lines as written, comments included.
type rawClient struct {
	mu    sync.Mutex
	lines []string
	c     *testClient
}

func rawDial(t testing.TB, url string) *rawClient {
	t.Helper()
	c, resp := tryDial(t, nil, url, nil)
	r := &rawClient{c: c}
	go func() {
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			r.mu.Lock()
			r.lines = append(r.lines, line)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *rawClient) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "")
}

func TestHeartbeatToIdleStreams(t *testing.T) {
	h, srv := newTestHub(t, Config{Heartbeat: 200 * time.Millisecond})
	h.Broadcast(data("before"))
	idle := rawDial(t, srv.URL)
	waitStreams(t, h, 1)
	pos := *h.lastPos.Load()
	// The heartbeat is a comment plus an id-only block at the hub's position.
	want := ":\nid: " + pos + "\n\n"
	waitFor(t, "a heartbeat", func() bool { return strings.Contains(idle.text(), want) })
	if st := h.Stats(); st.Heartbeats == 0 {
		t.Fatalf("stats %+v", st)
	}
	// Heartbeats never enter history.
	if h.mem.seq != 1 {
		t.Fatalf("history holds %d messages, want only the one event", h.mem.seq)
	}
}

// Streams that are busy get no heartbeat; idle ones do. One ticker serves
// them all.
func TestHeartbeatOnlyWhenIdle(t *testing.T) {
	h, srv := newTestHub(t, Config{Heartbeat: time.Second, Topics: queryTopics})
	busy := rawDial(t, srv.URL+"?topic=busy")
	idle := rawDial(t, srv.URL)
	waitStreams(t, h, 2)
	deadline := time.Now().Add(1600 * time.Millisecond)
	for time.Now().Before(deadline) {
		h.Publish("busy", data("tick"))
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, "a heartbeat to the idle stream", func() bool { return strings.Contains(idle.text(), ":\n") })
	if strings.Contains(busy.text(), ":\n") {
		t.Fatalf("a busy stream got a heartbeat")
	}
	if n := strings.Count(strings.Join(hubGoroutines(h), "\n"), "(*Hub).beat"); n != 1 {
		t.Fatalf("%d heartbeat goroutines, want one for the hub", n)
	}
}

// The heartbeat goroutine runs only while the hub has streams, and not at
// all when heartbeats are off.
func TestHeartbeatGoroutineLifetime(t *testing.T) {
	h, srv := newTestHub(t, Config{Heartbeat: 40 * time.Millisecond})
	beating := func() bool { return strings.Contains(strings.Join(hubGoroutines(h), "\n"), "(*Hub).beat") }
	if beating() {
		t.Fatal("a heartbeat goroutine runs before any stream")
	}
	c := dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	if !beating() {
		t.Fatal("no heartbeat goroutine with a stream open")
	}
	c.close()
	waitStreams(t, h, 0)
	waitFor(t, "the heartbeat goroutine to stop", func() bool { return !beating() })
	dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	waitFor(t, "the heartbeat goroutine to restart", beating)

	off, offSrv := newTestHub(t, Config{Heartbeat: -1})
	raw := rawDial(t, offSrv.URL)
	waitStreams(t, off, 1)
	time.Sleep(100 * time.Millisecond)
	if strings.Contains(raw.text(), ":\n") || off.Stats().Heartbeats != 0 {
		t.Fatalf("heartbeats were sent although disabled: %q", raw.text())
	}
}

// A stream on a quiet topic keeps an up-to-date resume point through its
// heartbeats, so a reconnect after the history rolled on is not reset.
func TestHeartbeatKeepsQuietStreamsResumable(t *testing.T) {
	h, srv := newTestHub(t, Config{Heartbeat: 100 * time.Millisecond, History: 8, Topics: queryTopics})
	raw := rawDial(t, srv.URL+"?topic=quiet")
	waitStreams(t, h, 1)
	for range 20 {
		h.Publish("loud", data("x")) // rolls the 8-event history over
	}
	last := *h.lastPos.Load()
	waitFor(t, "a heartbeat carrying the position", func() bool {
		return strings.Contains(raw.text(), ":\nid: "+last+"\n\n")
	})
	raw.c.close()
	waitStreams(t, h, 0)
	h.Publish("quiet", data("news"))
	c := dial(t, nil, srv.URL+"?topic=quiet", lastEventID(last))
	if ev := c.next(); ev.Type == ResetEvent || string(ev.Data) != "news" {
		t.Fatalf("got %+v", ev)
	}
}
