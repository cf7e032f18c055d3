package interop

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// framingEvent is an event as a page saw it.
type framingEvent struct {
	Type string `json:"type"`
	Data string `json:"data"`
	ID   string `json:"id"`
}

// framingVector is one stream body, written in chunks (each flushed, with
// a pause between them so that the browser reads them apart), with what
// the spec says a browser dispatches and sends as Last-Event-ID when it
// reconnects, and the reconnection time it leaves.
type framingVector struct {
	name   string
	chunks []string
	want   []framingEvent
	resume string // the Last-Event-ID of the reconnect; "" is none
	retry  int    // the reconnection time after the body, ms
}

// bytewise splits s into one chunk per byte.
func bytewise(s string) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i : i+1]
	}
	return out
}

// ev is a framingEvent of type message when typ is "".
func ev(typ, data, id string) framingEvent {
	if typ == "" {
		typ = "message"
	}
	return framingEvent{typ, data, id}
}

// The framing vectors: the rules of /work/shared/reference/sse-spec.md §1
// (P1–P17), the web-platform-tests' format-* streams, and splits of each
// kind of line end, of a byte order mark and of a UTF-8 sequence across
// reads.
var framingVectors = []framingVector{
	{name: "P1 invalid UTF-8", chunks: []string{"data: bad\xffbyte\n\n"}, want: []framingEvent{ev("", "bad\uFFFDbyte", "")}},
	{name: "invalid UTF-8 sequences", chunks: []string{"data: \xF0\x9F\n\ndata: \xE2\x28\xA1\n\ndata: \xED\xA0\x80x\n\ndata: \xC0\xAF\n\n"},
		want: []framingEvent{ev("", "\uFFFD", ""), ev("", "\uFFFD(\uFFFD", ""), ev("", "\uFFFD\uFFFD\uFFFDx", ""), ev("", "\uFFFD\uFFFD", "")}},
	{name: "UTF-8 split across reads", chunks: []string{"data: caf\xC3", "\xA9 \xE2\x82", "\xAC \xF0\x9F\x98", "\x80\n\n"}, want: []framingEvent{ev("", "café € 😀", "")}},
	{name: "P2 BOM only at the start", chunks: []string{"\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\ndata: c\n\n"}, want: []framingEvent{ev("", "a", ""), ev("", "c", "")}},
	{name: "P2 two BOMs", chunks: []string{"\xEF\xBB\xBF\xEF\xBB\xBFdata: 1\n\ndata: 2\n\ndata: 3\n\n"}, want: []framingEvent{ev("", "2", ""), ev("", "3", "")}},
	{name: "BOM split across reads", chunks: []string{"\xEF", "\xBB", "\xBFdata: x\n\n"}, want: []framingEvent{ev("", "x", "")}},
	{name: "P3 CRLF split across reads", chunks: []string{"data: split-a\r", "\ndata: split-b\r\n\r\n"}, want: []framingEvent{ev("", "split-a\nsplit-b", "")}},
	{name: "P3b CR only", chunks: []string{"data: cr\r\r"}, want: []framingEvent{ev("", "cr", "")}},
	{name: "P3b CRLF only", chunks: []string{"data: crlf\r\n\r\n"}, want: []framingEvent{ev("", "crlf", "")}},
	{name: "CR then CR across reads", chunks: []string{"data: a\r", "\rdata: b\n", "\n"}, want: []framingEvent{ev("", "a", ""), ev("", "b", "")}},
	{name: "CR, LF, CR across three reads", chunks: []string{"data: x\r", "\n", "\r\n"}, want: []framingEvent{ev("", "x", "")}},
	{name: "format-newlines", chunks: []string{"data:test\r\ndata\ndata:test\r\n\r\n"}, want: []framingEvent{ev("", "test\n\ntest", "")}},
	{name: "every line end, a byte per read", chunks: bytewise("id: 5\r\ndata: a\r\n\r\ndata: b\r\rdata: c\n\nevent: t\rdata:\r\n\n"),
		want: []framingEvent{ev("", "a", "5"), ev("", "b", "5"), ev("", "c", "5"), ev("t", "", "5")}, resume: "5"},
	{name: "P4 P5 comments", chunks: []string{": keepalive\n\n:\n\ndata: x\n:tail\n\n"}, want: []framingEvent{ev("", "x", "")}},
	{name: "format-comments", chunks: []string{"data:1\r:\x00\n:\r\ndata:2\n:" + strings.Repeat("x", 2049) + "\rdata:3\n:data:fail\r:" + strings.Repeat("x", 2049) + "\ndata:4\n\n"},
		want: []framingEvent{ev("", "1\n2\n3\n4", "")}},
	{name: "P6 one space removed", chunks: []string{"data:no-space\n\ndata:  two\n\ndata:\ttab\n\ndata: a:b:c\n\ndata:: x\n\n"},
		want: []framingEvent{ev("", "no-space", ""), ev("", " two", ""), ev("", "\ttab", ""), ev("", "a:b:c", ""), ev("", ": x", "")}},
	{name: "format-leading-space", chunks: []string{"data:\ttest\rdata \ndata\ndata: test\n\n"}, want: []framingEvent{ev("", "\ttest\n\ntest", "")}},
	{name: "P7 a field without a colon", chunks: []string{"data\n\nevent: t\ndata\n\n"}, want: []framingEvent{ev("", "", ""), ev("t", "", "")}},
	{name: "P8 names compared literally", chunks: []string{"Data: x\n\ndata : y\n\nfoo: z\njustaname\ndata: ok\n\n"}, want: []framingEvent{ev("", "ok", "")}},
	{name: "format-field-parsing", chunks: []string{"data:\x00\ndata:  2\rData:1\ndata\x00:2\ndata:1\r\x00data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n"},
		want: []framingEvent{ev("", "\x00\n 2\n1\n3\n\n4", "")}},
	{name: "format-field-unknown", chunks: []string{"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n"},
		want: []framingEvent{ev("", "test\n\ntest", "")}},
	{name: "P9 data lines and NUL", chunks: []string{"data: first\ndata: second\n\ndata\ndata\n\ndata: nul\x00kept\n\ndata:\x00\n\n"},
		want: []framingEvent{ev("", "first\nsecond", ""), ev("", "\n", ""), ev("", "nul\x00kept", ""), ev("", "\x00", "")}},
	{name: "P10 event type", chunks: []string{"event: custom\ndata: t\n\nevent:\ndata: e\n\nevent: test\nevent: custom\ndata: last wins\n\n"},
		want: []framingEvent{ev("custom", "t", ""), ev("", "e", ""), ev("custom", "last wins", "")}},
	{name: "P14 the type does not leak", chunks: []string{"event: custom\n\ndata: z\n\n"}, want: []framingEvent{ev("", "z", "")}},
	{name: "P11 id persists, NUL ignored, bare id resets", chunks: []string{"id: 42\ndata: a\n\ndata: b\n\nid: x\x00y\ndata: c\n\nid\ndata: d\n\n"},
		want: []framingEvent{ev("", "a", "42"), ev("", "b", "42"), ev("", "c", "42"), ev("", "d", "")}},
	{name: "ids with NUL anywhere", chunks: []string{"id: 7\ndata: a\n\nid: \x00\ndata: b\n\nid: x\x00\ndata: c\n\nid: \x00x\ndata: d\n\nid:  \x00\ndata: e\n\n"},
		want: []framingEvent{ev("", "a", "7"), ev("", "b", "7"), ev("", "c", "7"), ev("", "d", "7"), ev("", "e", "7")}, resume: "7"},
	{name: "id: resets to empty", chunks: []string{"id: 1\ndata: a\n\nid:\ndata: b\n\n"}, want: []framingEvent{ev("", "a", "1"), ev("", "b", "")}},
	{name: "non-ASCII id", chunks: []string{"id: naïve-✓\ndata: x\n\n"}, want: []framingEvent{ev("", "x", "naïve-✓")}, resume: "naïve-✓"},
	{name: "P13 an id-only block moves the resume point", chunks: []string{"id: 1\ndata: one\n\nid: 2\n\n"}, want: []framingEvent{ev("", "one", "1")}, resume: "2"},
	{name: "P15 one trailing LF stripped", chunks: []string{"data\ndata\n\n"}, want: []framingEvent{ev("", "\n", "")}},
	{name: "P17 an unfinished event is discarded", chunks: []string{"id: 3\ndata: ok\n\nid: 4\ndata: partial\n"}, want: []framingEvent{ev("", "ok", "3")}, resume: "3"},
	{name: "P17 an unfinished line is discarded", chunks: []string{"id: 9\ndata: ok\n\ndata: half"}, want: []framingEvent{ev("", "ok", "9")}, resume: "9"},
	{name: "format-data-before-final-empty-line", chunks: []string{"retry:1000\ndata:test1\n\nid:test\ndata:test2"}, want: []framingEvent{ev("", "test1", "")}, retry: 1000},
	{name: "P12 retry with leading zeros", chunks: []string{"retry: 0500\ndata: x\n\n"}, want: []framingEvent{ev("", "x", "")}, retry: 500},
	{name: "P12 retry not all digits", chunks: []string{"retry: 700\ndata: x\n\nretry: 1000x\nretry: -1\nretry:  1\nretry: 1.5\ndata: y\n\n"},
		want: []framingEvent{ev("", "x", ""), ev("", "y", "")}, retry: 700},
	{name: "P12 retry in a block never dispatched", chunks: []string{"data: x\n\nretry: 700\ndata: partial"}, want: []framingEvent{ev("", "x", "")}, retry: 700},
	{name: "P12b a bare retry sets the default back", chunks: []string{"retry: 500\nretry\ndata: x\n\n"}, want: []framingEvent{ev("", "x", "")}, retry: 3000},
	{name: "an empty retry sets the default back", chunks: []string{"retry: 500\nretry:\ndata: x\n\n"}, want: []framingEvent{ev("", "x", "")}, retry: 3000},
	{name: "event-data (message2)", chunks: []string{"data:msg\ndata: msg\n\n:\n\nfalsefield:msg\n\nData:data\n\ndata\n\ndata:end\n\n"},
		want: []framingEvent{ev("", "msg\nmsg", ""), ev("", "", ""), ev("", "end", "")}},
	{name: "the hub's own frames", chunks: []string{"retry: 100\n:\nid: e-1\ndata: a\n\n:\n", ":\nid: e-2\nevent: t\ndata: b\ndata: c\n\n"},
		want: []framingEvent{ev("", "a", "e-1"), ev("t", "b\nc", "e-2")}, resume: "e-2", retry: 100},
}

