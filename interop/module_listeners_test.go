package interop

import (
	"fmt"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// sse.js's listeners cannot double, in Chromium, with either transport:
// connect() twice is one stream and one connection at the hub; on(type, fn)
// twice is one registration, called once per event; each on() returns the
// off() of its registration, which removes it while it is that
// registration (a stale off() removes nothing registered since); the same
// fn on two types is two registrations; a listener removed by an earlier
// one during a dispatch is not called; a listener that throws is reported
// and the others still run.
func TestModuleListenersCannotDouble(t *testing.T) {
	s := newModuleServer(t, sse.Config{})
	browser := launchChromium(t)
	page := openModulePage(t, browser, s.srv.URL)
	for _, transport := range []string{"eventsource", "fetch"} {
		t.Run(transport, func(t *testing.T) {
			page := page.in(t)
			client := "listeners-" + transport
			url := "/sse?client=" + client
			var same bool
			page.eval(fmt.Sprintf(`
				const url = %q;
				const s = sse.connect(url, { transport: %q, retry: 100 });
				window.s = s;
				window.calls = { f: 0, g: 0, b: 0, thrower: 0, reported: 0 };
				window.onerror = () => { calls.reported++; };
				window.f = (e) => calls.f++;
				window.g = (e) => calls.g++;
				window.offF1 = s.on("message", f);
				window.offF2 = s.on("message", f); // the same registration
				s.on("message", () => { calls.thrower++; throw new Error("a listener's bug"); });
				s.on("message", g);
				let otherOptions = false;
				try { sse.connect(url, { retry: 100 }); } catch { otherOptions = true; }
				return sse.connect(url) === s && sse.connect(new URL(url, location.href)) === s && otherOptions;`, url, transport), &same)
			if !same {
				t.Fatal("connect() with the same URL did not return the same stream, or accepted other options")
			}
			page.waitFor("the stream open", `s.state === "open"`, 10*time.Second)
			waitUntil(t, "one stream at the hub", 5*time.Second, func() bool { return s.hub.Stats().Streams == 1 })

			type counts struct{ F, G, B, Thrower, Reported int }
			step := 0
			send := func(typ string, want counts) {
				t.Helper()
				step++
				if _, err := s.hub.Send(client, sse.Event{Type: typ, Data: []byte(fmt.Sprint(step))}); err != nil {
					t.Fatal(err)
				}
				// g sees every "message": wait for its count; for other
				// types, for f's.
				cond := fmt.Sprintf("calls.g === %d", want.G)
				if typ != "" {
					cond = fmt.Sprintf("calls.f === %d", want.F)
				}
				page.waitFor(fmt.Sprintf("event %d", step), cond, 10*time.Second)
				time.Sleep(50 * time.Millisecond) // a second call would show now
				var got counts
				page.eval(`return calls;`, &got)
				if got != want {
					t.Fatalf("after event %d: calls %+v, want %+v", step, got, want)
				}
			}
			send("", counts{F: 1, G: 1, Thrower: 1, Reported: 1})
			page.eval(`offF2();`, nil) // removes f: one registration
			send("", counts{F: 1, G: 2, Thrower: 2, Reported: 2})
			page.eval(`window.offF3 = s.on("message", f); offF1(); offF2();`, nil) // stale offs remove nothing
			send("", counts{F: 2, G: 3, Thrower: 3, Reported: 3})
			page.eval(`offF3(); offF3();`, nil)
			send("", counts{F: 2, G: 4, Thrower: 4, Reported: 4})
			page.eval(`window.offTick = s.on("tick", f); s.on("tick", f);`, nil) // f on another type
			send("tick", counts{F: 3, G: 4, Thrower: 4, Reported: 4})
			page.eval(`
				let offB;
				s.on("message", () => offB()); // runs before b, and removes it
				offB = s.on("message", () => calls.b++);`, nil)
			send("", counts{F: 3, G: 5, B: 0, Thrower: 5, Reported: 5})
			if n := s.hub.Stats().Streams; n != 1 {
				t.Fatalf("%d streams at the hub, want 1", n)
			}
			page.eval(`s.close();`, nil)
			var fresh bool
			page.eval(`return sse.connect(s.url) !== s;`, &fresh)
			if !fresh {
				t.Fatal("connect() after close() returned the closed stream")
			}
			page.eval(`sse.connect(s.url).close();`, nil)
		})
	}
}
