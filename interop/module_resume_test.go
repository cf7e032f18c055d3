package interop

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// sse.js resumes exactly through cut connections, with either transport:
// 400 events sent to the page's client while the hub ends its stream nine
// times, every other time answering its reconnect 500 once, all reach the
// page once, in order, with no reset. The EventSource reconnects by itself
// after a plain cut; after the 500 it has given up, and sse.js opens a new
// one that resumes from the query parameter (Config.LastEventIDParam). The
// fetch transport sends Last-Event-ID on every reconnect.
func TestModuleResumesExactly(t *testing.T) {
	s := newModuleServer(t, sse.Config{History: 2048})
	browser := launchChromium(t)
	page := openModulePage(t, browser, s.srv.URL)
	for _, transport := range []string{"eventsource", "fetch"} {
		t.Run(transport, func(t *testing.T) {
			page := page.in(t)
			client := "resume-" + transport
			page.eval(fmt.Sprintf(`
				window.got = [];
				window.s = sse.connect("/sse?client=%s", { transport: %q, retry: 100, onReset: (r) => got.push("reset:" + r) });
				s.on("message", (e) => got.push(e.data));`, client, transport), nil)
			page.waitFor("the stream open", `s.state === "open"`, 10*time.Second)
			first := len(s.gets())

			const n, cuts = 400, 10 // a cut before every 40th event but the first
			refused := 0
			for i := range n {
				if i > 0 && i%(n/cuts) == 0 {
					if (i/(n/cuts))%2 == 0 {
						once := true
						s.setGate(func(r *http.Request) int {
							if r.Method == http.MethodGet && once {
								once = false
								return http.StatusInternalServerError
							}
							return 0
						})
						refused++
					}
					// Cut the stream, once the page has one again.
					waitUntil(t, "the page's stream", 10*time.Second, func() bool { return s.hub.Disconnect(client) > 0 })
				}
				if _, err := s.hub.Send(client, sse.Event{Data: []byte(strconv.Itoa(i))}); err != nil {
					t.Fatal(err)
				}
				time.Sleep(5 * time.Millisecond)
			}
			page.waitFor(fmt.Sprintf("%d events", n), fmt.Sprintf("got.length >= %d", n), 30*time.Second)
			time.Sleep(300 * time.Millisecond) // a repeat would show now
			var got []string
			page.eval(`return got;`, &got)
			for i, d := range got {
				if d != strconv.Itoa(i) {
					t.Fatalf("the page got %v: at %d %q, want %d (no gap, no repeat, no reset)", got, i, d, i)
				}
			}
			if len(got) != n {
				t.Fatalf("the page got %d events, want %d", len(got), n)
			}

			gets := s.gets()[first:]
			var byHeader, byParam, refusedSeen int
			for _, r := range gets {
				switch {
				case r.Status != 0:
					refusedSeen++
				case r.LastEventID != "":
					byHeader++
				case r.Param != "":
					byParam++
				default:
					t.Errorf("a reconnect without a resume point: %+v", r)
				}
			}
			t.Logf("%d reconnects: %d refused, %d resumed with the header, %d with the query parameter; hub: %d replays, %d resets",
				len(gets), refusedSeen, byHeader, byParam, s.hub.Stats().Replays, s.hub.Stats().Resets)
			if refusedSeen != refused {
				t.Errorf("%d reconnects refused, want %d", refusedSeen, refused)
			}
			if transport == "eventsource" && byParam < refused {
				t.Errorf("%d new EventSources resumed from the query parameter, want %d (one after each 500)", byParam, refused)
			}
			if transport == "fetch" && byParam != 0 {
				t.Errorf("the fetch transport sent the query parameter %d times", byParam)
			}
			if byHeader+byParam != cuts-1 {
				t.Errorf("%d resumed connections for %d cuts", byHeader+byParam, cuts-1)
			}
			page.eval(`s.close();`, nil)
		})
	}
	if r := s.hub.Stats().Resets; r != 0 {
		t.Errorf("the hub sent %d resets", r)
	}
}

// A resume the hub cannot serve, with either transport: the page was away
// (every request refused 503, a status both transports retry) while 18
// keyed events pushed its position out of a history of 4. When it comes
// back, onReset("expired") runs once, and the "sse-reset" listener once,
// then the snapshot (the newest value of each key, in publish order) and
// the live events follow; "sse-position" never reaches a listener.
func TestModuleResetReloadsOnce(t *testing.T) {
	s := newModuleServer(t, sse.Config{History: 4})
	browser := launchChromium(t)
	page := openModulePage(t, browser, s.srv.URL)
	for _, transport := range []string{"eventsource", "fetch"} {
		t.Run(transport, func(t *testing.T) {
			page := page.in(t)
			client := "reset-" + transport
			page.eval(fmt.Sprintf(`
				window.got = [];
				window.s = sse.connect("/sse?client=%s", { transport: %q, retry: 100, onReset: (r) => got.push("onReset:" + r) });
				s.on("message", (e) => got.push(e.data));
				s.on("sse-reset", (e) => got.push("listener:" + e.data));
				s.on("sse-position", (e) => got.push("position reached a listener"));`, client, transport), nil)
			page.waitFor("the stream open", `s.state === "open"`, 10*time.Second)
			send := func(key, data string) {
				t.Helper()
				if _, err := s.hub.Send(client, sse.Event{Key: key, Data: []byte(data)}); err != nil {
					t.Fatal(err)
				}
			}
			send("a", "a=1")
			send("b", "b=1")
			page.waitFor("the first values", `got.length === 2`, 10*time.Second)

			s.setGate(func(*http.Request) int { return http.StatusServiceUnavailable })
			s.hub.Disconnect(client)
			page.waitFor("the page away", `s.state === "connecting"`, 10*time.Second)
			for i := 2; i <= 10; i++ {
				send("a", fmt.Sprintf("a=%d", i))
				send("b", fmt.Sprintf("b=%d", i))
			}
			s.setGate(nil)
			page.waitFor("the snapshot", `got.length >= 6`, 20*time.Second)
			send("", "live")
			page.waitFor("the live event", `got.includes("live")`, 10*time.Second)
			time.Sleep(200 * time.Millisecond)
			var got []string
			page.eval(`return got;`, &got)
			want := []string{"a=1", "b=1", "onReset:expired", "listener:expired", "a=10", "b=10", "live"}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("the page got %q, want %q", got, want)
			}
			page.eval(`s.close();`, nil)
		})
	}
}
