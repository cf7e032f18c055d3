package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's Chromium, which .ci/run installs. CHROMIUM
// overrides it.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// startBrowser starts a headless Chromium with a fresh profile and returns a
// chromedp context for one tab; both end with the test. Without Chromium the
// test fails on CI (CI is set) and is skipped elsewhere.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Chromium at %s (CI is set, so this is a failure): %v", path, err)
		}
		t.Skipf("no Chromium at %s; install Debian's chromium or set CHROMIUM", path)
	}
	// Not t.TempDir: Chromium's helper processes may still write to the
	// profile for a moment after the browser exits.
	profile, err := os.MkdirTemp("", "chromium-profile-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		// The flags this machine needs (see /work/shared/reference/sse-spec.md §3).
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("profile %s not removed", profile)
	})
	if err := chromedp.Run(ctx); err != nil { // starts the browser
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// TestBrowserDashboard opens the dashboard in headless Chromium: the table
// fills from the snapshot, a value changes in the DOM, the point filter
// narrows and widens the table without a new stream (the same sse.js stream,
// no new request to /events; a point that hardly changes fills in at once),
// and after the server drops the stream the connection indicator goes back
// to live, resumed with Last-Event-ID, values keep changing and the filter
// still works. It saves a screenshot in the test's temporary directory, in
// $SCREENSHOT_DIR if set, or in screenshot.png (for the README) when
// UPDATE_SCREENSHOT=1.
func TestBrowserDashboard(t *testing.T) {
	ctx := startBrowser(t)
	sim := startSimulator(t, 100*time.Millisecond)
	s := startStack(t, sim.Endpoint(), ReaderConfig{Interval: 50 * time.Millisecond}, DashboardConfig{})

	run := func(wait time.Duration, what string, actions ...chromedp.Action) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if err := chromedp.Run(c, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	poll := func(wait time.Duration, what, cond string) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		err := chromedp.Run(c, chromedp.Poll(cond, nil, chromedp.WithPollingInterval(50*time.Millisecond)))
		if err == nil {
			return
		}
		// Say what the page showed, so a timeout can be told from a wrong page.
		var state string
		sc, scancel := context.WithTimeout(ctx, 5*time.Second)
		defer scancel()
		if serr := chromedp.Run(sc, chromedp.Evaluate(`JSON.stringify({body: {...document.body.dataset},
			rows: [...document.querySelectorAll("#rows tr[data-point]")].map((r) => r.dataset.point),
			chips: document.querySelectorAll("#chips .chip").length})`, &state)); serr != nil {
			state = "(page state unreadable: " + serr.Error() + ")"
		}
		t.Fatalf("%s: %v after %v; page: %s; hub: %+v", what, err, wait, state, s.dash.hub.Stats())
	}
	text := func(sel string) string {
		t.Helper()
		var s string
		run(5*time.Second, "read "+sel, chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).textContent`, sel), &s))
		return s
	}
	const tempCell = `tr[data-point="ns=1;s=Boiler.Temperature"] td.value`
	changes := func(what string) {
		t.Helper()
		before := text(tempCell)
		poll(10*time.Second, what, fmt.Sprintf(`document.querySelector(%q).textContent !== %q`, tempCell, before))
	}

	var browseOrder []string
	for _, name := range simPointNames {
		browseOrder = append(browseOrder, "ns=1;s="+name)
	}
	inOrder := fmt.Sprintf(`[...document.querySelectorAll("#rows tr[data-point]")].map((r) => r.dataset.point).join() === %q`, strings.Join(browseOrder, ","))

	run(10*time.Second, "open the page", chromedp.EmulateViewport(1000, 600), chromedp.Navigate(s.srv.URL+"/"))
	poll(startWait, "live stream, OPC UA connected, every point in the table in browse order, every chip", fmt.Sprintf(
		`document.body.dataset.stream === "live" && document.body.dataset.opcua === "connected" &&
		 document.querySelectorAll("#chips .chip").length === %d && %s`, len(simPointNames), inOrder))
	changes("a value change in the DOM")

	// The filter: the chips post the watched points to /api/watch, and the
	// page's one stream stays open. Each step waits for the server's
	// watch event (data-watch-gen) and for the table.
	run(5*time.Second, "note the stream", chromedp.Evaluate(`window.firstSource = window.dashboard.source; true`, nil))
	conns := s.events.Load()
	sameStream := func(what string) {
		t.Helper()
		var same bool
		run(5*time.Second, "check the stream", chromedp.Evaluate(
			`window.dashboard.source === window.firstSource && window.firstSource.state === "open"`, &same))
		if n := s.events.Load(); !same || n != conns {
			t.Fatalf("%s: the page opened a new stream (same stream: %v; %d requests to /events, want %d)", what, same, n, conns)
		}
		if n := s.dash.hub.Stats().Streams; n != 1 {
			t.Fatalf("%s: %d streams open", what, n)
		}
	}
	rows := func(n int, gen int, extra string) string {
		return fmt.Sprintf(`document.querySelectorAll("#rows tr[data-point]").length === %d &&
			Number(document.body.dataset.watchGen) >= %d && document.body.dataset.stream === "live"%s`, n, gen, extra)
	}
	const statusRow = `tr[data-point="ns=1;s=Line1.Status"]`
	click := func(what, sel string) { t.Helper(); run(5*time.Second, what, chromedp.Click(sel, chromedp.ByQuery)) }

	click("filter to one point", `#chips .chip[data-point="ns=1;s=Boiler.Temperature"]`)
	poll(10*time.Second, "a table of the temperature only", rows(1, 1, ` && document.querySelector(`+"`"+tempCell+"`"+`) !== null && location.search.includes("points=")`))
	changes("a value change in the filtered table")
	sameStream("one point")
	// The line's status changes every 40 s or so: its row fills from the
	// current value the server sends when the point is watched.
	click("watch a second point", `#chips .chip[data-point="ns=1;s=Line1.Status"]`)
	poll(10*time.Second, "the line's status in the table", rows(2, 2, ` && /^(Running|Changeover)$/.test(document.querySelector(`+"`"+statusRow+` td.value`+"`"+`).textContent)`))
	sameStream("two points")
	click("every point", `#filter-all`)
	poll(10*time.Second, "every point again", rows(len(simPointNames), 3, ""))
	sameStream("every point")

	// The server drops the page's stream; the browser reconnects by itself.
	var id string
	run(5*time.Second, "read the client ID", chromedp.Evaluate(`window.dashboard.clientId`, &id))
	replays := s.dash.hub.Stats().Replays
	if n := s.dash.hub.Disconnect(id); n != 1 {
		t.Fatalf("Disconnect(%q) ended %d streams, want 1", id, n)
	}
	poll(10*time.Second, "the indicator back to live after the drop",
		`Number(document.body.dataset.drops) >= 1 && document.body.dataset.stream === "live"`)
	if got := s.dash.hub.Stats().Replays; got <= replays {
		t.Errorf("the browser reconnected without resuming (replays %d → %d)", replays, got)
	}
	changes("a value change after the reconnect")

	// The resumed stream (the same sse.js stream, whose EventSource
	// reconnected by itself) follows filter changes too.
	conns = s.events.Load()
	click("filter to the pressure", `#chips .chip[data-point="ns=1;s=Boiler.Pressure"]`)
	poll(10*time.Second, "a table of the pressure only", rows(1, 4, ` && document.querySelector('tr[data-point="ns=1;s=Boiler.Pressure"]') !== null`))
	sameStream("after the reconnect, one point")
	click("every point after the reconnect", `#filter-all`)
	poll(10*time.Second, "every point after the reconnect, in browse order", rows(len(simPointNames), 5, " && "+inOrder))
	sameStream("after the reconnect, every point")

	if os.Getenv("UPDATE_SCREENSHOT") != "" {
		// Let the trend lines fill before the picture for the README.
		poll(40*time.Second, "full trend lines", `Date.now() - window.dashboard.points.get("ns=1;s=Boiler.Temperature").trend[0].t >= 29000`)
	}
	var png []byte
	run(10*time.Second, "screenshot", chromedp.CaptureScreenshot(&png))
	out := filepath.Join(t.TempDir(), "dashboard.png")
	if os.Getenv("UPDATE_SCREENSHOT") != "" {
		out = "screenshot.png"
	}
	if dir := os.Getenv("SCREENSHOT_DIR"); dir != "" { // e.g. a CI artifact folder
		out = filepath.Join(dir, "dashboard.png")
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))
}
