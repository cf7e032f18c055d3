package interop

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ssehub/sse"
)

// refreshPageHTML is the README's page-side pattern for a token in the
// URL: when the hub ends the stream at the token's expiry, the browser's
// own reconnect (same URL, the old token) is answered 401 and the
// EventSource closes; the page then gets a fresh token and opens a new
// EventSource that carries its last id in the query (Config.LastEventIDParam).
const refreshPageHTML = `<!doctype html>
<meta charset="utf-8">
<title>token refresh</title>
<script>
window.got = [];
window.opened = 0;
let lastId = "";
async function open() {
  const token = await (await fetch("/token")).text();
  const q = new URLSearchParams({ token });
  if (lastId) q.set("lastEventID", lastId);
  const es = new EventSource("/sse?" + q);
  window.opened++;
  es.onmessage = (e) => { lastId = e.lastEventId; window.got.push(e.data); };
  es.addEventListener("sse-position", (e) => { lastId = e.lastEventId; });
  es.addEventListener("sse-reset", (e) => { window.got.push("reset:" + e.data); });
  es.onerror = () => {
    if (es.readyState !== EventSource.CLOSED) return; // the browser retries by itself
    open(); // the hub answered 401: the token expired
  };
}
open();
</script>
`

// A page whose token is in the URL and expires every 700 ms follows a
// stream of 150 events published over about 4 s, through several expiries,
// 401s and new EventSources, and gets every event once, in order, with no
// reset: the hub ends each stream at its token's expiry, refuses the old
// token, and resumes the new EventSource from the id in its query.
func TestChromiumTokenRefresh(t *testing.T) {
	var mu sync.Mutex
	tokens := map[string]time.Time{} // token → expiry
	hub, err := sse.NewHub(sse.Config{
		Heartbeat:        heartbeat,
		Retry:            retry,
		LastEventIDParam: "lastEventID",
		Authenticate: func(r *http.Request) (sse.Credential, error) {
			mu.Lock()
			defer mu.Unlock()
			exp, ok := tokens[r.URL.Query().Get("token")]
			if !ok {
				return sse.Credential{}, errors.New("unknown token")
			}
			return sse.Credential{ClientID: "ann", Expires: exp}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/sse", hub)
	mux.HandleFunc("/token", func(w http.ResponseWriter, _ *http.Request) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		tok := hex.EncodeToString(b[:])
		mu.Lock()
		tokens[tok] = time.Now().Add(700 * time.Millisecond)
		mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(tok))
	})
	mux.HandleFunc("/page", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(refreshPageHTML))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hub.Shutdown(ctx)
		srv.Close()
	})

	browser := launchChromium(t)
	tab, closeTab := chromedp.NewContext(browser)
	defer closeTab()
	if err := chromedp.Run(tab); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	nav, cancelNav := context.WithTimeout(tab, 15*time.Second)
	defer cancelNav()
	if err := chromedp.Run(nav, chromedp.Navigate(srv.URL+"/page")); err != nil {
		t.Fatalf("opening the page: %v", err)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("the page's stream", func() bool { return hub.Stats().Streams == 1 })

	const n = 150
	for i := range n {
		if _, err := hub.Send("ann", sse.Event{Data: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	var got []string
	var opened int
	read := func() {
		var raw string
		ctx, cancel := context.WithTimeout(tab, 5*time.Second)
		defer cancel()
		if err := chromedp.Run(ctx,
			chromedp.Evaluate(`JSON.stringify(window.got)`, &raw),
			chromedp.Evaluate(`window.opened`, &opened),
		); err != nil {
			t.Fatalf("reading the page: %v", err)
		}
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("every event on the page", func() bool { read(); return len(got) >= n })
	time.Sleep(300 * time.Millisecond) // anything extra would show now
	read()
	for i, d := range got {
		if d != strconv.Itoa(i) {
			t.Fatalf("the page got %v: at %d %q, want %q (no loss, no repeat, no reset)", got, i, d, strconv.Itoa(i))
		}
	}
	if len(got) != n {
		t.Fatalf("the page got %d events, want %d", len(got), n)
	}
	st := hub.Stats()
	if st.Expired < 3 || opened < 4 {
		t.Fatalf("%d streams ended at expiry and the page opened %d EventSources: the test did not exercise the refresh", st.Expired, opened)
	}
	t.Logf("%d expiries, %d EventSources, %d exact resumes, %d resets", st.Expired, opened, st.Replays, st.Resets)
}