// framingTypes are the event types the pages listen for.
var framingTypes = []string{"message", "custom", "t", "test"}

// framingPageJS defines window.runFraming(list, round), which runs the
// vectors of the list twice each, at once: through a bare EventSource, and
// through sse.js's fetch transport. Each gets the vector's body, reconnects
// (with the Last-Event-ID the body left), is answered 204 and stops.
// window.framing[i] is then {native, module}: the events each saw, the
// module's reconnection time and the sizes of its reads of the body;
// window.framingDone is set when all are there.
const framingPageJS = `
const types = %s;
// The sizes of the reads sse.js makes of each body: the page's fetch, wrapped.
const reads = {};
const realFetch = window.fetch;
window.fetch = async (url, init) => {
  const res = await realFetch(url, init);
  if (res.status !== 200) return res;
  const sizes = (reads[new URL(url).search] ??= []);
  const count = new TransformStream({ transform(chunk, c) { sizes.push(chunk.length); c.enqueue(chunk); } });
  return new Response(res.body.pipeThrough(count), { status: res.status, headers: res.headers });
};
const one = (i, kind, round) => new Promise((done) => {
  const got = [];
  const url = location.origin + "/vector?i=" + i + "&kind=" + kind + "&round=" + round;
  const keep = (e) => got.push({ type: e.type, data: e.data, id: e.lastEventId });
  if (kind === "native") {
    const es = new EventSource(url);
    for (const t of types) es.addEventListener(t, keep);
    es.onerror = () => { if (es.readyState === EventSource.CLOSED) done({ events: got }); };
    return;
  }
  const s = sse.connect(url, { transport: "fetch", onStop: (err) => {
    done({ events: got, retry: s.retry, stop: err.status, reads: reads[new URL(url).search] });
  } });
  for (const t of types) s.on(t, keep);
});
window.runFraming = (list, round) => {
  window.framing = {};
  window.framingDone = false;
  Promise.all(list.map(async (i) => {
    const [native, module] = await Promise.all([one(i, "native", round), one(i, "module", round)]);
    framing[i] = { native, module };
  })).then(() => { window.framingDone = true; });
};
`

