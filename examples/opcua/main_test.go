package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain silences the gopcua server's package-log output and fails the run
// if any goroutine of ours, the hub's, gopcua's or chromedp's outlives the
// tests.
func TestMain(m *testing.M) {
	log.SetOutput(io.Discard)
	code := m.Run()
	if code == 0 {
		if leaks := leakedGoroutines(10 * time.Second); leaks != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n\n%s\n", leaks)
			code = 1
		}
	}
	os.Exit(code)
}

// leakMarkers are stack frames that must not remain once every test is done.
var leakMarkers = []string{
	"github.com/ssehub/sse", // the hub and this package
	"github.com/gopcua/opcua",
	"github.com/chromedp/",
	"net/http.(*persistConn)",
	"net/http.(*conn).serve",
}

// leakedGoroutines waits up to wait for leftover goroutines to end and
// returns the stacks of those that did not.
func leakedGoroutines(wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		var leaks []string
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for i, g := range strings.Split(string(buf), "\n\n") {
			if i == 0 { // this goroutine
				continue
			}
			for _, m := range leakMarkers {
				if strings.Contains(g, m) {
					leaks = append(leaks, g)
					break
				}
			}
		}
		if len(leaks) == 0 || time.Now().After(deadline) {
			return strings.Join(leaks, "\n\n")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
