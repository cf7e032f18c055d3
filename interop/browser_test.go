package interop

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// pageHTML is the browser's test page. It opens the EventSource named by
// its src parameter (same origin) and keeps what the page's handlers see:
// window.messages (onmessage), window.named (the "sse-reset" and
// "sse-position" listeners) and window.states (onopen, onerror). Each
// record also goes, in arrival order, to window.received, which the test
// reads.
const pageHTML = `<!doctype html>
<meta charset="utf-8">
<title>sse interop</title>
<script>
window.received = [];
window.messages = [];
window.named = [];
window.states = [];
function keep(list, rec) {
  rec.ts = Date.now();
  list.push(rec);
  window.received.push(rec);
}
const src = new URLSearchParams(location.search).get("src");
const es = new EventSource(src);
window.source = es;
es.onopen = () => keep(window.states, {kind: "open"});
es.onerror = () => keep(window.states, {kind: "error", error: "readyState " + es.readyState});
es.onmessage = (e) => keep(window.messages, {kind: "message", type: e.type, id: e.lastEventId, data: e.data});
for (const name of ["sse-reset", "sse-position"]) {
  es.addEventListener(name, (e) => keep(window.named, {kind: "named", type: e.type, id: e.lastEventId, data: e.data}));
}
</script>
`

// servePage serves pageHTML.
func servePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(pageHTML))
}

// chromiumBinary is the Chromium to drive: $CHROMIUM, or Debian's
// /usr/bin/chromium (test.sh installs it).
func chromiumBinary() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// launchChromium starts one headless Chromium, with a profile of its own,
// for the whole test, and returns the browser's chromedp context; tabs are
// opened from it. On CI (see onCI) a missing Chromium fails the test;
// elsewhere it skips, saying why. extra adds to the flags below.
func launchChromium(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	bin := chromiumBinary()
	if _, err := os.Stat(bin); err != nil {
		if onCI() {
			t.Fatalf("Chromium not found at %s, and on CI (CI is set) that is a failure: %v", bin, err)
		}
		t.Skipf("Chromium not found at %s (install Debian's chromium, or point CHROMIUM at one): %v", bin, err)
	}
	// A directory we remove ourselves, after the browser is gone: its
	// helper processes can still be writing there when t.TempDir's own
	// removal would run.
	dir, err := os.MkdirTemp("", "interop-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(dir),
		// What this machine's Chromium needs to run headless as root in a
		// container, and what keeps it off the network.
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Tabs of parallel scenarios are background tabs: keep their
		// timers (the EventSource's reconnect delay) running at full speed.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
	}
	alloc, stopAlloc := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	browser, stopBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		stopBrowser()
		stopAlloc() // returns once the browser process has exited
		for range 50 {
			if os.RemoveAll(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("could not remove the Chromium profile %s", dir)
	})
	if err := chromedp.Run(browser); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return browser
}

// chromiumVersion asks the running browser for its product version
// (navigator.userAgent is reduced to the major version).
func chromiumVersion(t *testing.T, browser context.Context) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(browser, 10*time.Second)
	defer cancel()
	var product string
	err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		_, product, _, _, _, err = cdpbrowser.GetVersion().Do(ctx)
		return err
	}))
	if err != nil {
		t.Logf("asking Chromium its version: %v", err)
		return "unknown"
	}
	if _, v, ok := strings.Cut(product, "/"); ok {
		return v
	}
	return product
}

// openChromiumTab opens a tab on the test page for streamURL and copies
// what the page records into a recorder, polling every 20 ms. The tab is
// closed when the test ends.
func openChromiumTab(t *testing.T, browser context.Context, s *testServer, streamURL string) *recorder {
	t.Helper()
	u, err := url.Parse(streamURL)
	if err != nil {
		t.Fatal(err)
	}
	tab, closeTab := chromedp.NewContext(browser)
	// The first Run on a chromedp context opens its tab, which lives as
	// long as the context given to that Run: give it tab itself, not the
	// navigation's context with a timeout.
	if err := chromedp.Run(tab); err != nil {
		closeTab()
		t.Fatalf("opening a tab: %v", err)
	}
	page := s.srv.URL + "/page?src=" + url.QueryEscape(u.RequestURI())
	nav, cancelNav := context.WithTimeout(tab, 15*time.Second)
	defer cancelNav()
	if err := chromedp.Run(nav, chromedp.Navigate(page)); err != nil {
		closeTab()
		t.Fatalf("opening the test page %s: %v", page, err)
	}
	rec := newRecorder()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		seen := 0
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			var raw string
			ctx, cancel := context.WithTimeout(tab, 5*time.Second)
			err := chromedp.Run(ctx, chromedp.Evaluate(`JSON.stringify(window.received.slice(`+strconv.Itoa(seen)+`))`, &raw))
			cancel()
			if err != nil {
				select {
				case <-done:
					return
				default:
				}
				rec.add(record{Kind: "error", Error: "reading the page: " + err.Error()})
				continue
			}
			var recs []record
			if err := json.Unmarshal([]byte(raw), &recs); err != nil {
				rec.add(record{Kind: "error", Error: "page records: " + err.Error()})
				continue
			}
			for _, r := range recs {
				rec.add(r)
			}
			seen += len(recs)
		}
	}()
	t.Cleanup(func() {
		close(done)
		<-stopped
		closeTab()
	})
	return rec
}
