package interop

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ldes "github.com/launchdarkly/eventsource"
	r3 "github.com/r3labs/sse/v2"
	tmax "github.com/tmaxmax/go-sse"
	"gopkg.in/cenkalti/backoff.v1"

	"github.com/ssehub/sse"
)

// client is one SSE client implementation under test.
type client struct {
	name    string // subtest name
	version string // exact version, for RESULTS.md

	// single is true for clients that hand every dispatched block, named
	// or not, to one handler; false for EventSource-style clients whose
	// onmessage sees only unnamed events and whose named events reach
	// listeners for that name.
	single bool

	// hidesPosition is true for a client that never hands the hub's
	// sse-position to the application (this repository's Client).
	hidesPosition bool

	// prepare runs once, before the client's scenarios: it finds or starts
	// what the client needs (fails on CI, skips elsewhere) and returns how
	// to open one connection, recording what the client reports. The
	// connection is closed when the scenario's test ends.
	// note says how the test drives the client, where that is more than
	// opening it, for RESULTS.md.
	note string

	// The version it returns, if not "", replaces the one above.
	prepare func(t *testing.T) (open opener, version string)
}

// opener opens one connection of a client to streamURL.
type opener func(t *testing.T, s *testServer, streamURL string) *recorder

// Pinned versions. The Go ones are also in go.mod, the npm ones in
// node/package.json and node/package-lock.json.
const (
	npmEventSourceVersion   = "4.1.1"
	fetchEventSourceVersion = "2.0.1"
	r3labsVersion           = "v2.10.0"
	tmaxmaxVersion          = "v0.12.0"
	launchDarklyVersion     = "v1.11.0"
	launchDarklyModule      = "github.com/launchdarkly/eventsource"
)

// clients lists every client under test.
func clients() []client {
	return []client{
		{name: "chromium", version: "Chromium (version unknown)", prepare: prepareChromium,
			note: "headless, driven by chromedp; the page (same origin) opens `new EventSource(url)`."},
		{name: "npm-eventsource", version: "eventsource " + npmEventSourceVersion,
			note:    "Node 20, node/eventsource.mjs.",
			prepare: prepareNode("eventsource.mjs")},
		{name: "fetch-event-source", version: "@microsoft/fetch-event-source " + fetchEventSourceVersion, single: true,
			note: "Node 20, node/fetch-event-source.mjs: `window` is `globalThis`, `openWhenHidden: true`, Node's " +
				"`fetch`, and `onclose` throws so that the library reconnects when the server ends the stream.",
			prepare: prepareNode("fetch-event-source.mjs")},
		{name: "r3labs", version: "github.com/r3labs/sse/v2 " + r3labsVersion, single: true,
			note: "`SubscribeRawWithContext` returns nil when the server ends a stream cleanly (no reconnect: " +
				"r3labs/sse#76, #147), so the test calls it again on the same `Client`, which keeps its `LastEventID`; " +
				"its own backoff (constant 100 ms here) covers only errors.",
			prepare: func(*testing.T) (opener, string) { return openR3labs, "" }},
		{name: "tmaxmax", version: "github.com/tmaxmax/go-sse " + tmaxmaxVersion, single: true,
			note:    "`Connection.Connect` with `SubscribeToAll`; it reconnects by itself.",
			prepare: func(*testing.T) (opener, string) { return openTmaxmax, "" }},
		{name: "launchdarkly", version: launchDarklyModule + " " + launchDarklyVersion, single: true,
			note: "`SubscribeWithURL`, reading `Stream.Events`, errors to a handler that lets it retry; it reconnects " +
				"by itself. v1.11.0 is published as github.com/launchdarkly/eventsource (the proxy has no " +
				"gopkg.in/launchdarkly/eventsource.v1 at that version).",
			prepare: func(*testing.T) (opener, string) { return openLaunchDarkly, "" }},
		{name: "sse-client", version: "github.com/ssehub/sse Client (this repository)", single: true, hidesPosition: true,
			note: "`Client.Connect` ranged until the test ends, `Retry` 100 ms; a `*ResetError` is recorded as an " +
				"sse-reset event with its reason as data, every other error ends the range.",
			prepare: func(*testing.T) (opener, string) { return openSSEClient, "" }},
	}
}

// prepareChromium starts the browser the chromium scenarios share.
func prepareChromium(t *testing.T) (opener, string) {
	browser := launchChromium(t)
	return func(t *testing.T, s *testServer, streamURL string) *recorder {
		return openChromiumTab(t, browser, s, streamURL)
	}, "Chromium " + chromiumVersion(t, browser)
}

// prepareNode checks that Node and the npm clients (node/node_modules,
// installed by test.sh with npm ci) are there, and returns a starter that
// runs node/<script> against a stream URL. Missing either fails on CI and
// skips elsewhere, saying why.
func prepareNode(script string) func(t *testing.T) (opener, string) {
	return func(t *testing.T) (opener, string) {
		t.Helper()
		missing := func(format string, args ...any) {
			t.Helper()
			if onCI() {
				t.Fatalf("on CI (CI is set) this is a failure: "+format, args...)
			}
			t.Skipf(format, args...)
		}
		nodeBin, err := exec.LookPath("node")
		if err != nil {
			missing("no node in PATH (Node 20 runs the npm clients): %v", err)
		}
		dir, err := filepath.Abs("node")
		if err != nil {
			t.Fatal(err)
		}
		for _, pkg := range []string{"eventsource", "@microsoft/fetch-event-source"} {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
				missing("npm package %s not installed (run: npm ci --prefix interop/node): %v", pkg, err)
			}
		}
		return func(t *testing.T, s *testServer, streamURL string) *recorder {
			return runNode(t, nodeBin, dir, script, streamURL)
		}, ""
	}
}

