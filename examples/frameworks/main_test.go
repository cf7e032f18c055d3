package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// The program ends on SIGINT as a whole: the hub first, so the open
// stream ends cleanly, then the framework's server, and run returns nil.
func TestRunEndsOnSIGINT(t *testing.T) {
	for _, name := range []string{"gin", "goframe"} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close() // run listens there itself
			ran := make(chan error, 1)
			go func() { ran <- run(name, addr) }()
			url := "http://" + addr + ssePath + "?token=token-ann"
			waitFor(t, "the server to listen", func() bool {
				resp, err := http.Get("http://" + addr + ssePath) // no token: 401, at once
				if err == nil {
					resp.Body.Close()
				}
				return err == nil
			})
			c := connect(t, url, nil)
			if ev := c.next(t); ev.Type != "clock" { // run publishes the time every second
				t.Fatalf("got %+v", ev)
			}
			// run's signal.NotifyContext is in place: it was before the
			// server listened.
			if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-ran:
				if err != nil {
					t.Fatalf("run: %v", err)
				}
			case <-time.After(patience):
				t.Fatal("run did not return after SIGINT")
			}
			if err := c.ended(t); !errors.Is(err, io.EOF) {
				t.Fatalf("the stream ended with %v, want a clean end", err)
			}
			noHubGoroutines(t)
		})
	}
}
