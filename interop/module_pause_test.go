package interop

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// With pauseWhenHidden, sse.js closes its connection while the tab is
// hidden and resumes exactly when it shows again, with either transport:
// the hub sees the stream end, the events sent meanwhile arrive after the
// tab shows, once each, and the new connection carries the resume point
// (a new EventSource in the query parameter, fetch in Last-Event-ID).
// Headless Chromium keeps its tabs visible, so the page stands in for the
// browser: it makes document.hidden say so and fires visibilitychange.
func TestModulePausesWhileHidden(t *testing.T) {
	s := newModuleServer(t, sse.Config{})
	browser := launchChromium(t)
	page := openModulePage(t, browser, s.srv.URL)
	page.eval(`
		window.hidden = false;
		Object.defineProperty(document, "hidden", { configurable: true, get: () => window.hidden });
		window.setHidden = (h) => { window.hidden = h; document.dispatchEvent(new Event("visibilitychange")); };`, nil)
	for _, transport := range []string{"eventsource", "fetch"} {
		t.Run(transport, func(t *testing.T) {
			page := page.in(t)
			client := "pause-" + transport
			page.eval(fmt.Sprintf(`
				window.got = [];
				window.s = sse.connect("/sse?client=%s", { transport: %q, pauseWhenHidden: true, retry: 100 });
				s.on("message", (e) => got.push(e.data));`, client, transport), nil)
			page.waitFor("the stream open", `s.state === "open"`, 10*time.Second)
			send := func(i int) {
				t.Helper()
				if _, err := s.hub.Send(client, sse.Event{Data: []byte(strconv.Itoa(i))}); err != nil {
					t.Fatal(err)
				}
			}
			send(0)
			page.waitFor("event 0", `got.length === 1`, 10*time.Second)
			page.eval(`setHidden(true);`, nil)
			page.waitFor("paused", `s.state === "paused"`, 5*time.Second)
			waitUntil(t, "the stream to end at the hub", 10*time.Second, func() bool { return s.hub.Stats().Streams == 0 })
			before := len(s.gets())
			for i := 1; i <= 5; i++ {
				send(i)
			}
			time.Sleep(300 * time.Millisecond)
			if n := len(s.gets()); n != before {
				t.Fatalf("%d requests while hidden", n-before)
			}
			page.eval(`setHidden(false);`, nil)
			page.waitFor("the events sent while hidden", `got.length >= 6`, 10*time.Second)
			time.Sleep(200 * time.Millisecond)
			var got []string
			page.eval(`return got;`, &got)
			if fmt.Sprint(got) != "[0 1 2 3 4 5]" {
				t.Fatalf("the page got %q, want 0 to 5", got)
			}
			r := s.gets()[before]
			if transport == "eventsource" && (r.Param == "" || r.LastEventID != "") || transport == "fetch" && r.LastEventID == "" {
				t.Fatalf("the connection after the pause: %+v, want the resume point in the %s", r, map[string]string{"eventsource": "query", "fetch": "header"}[transport])
			}
			page.eval(`s.close();`, nil)
		})
	}
}
