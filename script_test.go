package sse

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// serveScript answers one request of ScriptHandler.
func serveScript(method, path string, header http.Header) *http.Response {
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	ScriptHandler().ServeHTTP(w, req)
	return w.Result()
}

// The handler serves sse.js, and sse.d.ts at a path ending in .d.ts, as
// they are in the repository, with the headers a module script needs: a
// JavaScript Content-Type (browsers refuse a module of another type), an
// ETag from the content, revalidation on every use, nosniff.
func TestScriptHandlerServesTheModule(t *testing.T) {
	for _, tc := range []struct {
		path, file, contentType string
	}{
		{"/sse.js", "sse.js", "text/javascript; charset=utf-8"},
		{"/static/sse.js?v=2", "sse.js", "text/javascript; charset=utf-8"},
		{"/sse.d.ts", "sse.d.ts", "application/typescript; charset=utf-8"},
	} {
		want, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		res := serveScript(http.MethodGet, tc.path, nil)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
			t.Fatalf("GET %s: %d, %d bytes; want 200 and %s's %d bytes", tc.path, res.StatusCode, len(body), tc.file, len(want))
		}
		for k, v := range map[string]string{
			"Content-Type":           tc.contentType,
			"Cache-Control":          "no-cache",
			"X-Content-Type-Options": "nosniff",
			"Vary":                   "Accept-Encoding",
		} {
			if got := res.Header.Get(k); got != v {
				t.Errorf("GET %s: %s %q, want %q", tc.path, k, got, v)
			}
		}
		if tag := res.Header.Get("ETag"); len(tag) < 10 || tag[0] != '"' || tag[len(tag)-1] != '"' {
			t.Errorf("GET %s: ETag %q, want a strong quoted tag", tc.path, tag)
		}
		if res.Header.Get("Content-Encoding") != "" {
			t.Errorf("GET %s without Accept-Encoding: Content-Encoding %q", tc.path, res.Header.Get("Content-Encoding"))
		}
	}
	js := serveScript(http.MethodGet, "/sse.js", nil).Header.Get("ETag")
	dts := serveScript(http.MethodGet, "/sse.d.ts", nil).Header.Get("ETag")
	if js == dts {
		t.Errorf("the module and the declarations have the same ETag %s", js)
	}
}

// HEAD gets the headers of GET and no body; a request that holds the
// current ETag gets 304 and no body; other methods get 405 with Allow.
func TestScriptHandlerHeadConditionalAndMethods(t *testing.T) {
	get := serveScript(http.MethodGet, "/sse.js", nil)
	head := serveScript(http.MethodHead, "/sse.js", nil)
	body, _ := io.ReadAll(head.Body)
	if head.StatusCode != http.StatusOK || len(body) != 0 {
		t.Fatalf("HEAD: %d with %d bytes of body, want 200 and none", head.StatusCode, len(body))
	}
	for _, k := range []string{"Content-Type", "Content-Length", "ETag", "Cache-Control"} {
		if head.Header.Get(k) == "" || head.Header.Get(k) != get.Header.Get(k) {
			t.Errorf("HEAD's %s %q, GET's %q", k, head.Header.Get(k), get.Header.Get(k))
		}
	}

	tag := get.Header.Get("ETag")
	res := serveScript(http.MethodGet, "/sse.js", http.Header{"If-None-Match": {tag}})
	body, _ = io.ReadAll(res.Body)
	if res.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Fatalf("GET with If-None-Match %s: %d with %d bytes, want 304 and none", tag, res.StatusCode, len(body))
	}
	res = serveScript(http.MethodGet, "/sse.js", http.Header{"If-None-Match": {`"another"`}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET with a stale If-None-Match: %d, want 200", res.StatusCode)
	}

	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		res := serveScript(m, "/sse.js", nil)
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d, Allow %q; want 405 and GET, HEAD", m, res.StatusCode, res.Header.Get("Allow"))
		}
	}
}

// A client that accepts gzip gets the module gzipped, under an ETag of its
// own (a cache must not answer a plain request with gzipped bytes), and
// revalidates it with that ETag.
func TestScriptHandlerGzip(t *testing.T) {
	want, err := os.ReadFile("sse.js")
	if err != nil {
		t.Fatal(err)
	}
	res := serveScript(http.MethodGet, "/sse.js", http.Header{"Accept-Encoding": {"br, gzip;q=0.8"}})
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", res.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("gunzipped body: %d bytes (%v), want sse.js's %d", len(got), err, len(want))
	}
	tag := res.Header.Get("ETag")
	if plain := serveScript(http.MethodGet, "/sse.js", nil).Header.Get("ETag"); tag == plain {
		t.Fatalf("gzipped and plain share the ETag %s", tag)
	}
	res = serveScript(http.MethodGet, "/sse.js", http.Header{"Accept-Encoding": {"gzip"}, "If-None-Match": {tag}})
	if res.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidating the gzipped module: %d, want 304", res.StatusCode)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"deflate, gzip;q=0.5", true},
		{"br", false},
		{"gzip;q=0", false},
		{"gzip; q=0.0", false},
		{"*", true},
		{"*;q=0", false},
		{"gzip;q=0, *", false},
		{"identity, x-gzip", true},
	} {
		var values []string
		if tc.header != "" {
			values = strings.Split(tc.header, "\n")
		}
		if got := acceptsGzip(values); got != tc.want {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", tc.header, got, tc.want)
		}
	}
}

// The README states the module's size as ScriptHandler serves it: measured,
// so that it cannot rot.
func TestReadmeStatesTheModuleSize(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("`sse.js` is ([0-9,]+) bytes of commented source, ([0-9,]+) gzipped").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md does not state sse.js's size")
	}
	res := serveScript(http.MethodGet, "/sse.js", http.Header{"Accept-Encoding": {"gzip"}})
	gz, _ := io.ReadAll(res.Body)
	comma := func(n int) string {
		s := strconv.Itoa(n)
		for i := len(s) - 3; i > 0; i -= 3 {
			s = s[:i] + "," + s[i:]
		}
		return s
	}
	if want := fmt.Sprintf("%s bytes of commented source, %s gzipped", comma(len(scriptJS)), comma(len(gz))); !strings.Contains(string(readme), want) {
		t.Fatalf("README.md says %q; write %q", m[0], "`sse.js` is "+want)
	}
}
