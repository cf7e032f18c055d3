package interop

// The harness of the browser tests of sse.js, the hub's page-side module
// (module_*_test.go): a server that serves the module with
// sse.ScriptHandler, a page that imports it, and a tab that the test drives
// with JavaScript.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/ssehub/sse"
)

// modulePageHTML imports the module as the README tells pages to, and
// leaves it in window.sse for the test's scripts.
const modulePageHTML = `<!doctype html>
<meta charset="utf-8">
<title>sse.js</title>
<script type="module">
import * as sse from "/sse.js";
window.sse = sse;
window.log = []; // what the test's scripts record
document.title = "ready";
</script>
`

// serveModule adds the module (/sse.js, /sse.d.ts) and the page (/page) to
// mux.
func serveModule(mux *http.ServeMux) {
	mux.Handle("/sse.js", sse.ScriptHandler())
	mux.Handle("/sse.d.ts", sse.ScriptHandler())
	mux.HandleFunc("/page", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(modulePageHTML))
	})
}

// hubRequest is one request that reached a moduleServer's /sse.
type hubRequest struct {
	Method      string
	LastEventID string // the Last-Event-ID header
	Param       string // the lastEventID query parameter
	Auth        string // the Authorization header
	Status      int    // what the gate answered instead of the hub, or 0
	At          time.Time
}

// moduleServer is a hub at /sse behind a gate that records every request
// and may answer in the hub's place, beside the module and its page.
type moduleServer struct {
	hub *sse.Hub
	srv *httptest.Server
	mux *http.ServeMux

	mu       sync.Mutex
	requests []hubRequest
	gate     func(*http.Request) int // a status to answer instead of the hub, or 0
}

// newModuleServer starts a hub with cfg (Heartbeat, Retry and
// LastEventIDParam have short or README defaults when zero) and a client
// ID from the client query parameter unless cfg has its own. Everything
// is closed when the test ends.
func newModuleServer(t *testing.T, cfg sse.Config) *moduleServer {
	t.Helper()
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = heartbeat
	}
	if cfg.Retry == 0 {
		cfg.Retry = retry
	}
	if cfg.LastEventIDParam == "" {
		cfg.LastEventIDParam = "lastEventID"
	}
	if cfg.ClientID == nil && cfg.Authenticate == nil {
		cfg.ClientID = func(r *http.Request) (string, error) {
			if id := r.URL.Query().Get("client"); id != "" {
				return id, nil
			}
			return "", &sse.StatusError{Code: http.StatusBadRequest, Err: fmt.Errorf("no client parameter")}
		}
	}
	hub, err := sse.NewHub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &moduleServer{hub: hub, mux: http.NewServeMux()}
	serveModule(s.mux)
	s.mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		req := hubRequest{
			Method:      r.Method,
			LastEventID: r.Header.Get("Last-Event-ID"),
			Param:       r.URL.Query().Get("lastEventID"),
			Auth:        r.Header.Get("Authorization"),
			At:          time.Now(),
		}
		s.mu.Lock()
		if s.gate != nil {
			req.Status = s.gate(r)
		}
		s.requests = append(s.requests, req)
		s.mu.Unlock()
		if req.Status != 0 {
			http.Error(w, "refused by the test", req.Status)
			return
		}
		hub.ServeHTTP(w, r)
	})
	s.srv = httptest.NewServer(s.mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hub.Shutdown(ctx)
		s.srv.Close()
	})
	return s
}

// setGate sets the function that may answer requests to /sse in the hub's
// place; nil lets every request through.
func (s *moduleServer) setGate(f func(*http.Request) int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = f
}

// gets returns the GET requests to /sse so far.
func (s *moduleServer) gets() []hubRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []hubRequest
	for _, r := range s.requests {
		if r.Method == http.MethodGet {
			out = append(out, r)
		}
	}
	return out
}

// modulePage is one tab on the module's page.
type modulePage struct {
	t     *testing.T
	ctx   context.Context
	close func()
}

// openModulePage opens a tab on base+"/page" and waits for the module to
// load. The tab is closed when the test ends, or by close.
func openModulePage(t *testing.T, browser context.Context, base string) *modulePage {
	t.Helper()
	tab, closeTab := chromedp.NewContext(browser)
	if err := chromedp.Run(tab); err != nil {
		closeTab()
		t.Fatalf("opening a tab: %v", err)
	}
	var once sync.Once
	p := &modulePage{t: t, ctx: tab, close: func() { once.Do(closeTab) }}
	t.Cleanup(p.close)
	nav, cancel := context.WithTimeout(tab, 15*time.Second)
	defer cancel()
	if err := chromedp.Run(nav, chromedp.Navigate(base+"/page")); err != nil {
		t.Fatalf("opening %s/page: %v", base, err)
	}
	p.waitFor("the module to load", `document.title === "ready"`, 10*time.Second)
	return p
}

// in returns the page for a subtest's t: its failures end the subtest.
func (p *modulePage) in(t *testing.T) *modulePage {
	c := *p
	c.t = t
	return &c
}

// eval runs a script in the page (awaiting it if it returns a promise) and
// stores its JSON result in out, if out is not nil.
func (p *modulePage) eval(js string, out any) {
	p.t.Helper()
	if err := p.try(js, out); err != nil {
		p.t.Fatalf("in the page: %v\nscript: %s", err, js)
	}
}

func (p *modulePage) try(js string, out any) error {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	var raw []byte
	err := chromedp.Run(ctx, chromedp.Evaluate(`(async () => JSON.stringify(await (async () => { `+js+` })()) ?? "")()`, &raw,
		func(ep *runtime.EvaluateParams) *runtime.EvaluateParams { return ep.WithAwaitPromise(true) }))
	if err != nil {
		return err
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("the script's result %s: %v", raw, err)
	}
	if out == nil || s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), out)
}

// waitFor polls a JavaScript expression every 20 ms until it is true; at
// the timeout the test fails, with window.log.
func (p *modulePage) waitFor(what, cond string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		err := p.try("return !!("+cond+");", &ok)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var log any
			_ = p.try(`return window.log.length ? window.log : window.got ? {got: got.length, last: got.slice(-5), state: window.s?.state} : null;`, &log)
			p.t.Fatalf("timed out after %v waiting for %s (%s; last error %v); window.log: %v", timeout, what, cond, err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitUntil polls f every 10 ms until it is true; at the timeout the test
// fails.
func waitUntil(t *testing.T, what string, timeout time.Duration, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !f(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
