package interop

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// sse.js's fetch transport takes a connection on which nothing arrives for
// three heartbeat intervals for dead, and makes a new one that resumes:
// the first response sends an event and a heartbeat, then stalls with the
// connection open (a proxy that lost the upstream, say); the page, told
// the heartbeat is 200 ms, reconnects with Last-Event-ID after 600 ms of
// silence. The second response sends an event, then only heartbeat
// comments for 1.5 s: those keep it alive, so there is no third request.
func TestModuleWatchdogReconnectsAStalledStream(t *testing.T) {
	var mu sync.Mutex
	var requests []string // the Last-Event-ID of each, "-" for none
	done := make(chan struct{})
	mux := http.NewServeMux()
	serveModule(mux)
	mux.HandleFunc("/stall", func(w http.ResponseWriter, r *http.Request) {
		id := "-"
		if v, ok := r.Header["Last-Event-Id"]; ok {
			id = v[0]
		}
		mu.Lock()
		requests = append(requests, id)
		n := len(requests)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		write := func(s string) {
			_, _ = w.Write([]byte(s))
			_ = rc.Flush()
		}
		wait := func(d time.Duration) bool {
			select {
			case <-time.After(d):
				return true
			case <-r.Context().Done():
			case <-done:
			}
			return false
		}
		switch n {
		case 1:
			write("retry: 50\nid: 1\ndata: one\n\n:\n")
			wait(time.Hour) // the stall: open, silent
		case 2:
			write("id: 2\ndata: two\n\n")
			for i := 0; i < 15 && wait(100*time.Millisecond); i++ {
				write(":\n")
			}
			write("id: 3\ndata: three\n\n")
			for wait(100 * time.Millisecond) {
				write(":\n")
			}
		default:
			write("data: unexpected\n\n")
			wait(time.Hour)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		close(done)
		srv.Close()
	})

	browser := launchChromium(t)
	page := openModulePage(t, browser, srv.URL)
	page.eval(`
		window.got = [];
		window.s = sse.connect("/stall", { transport: "fetch", heartbeat: 200 });
		s.on("message", (e) => got.push(e.data + "/" + e.lastEventId));
		s.onState((state, info) => log.push(state + (info.error ? ": " + info.error.message : "")));`, nil)
	page.waitFor("three events", "got.length >= 3", 15*time.Second)
	time.Sleep(time.Second) // a third request would come now
	var got, states []string
	page.eval(`return got;`, &got)
	page.eval(`return log;`, &states)
	mu.Lock()
	reqs := append([]string(nil), requests...)
	mu.Unlock()
	if want := "one/1 two/2 three/3"; strings.Join(got, " ") != want {
		t.Errorf("the page got %q, want %q", got, want)
	}
	if want := []string{"-", "1"}; fmt.Sprint(reqs) != fmt.Sprint(want) {
		t.Errorf("requests with Last-Event-ID %q, want %q (one reconnect, resuming)", reqs, want)
	}
	stalled := fmt.Sprintf("connecting: sse.js: nothing arrived for %d ms", 600)
	n := 0
	for _, s := range states {
		if s == stalled {
			n++
		}
	}
	if n != 1 {
		t.Errorf("states %q: want %q once", states, stalled)
	}
}