// runNode runs one Node client script and feeds its JSON lines to a
// recorder. The process is killed when the test ends; what it wrote to
// stderr is logged.
func runNode(t *testing.T, nodeBin, dir, script, streamURL string) *recorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, nodeBin, script, streamURL)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting node %s: %v", script, err)
	}
	rec := newRecorder()
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if err := rec.addJSON(sc.Bytes()); err != nil {
				rec.add(record{Kind: "error", Error: err.Error()})
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-read
		_ = cmd.Wait()
		if s := strings.TrimSpace(stderr.String()); s != "" {
			t.Logf("node %s stderr: %s", script, s)
		}
	})
	return rec
}

// openR3labs subscribes with r3labs/sse. Its Subscribe returns nil when
// the server ends a stream cleanly (a known limitation: r3labs/sse#76,
// #147), so the loop here subscribes again with the same Client, which
// keeps its LastEventID; transport errors are retried by the library's own
// backoff, set to the hub's 100 ms retry.
func openR3labs(t *testing.T, _ *testServer, streamURL string) *recorder {
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	c := r3.NewClient(streamURL)
	c.ReconnectStrategy = backoff.WithContext(backoff.NewConstantBackOff(retry), ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			rec.add(record{Kind: "open"}) // a (re)subscription starts
			err := c.SubscribeRawWithContext(ctx, func(m *r3.Event) {
				typ := string(m.Event)
				if typ == "" {
					typ = "message"
				}
				last, _ := c.LastEventID.Load().([]byte)
				l := string(last)
				rec.add(record{Kind: "message", Type: typ, ID: string(m.ID), Data: string(m.Data), LastID: &l})
			})
			if ctx.Err() != nil {
				return
			}
			msg := "Subscribe returned nil (stream ended); subscribing again"
			if err != nil {
				msg = "Subscribe: " + err.Error()
			}
			rec.add(record{Kind: "error", Error: msg})
			select {
			case <-ctx.Done():
			case <-time.After(retry):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return rec
}

// openTmaxmax connects with tmaxmax/go-sse, whose Connection reconnects by
// itself (backoff starting at the hub's 100 ms, then the server's retry)
// and sends its last event ID.
func openTmaxmax(t *testing.T, _ *testServer, streamURL string) *recorder {
	t.Helper()
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, streamURL, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cl := &tmax.Client{
		Backoff: tmax.Backoff{InitialInterval: retry, Multiplier: 1, Jitter: -1},
		OnRetry: func(err error, _ time.Duration) { rec.add(record{Kind: "error", Error: err.Error()}) },
	}
	conn := cl.NewConnection(req)
	conn.SubscribeToAll(func(e tmax.Event) {
		typ := e.Type
		if typ == "" {
			typ = "message"
		}
		last := e.LastEventID
		rec.add(record{Kind: "message", Type: typ, ID: e.LastEventID, Data: e.Data, LastID: &last})
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := conn.Connect(); err != nil && !errors.Is(err, context.Canceled) {
			rec.add(record{Kind: "error", Error: "Connect: " + err.Error()})
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return rec
}

// openLaunchDarkly subscribes with launchdarkly/eventsource, whose Stream
// reconnects by itself with its last event ID. Errors go to a handler
// that lets it retry (its Errors channel would otherwise need a reader).
func openLaunchDarkly(t *testing.T, _ *testServer, streamURL string) *recorder {
	t.Helper()
	rec := newRecorder()
	stream, err := ldes.SubscribeWithURL(streamURL,
		ldes.StreamOptionInitialRetry(retry),
		ldes.StreamOptionErrorHandler(func(err error) ldes.StreamErrorHandlerResult {
			rec.add(record{Kind: "error", Error: err.Error()})
			return ldes.StreamErrorHandlerResult{}
		}))
	if err != nil {
		t.Fatalf("launchdarkly Subscribe: %v", err)
	}
	rec.add(record{Kind: "open"})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range stream.Events {
			typ := ev.Event()
			if typ == "" {
				typ = "message"
			}
			var last *string
			if wl, ok := ev.(ldes.EventWithLastID); ok {
				l := wl.LastEventID()
				last = &l
			}
			rec.add(record{Kind: "message", Type: typ, ID: ev.Id(), Data: ev.Data(), LastID: last})
		}
	}()
	t.Cleanup(func() {
		stream.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Logf("launchdarkly: Events not closed 5 s after Close")
		}
	})
	return rec
}

// openSSEClient follows the stream with this repository's Client, which
// reconnects by itself. It reports a hub's reset as a *ResetError, recorded
// here as the sse-reset event the scenarios count.
func openSSEClient(t *testing.T, _ *testServer, streamURL string) *recorder {
	t.Helper()
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	c := &sse.Client{
		Retry:   retry,
		OnRetry: func(err error, _ time.Duration) { rec.add(record{Kind: "error", Error: err.Error()}) },
	}
	rec.add(record{Kind: "open"})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range c.Connect(ctx, streamURL) {
			var reset *sse.ResetError
			if errors.As(err, &reset) {
				rec.add(record{Kind: "message", Type: sse.ResetEvent, Data: reset.Reason})
				continue
			}
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					rec.add(record{Kind: "error", Error: "Connect: " + err.Error()})
				}
				return
			}
			typ := ev.Type
			if typ == "" {
				typ = "message"
			}
			rec.add(record{Kind: "message", Type: typ, ID: ev.ID, Data: string(ev.Data)})
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return rec
}
