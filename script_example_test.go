package sse_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/ssehub/sse"
)

// The hub and its page-side module on one mux: a page imports /sse.js and
// calls connect("/sse").
func ExampleScriptHandler() {
	hub, err := sse.NewHub(sse.Config{
		LastEventIDParam: "lastEventID", // where a new EventSource of sse.js puts its resume point
	})
	if err != nil {
		log.Fatal(err)
	}
	defer hub.Close()
	mux := http.NewServeMux()
	mux.Handle("/sse", hub)
	mux.Handle("/sse.js", sse.ScriptHandler())
	mux.Handle("/sse.d.ts", sse.ScriptHandler())

	for _, path := range []string{"/sse.js", "/sse.d.ts"} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(path, w.Code, w.Header().Get("Content-Type"))
	}
	// Output:
	// /sse.js 200 text/javascript; charset=utf-8
	// /sse.d.ts 200 application/typescript; charset=utf-8
}
