package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
// narrows the table, and after the server drops the stream the connection
// indicator goes back to live, resumed with Last-Event-ID, and values keep
// changing. It saves a screenshot in the test's temporary directory, in
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
		run(wait, what, chromedp.Poll(cond, nil, chromedp.WithPollingInterval(50*time.Millisecond)))
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

	run(10*time.Second, "open the page", chromedp.EmulateViewport(1000, 600), chromedp.Navigate(s.srv.URL+"/"))
	poll(startWait, "live stream, OPC UA connected, every point in the table", fmt.Sprintf(
		`document.body.dataset.stream === "live" && document.body.dataset.opcua === "connected" &&
		 document.querySelectorAll("#rows tr[data-point]").length === %d`, len(simPointNames)))
	changes("a value change in the DOM")

	// The filter: one point, then all again; each reopens the stream.
	run(5*time.Second, "filter to one point", chromedp.Click(`#chips .chip[data-point="ns=1;s=Boiler.Temperature"]`, chromedp.ByQuery))
	poll(10*time.Second, "a table of one point", `document.querySelectorAll("#rows tr[data-point]").length === 1 &&
		location.search.includes("points=") && document.body.dataset.stream === "live"`)
	changes("a value change in the filtered table")
	run(5*time.Second, "filter off", chromedp.Click(`#filter-all`, chromedp.ByQuery))
	poll(10*time.Second, "every point again", fmt.Sprintf(
		`document.querySelectorAll("#rows tr[data-point]").length === %d && document.body.dataset.stream === "live"`, len(simPointNames)))

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
