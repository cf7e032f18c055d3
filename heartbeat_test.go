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

// beats counts the heartbeat lines read so far: a lone ":".
func (r *rawClient) beats() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lines {
		if l == ":\n" {
			n++
		}
	}
	return n
}

func TestHeartbeatToIdleStreams(t *testing.T) {
	h, srv := newTestHub(t, Config{Heartbeat: 200 * time.Millisecond})
	h.Broadcast(data("before"))
	idle := rawDial(t, srv.URL)
	waitStreams(t, h, 1)
	pos := *h.lastPos.Load()
	start := "retry: 3000\nid: " + pos + "\nevent: " + PositionEvent + "\ndata:\n\n"
	waitFor(t, "three heartbeats", func() bool { return idle.beats() >= 3 })
	// A heartbeat is a lone comment line: no id, and no blank line that
	// would end a block (some clients dispatch an empty event for each).
	text := idle.text()
	rest, ok := strings.CutPrefix(text, start)
	if !ok || strings.Trim(rest, ":\n") != "" || strings.Contains(rest, "\n\n") || !strings.HasPrefix(rest, ":\n:\n:\n") {
		t.Fatalf("stream %q, want its start then heartbeat lines only", text)
	}
	if st := h.Stats(); st.Heartbeats < 3 {
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
	waitFor(t, "a heartbeat to the idle stream", func() bool { return idle.beats() > 0 })
	if busy.beats() > 0 {
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
	// A goroutine that has not started yet runs a wrapper that its
	// traceback names after the function that started it: wait for it.
	waitFor(t, "a heartbeat goroutine with a stream open", beating)
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
	if raw.beats() > 0 || off.Stats().Heartbeats != 0 {
		t.Fatalf("heartbeats were sent although disabled: %q", raw.text())
	}
}
