package interop

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// sse.js's fetch transport sends a bearer token that getToken() gives it
// before each connect. Tokens expire every 600 ms and the hub ends the
// stream then (Config.Authenticate); 150 events sent over about 4 s all
// reach the page once, in order, with no reset, and each of the page's
// requests carries the token fetched just before it (one getToken per
// connect). Then the server stops issuing valid tokens: the next connect is
// answered 401, sse.js calls onStop with the status and makes no further
// request.
func TestModuleBearerTokenRefresh(t *testing.T) {
	var mu sync.Mutex
	tokens := map[string]time.Time{} // token → expiry
	var issued []string
	revoked := false
	s := newModuleServer(t, sse.Config{
		Authenticate: func(r *http.Request) (sse.Credential, error) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			mu.Lock()
			defer mu.Unlock()
			exp, known := tokens[tok]
			if !ok || !known {
				return sse.Credential{}, errors.New("no valid token")
			}
			return sse.Credential{ClientID: "ann", Expires: exp}, nil
		},
	})
	s.mux.HandleFunc("/token", func(w http.ResponseWriter, _ *http.Request) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		tok := hex.EncodeToString(b[:])
		mu.Lock()
		if !revoked {
			tokens[tok] = time.Now().Add(600 * time.Millisecond)
		}
		issued = append(issued, tok)
		mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(tok))
	})
	browser := launchChromium(t)
	page := openModulePage(t, browser, s.srv.URL)
	page.eval(`
		window.got = [];
		window.stops = [];
		window.s = sse.connect("/sse", {
			getToken: async () => (await fetch("/token")).text(),
			retry: 100,
			onReset: (r) => got.push("reset:" + r),
			onStop: (err) => stops.push(err.status),
		});
		s.on("message", (e) => got.push(e.data));`, nil)
	page.waitFor("the stream open", `s.state === "open"`, 10*time.Second)

	const n = 150
	for i := range n {
		if _, err := s.hub.Send("ann", sse.Event{Data: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	page.waitFor("every event", "got.length >= 150", 20*time.Second)
	time.Sleep(300 * time.Millisecond)
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

	// One token per connect, fetched just before it.
	gets := s.gets()
	mu.Lock()
	tokensIssued := append([]string(nil), issued...)
	mu.Unlock()
	if len(gets) != len(tokensIssued) {
		t.Fatalf("%d requests to /sse and %d tokens fetched: want one getToken per connect", len(gets), len(tokensIssued))
	}
	for i, r := range gets {
		if r.Auth != "Bearer "+tokensIssued[i] {
			t.Fatalf("request %d carried %q, want the token fetched before it, %q", i, r.Auth, tokensIssued[i])
		}
		if i > 0 && r.LastEventID == "" {
			t.Fatalf("reconnect %d carried no Last-Event-ID", i)
		}
	}
	st := s.hub.Stats()
	if st.Expired < 3 {
		t.Fatalf("%d streams ended at their token's expiry: the test did not exercise the refresh", st.Expired)
	}
	t.Logf("%d connects, %d expiries, %d replays, %d resets", len(gets), st.Expired, st.Replays, st.Resets)

	// The 401 path: no valid token any more.
	mu.Lock()
	revoked = true
	mu.Unlock()
	page.waitFor("onStop", "stops.length > 0", 10*time.Second)
	var stops []int
	var state string
	page.eval(`return stops;`, &stops)
	page.eval(`return s.state;`, &state)
	if len(stops) != 1 || stops[0] != http.StatusUnauthorized || state != "closed" {
		t.Fatalf("onStop got %v and the stream is %s; want [401] and closed", stops, state)
	}
	before := len(s.gets())
	time.Sleep(time.Second)
	if after := len(s.gets()); after != before {
		t.Fatalf("%d requests after the 401", after-before)
	}
}