// framingResult is what framingPageJS leaves for a vector.
type framingResult struct {
	Native struct {
		Events []framingEvent `json:"events"`
	} `json:"native"`
	Module struct {
		Events []framingEvent `json:"events"`
		Retry  int            `json:"retry"`
		Stop   int            `json:"stop"`
		Reads  []int          `json:"reads"`
	} `json:"module"`
}

// reconnect is the second request of a vector's page.
type reconnect struct {
	has   bool
	id    string
	after time.Duration // since the first request's body ended
}

// sse.js's fetch transport decodes every framing case of the WHATWG spec as
// Chromium's own EventSource does, side by side in the same browser: each
// vector's bytes, in chunks flushed apart (line ends, a BOM and UTF-8
// sequences split across reads), give the same events (type, data,
// lastEventId) to both, both reconnect with the same Last-Event-ID (or
// none), and the module keeps the reconnection time the spec says. The
// page counts the reads sse.js makes of each body, and a vector whose
// chunks arrived merged runs again. Over HTTP/2, so that the 80 streams
// run at once (HTTP/1.1 allows a page 6).
func TestModuleFramingMatchesEventSource(t *testing.T) {
	var mu sync.Mutex
	served := map[string]int{}       // "i/kind/round" → requests
	ended := map[string]time.Time{}  // "i/kind/round" → when its body ended
	second := map[string]reconnect{} // "i/kind/round" → its second request
	reconnects := func(i, round int) (native, module reconnect) {
		mu.Lock()
		defer mu.Unlock()
		return second[fmt.Sprintf("%d/native/%d", i, round)], second[fmt.Sprintf("%d/module/%d", i, round)]
	}
	mux := http.NewServeMux()
	serveModule(mux)
	mux.HandleFunc("/vector", func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(r.URL.Query().Get("i"))
		if err != nil || i < 0 || i >= len(framingVectors) {
			http.Error(w, "no such vector", http.StatusNotFound)
			return
		}
		key := fmt.Sprintf("%d/%s/%s", i, r.URL.Query().Get("kind"), r.URL.Query().Get("round"))
		mu.Lock()
		served[key]++
		n := served[key]
		if n == 2 {
			id, has := r.Header["Last-Event-Id"]
			rc := reconnect{has: has, after: time.Since(ended[key])}
			if has {
				rc.id = id[0]
			}
			second[key] = rc
		}
		mu.Unlock()
		if n > 1 {
			w.WriteHeader(http.StatusNoContent) // stops both
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		rc := http.NewResponseController(w)
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		// Pauses long enough for the page to read each chunk apart, once
		// the 80 streams have started.
		time.Sleep(300 * time.Millisecond)
		for _, c := range framingVectors[i].chunks {
			time.Sleep(30 * time.Millisecond)
			_, _ = w.Write([]byte(c))
			_ = rc.Flush()
		}
		time.Sleep(15 * time.Millisecond)
		mu.Lock()
		ended[key] = time.Now()
		mu.Unlock()
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	browser := launchChromium(t, chromedp.Flag("ignore-certificate-errors", true))
	page := openModulePage(t, browser, srv.URL)
	types := `["` + strings.Join(framingTypes, `","`) + `"]`
	page.eval(fmt.Sprintf(framingPageJS, types), nil)

	// Every vector runs; those whose chunks sse.js read merged (the page
	// was busy: the case they split was not tested) run again, up to three
	// times. Every run's events are checked.
	list := make([]int, len(framingVectors))
	for i := range list {
		list[i] = i
	}
	for round := 0; len(list) > 0; round++ {
		if round == 3 {
			for _, i := range list {
				t.Errorf("%s: sse.js never read the body in the pieces it was written in", framingVectors[i].name)
			}
			break
		}
		js, _ := json.Marshal(list)
		page.eval(fmt.Sprintf("runFraming(%s, %d);", js, round), nil)
		page.waitFor("every vector through both", "window.framingDone", 30*time.Second)
		var results map[int]framingResult
		page.eval("return window.framing;", &results)
		var again []int
		for _, i := range list {
			nrc, mrc := reconnects(i, round)
			if !checkFraming(t, framingVectors[i], results[i], nrc, mrc) {
				again = append(again, i)
			}
		}
		list = again
	}
}

// checkFraming checks one vector's run and reports whether sse.js read the
// body in the chunks it was written in.
func checkFraming(t *testing.T, v framingVector, res framingResult, nrc, mrc reconnect) bool {
	t.Helper()
	native, module := res.Native.Events, res.Module.Events
	if !reflect.DeepEqual(module, native) {
		t.Errorf("%s: sse.js dispatched\n\t%q\nChromium's EventSource\n\t%q", v.name, module, native)
	} else if !reflect.DeepEqual(native, v.want) {
		// Both agree, on something else than the spec: the vector is wrong.
		t.Errorf("%s: both dispatched\n\t%q\nthe spec says\n\t%q", v.name, native, v.want)
	}
	if mrc.has != nrc.has || mrc.id != nrc.id {
		t.Errorf("%s: sse.js reconnected with Last-Event-ID %q (sent: %v), the EventSource with %q (sent: %v)", v.name, mrc.id, mrc.has, nrc.id, nrc.has)
	} else if nrc.has != (v.resume != "") || nrc.id != v.resume {
		t.Errorf("%s: both reconnected with Last-Event-ID %q (sent: %v), the spec says %q", v.name, nrc.id, nrc.has, v.resume)
	}
	wantRetry := v.retry
	if wantRetry == 0 {
		wantRetry = 3000
	}
	if res.Module.Retry != wantRetry {
		t.Errorf("%s: sse.js's reconnection time %d ms, want %d", v.name, res.Module.Retry, wantRetry)
	}
	var sizes []int
	for _, c := range v.chunks {
		sizes = append(sizes, len(c))
	}
	if res.Module.Stop != http.StatusNoContent {
		t.Errorf("%s: sse.js stopped with status %d, want 204", v.name, res.Module.Stop)
	}
	// The EventSource's reconnection time is not visible to the page;
	// its delay is logged, not checked (no wall-clock asserts).
	t.Logf("%-48s %d events; reconnected after %4d ms (EventSource), %4d ms (sse.js, retry %d)",
		v.name, len(native), nrc.after.Milliseconds(), mrc.after.Milliseconds(), res.Module.Retry)
	if !reflect.DeepEqual(res.Module.Reads, sizes) {
		t.Logf("%s: sse.js read the body in pieces of %v bytes, not as written (%v): again", v.name, res.Module.Reads, sizes)
		return false
	}
	return true
}
