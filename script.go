package sse

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The browser companion: sse.js and its TypeScript declarations, embedded.
var (
	//go:embed sse.js
	scriptJS []byte
	//go:embed sse.d.ts
	scriptDTS []byte
)

// ScriptHandler returns an http.Handler that serves sse.js, the browser
// companion of the hub: one ES module, with no build step and no
// dependencies, that gives pages what a bare EventSource lacks (listeners
// that cannot be registered twice, one connection per URL shared by every
// component, the hub's sse-position and sse-reset understood, a fetch
// transport for headers and bodies with a spec-exact parser, a watchdog,
// backoff with jitter, and optionally one connection shared by all the tabs
// of an origin). Mount it beside the hub, and at the same path ending in
// .d.ts for its TypeScript declarations:
//
//	mux.Handle("/sse.js", sse.ScriptHandler())
//	mux.Handle("/sse.d.ts", sse.ScriptHandler())
//
// A request whose path ends in ".d.ts" gets the declarations, any other the
// module. Both are answered to GET and HEAD (other methods get 405) with an
// ETag derived from the content, Cache-Control: no-cache (a browser keeps
// the file and revalidates it, so an upgrade is seen at once: a 304 costs a
// round trip and no body), conditional and range requests as
// http.ServeContent answers them, and gzip for a client that accepts it.
// There is no Last-Modified: embedded files have no modification time, and
// the ETag is the same on every node and after every restart.
//
// A page on another origin than the handler needs CORS headers on it: a
// module script is fetched in CORS mode.
func ScriptHandler() http.Handler { return scriptHandler{} }

// scriptHandler is the http.Handler ScriptHandler returns.
type scriptHandler struct{}

// scriptFile is one embedded file as served: plain and gzipped, with the
// ETag of each.
type scriptFile struct {
	contentType string
	plain, gz   []byte
	etag, gzTag string
}

var (
	scriptOnce  sync.Once
	scriptFiles [2]scriptFile // the module, the declarations
)

func loadScripts() {
	scriptFiles[0] = newScriptFile(scriptJS, "text/javascript; charset=utf-8")
	scriptFiles[1] = newScriptFile(scriptDTS, "application/typescript; charset=utf-8")
}

func newScriptFile(b []byte, contentType string) scriptFile {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
	_, _ = zw.Write(b)                                       // a bytes.Buffer does not fail
	_ = zw.Close()
	sum := sha256.Sum256(b)
	tag := base64.RawURLEncoding.EncodeToString(sum[:12])
	return scriptFile{
		contentType: contentType,
		plain:       b,
		gz:          buf.Bytes(),
		etag:        `"` + tag + `"`,
		gzTag:       `"` + tag + `-gz"`,
	}
}

func (scriptHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "sse: the script is served to GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	scriptOnce.Do(loadScripts)
	f := &scriptFiles[0]
	if strings.HasSuffix(r.URL.Path, ".d.ts") {
		f = &scriptFiles[1]
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Add("Vary", "Accept-Encoding")
	body, tag := f.plain, f.etag
	if acceptsGzip(r.Header.Values("Accept-Encoding")) {
		body, tag = f.gz, f.gzTag
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", tag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether Accept-Encoding values accept gzip: listed
// with a quality above zero, or not listed and "*" accepted.
func acceptsGzip(values []string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				k, v, ok := strings.Cut(p, "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
						q = f
					}
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gzipQ = max(gzipQ, q)
			case "*":
				starQ = max(starQ, q)
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}
