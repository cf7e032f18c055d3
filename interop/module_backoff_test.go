package interop

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// sse.js backs off, honours Retry-After and stops on answers no retry
// mends. Each case scripts the answers to the page's requests (0: an event
// stream) and checks the requests made, what onStop got, and the delays
// sse.js reported before each retry: the reconnection time (100 ms here)
// doubled for each failure in a row, plus up to half again (jitter), or
// Retry-After if longer. The delays are sse.js's own, not clock readings.
func TestModuleBacksOffAndStops(t *testing.T) {
	type tc struct {
		name      string
		transport string
		answers   []int // for each GET in turn; the last repeats
		header    http.Header
		options   string // more options
		requests  int    // GETs made
		stop      int    // onStop's status; 0: it must open
		delays    [][2]int
	}
	cases := []tc{
		{name: "503s, then a stream", transport: "fetch", answers: []int{503, 503, 503, 0}, requests: 4,
			delays: [][2]int{{100, 150}, {200, 300}, {400, 600}}},
		{name: "a cap on the backoff", transport: "fetch", answers: []int{500, 502, 504, 500, 0}, options: "maxRetryDelay: 250,", requests: 5,
			delays: [][2]int{{100, 150}, {200, 300}, {250, 375}, {250, 375}}},
		{name: "429 with Retry-After", transport: "fetch", answers: []int{429, 0}, header: http.Header{"Retry-After": {"1"}}, requests: 2,
			delays: [][2]int{{1000, 1500}}},
		{name: "401 stops", transport: "fetch", answers: []int{401}, requests: 1, stop: 401},
		{name: "403 stops", transport: "fetch", answers: []int{403}, requests: 1, stop: 403},
		{name: "404 stops", transport: "fetch", answers: []int{404}, requests: 1, stop: 404},
		{name: "204 stops", transport: "fetch", answers: []int{204}, requests: 1, stop: 204},
		{name: "not an event stream stops", transport: "fetch", answers: []int{200}, requests: 1, stop: 200},
		{name: "maxRetries", transport: "fetch", answers: []int{500}, options: "maxRetries: 2,", requests: 3, stop: 500,
			delays: [][2]int{{100, 150}, {200, 300}}},
		{name: "EventSource: 401 stops", transport: "eventsource", answers: []int{401}, requests: 1, stop: 401},
		{name: "EventSource: 503, then a stream", transport: "eventsource", answers: []int{503, 503, 0}, requests: 3,
			delays: [][2]int{{100, 150}, {200, 300}}},
	}

	var mu sync.Mutex
	gets := map[string]int{} // case → GETs so far
	last := map[string]int{} // case → the status of its last GET
	mux := http.NewServeMux()
	serveModule(mux)
	mux.HandleFunc("/answer", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("case")
		var c *tc
		for i := range cases {
			if cases[i].name == name {
				c = &cases[i]
			}
		}
		if c == nil {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		status := last[name]
		if r.Method == http.MethodGet {
			status = c.answers[min(gets[name], len(c.answers)-1)]
			gets[name]++
			last[name] = status
		}
		mu.Unlock()
		// A HEAD (sse.js asking why an EventSource failed) gets what the
		// last GET got.
		for k, v := range c.header {
			w.Header()[k] = v
		}
		switch status {
		case 0:
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodHead {
				return
			}
			_, _ = w.Write([]byte("data: ok\n\n"))
			_ = http.NewResponseController(w).Flush()
			<-r.Context().Done()
		case 200:
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<p>not a stream</p>"))
		default:
			w.WriteHeader(status)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	browser := launchChromium(t)
	page := openModulePage(t, browser, srv.URL)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			page := page.in(t)
			page.eval(fmt.Sprintf(`
				window.got = [];
				window.delays = [];
				window.stops = [];
				window.s = sse.connect("/answer?case=" + encodeURIComponent(%q), {
					transport: %q, retry: 100, %s
					onStop: (err) => stops.push(err.status),
				});
				s.on("message", (e) => got.push(e.data));
				s.onState((state, info) => { if (info.delay !== undefined) delays.push(info.delay); });`, c.name, c.transport, c.options), nil)
			if c.stop != 0 {
				page.waitFor("onStop", "stops.length > 0", 10*time.Second)
			} else {
				page.waitFor("the stream's event", "got.length > 0", 10*time.Second)
			}
			time.Sleep(300 * time.Millisecond) // another request would come now
			var stops []int
			var delays []float64
			page.eval(`return stops;`, &stops)
			page.eval(`return delays;`, &delays)
			mu.Lock()
			n := gets[c.name]
			mu.Unlock()
			if n != c.requests {
				t.Errorf("%d requests, want %d", n, c.requests)
			}
			if c.stop != 0 && (len(stops) != 1 || stops[0] != c.stop) {
				t.Errorf("onStop got %v, want [%d]", stops, c.stop)
			}
			if c.stop == 0 && len(stops) != 0 {
				t.Errorf("onStop got %v, want no call", stops)
			}
			if len(delays) != len(c.delays) {
				t.Fatalf("delays %v, want %d in %v", delays, len(c.delays), c.delays)
			}
			for i, d := range delays {
				if d < float64(c.delays[i][0]) || d >= float64(c.delays[i][1]) {
					t.Errorf("delay %d: %.0f ms, want in [%d, %d)", i, d, c.delays[i][0], c.delays[i][1])
				}
			}
			page.eval(`s.close();`, nil)
		})
	}
}
