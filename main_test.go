package sse

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain runs the tests, or, when the test binary is started by a test
// as a server process of its own (see startServerProcess), that server, or
// as a process of clients (see TestShutdownManyIdlePolledStreams), those.
func TestMain(m *testing.M) {
	if addr := os.Getenv("SSE_TEST_SERVER_ADDR"); addr != "" {
		flag.Parse() // -sse.hijack and -sse.poll, passed on by startServerProcess
		serverProcess(addr, os.Getenv("SSE_TEST_SERVER_PUBLISH"))
		return
	}
	if addr := os.Getenv("SSE_TEST_CLIENTS_ADDR"); addr != "" {
		n, _ := strconv.Atoi(os.Getenv("SSE_TEST_CLIENTS_N"))
		clientsProcess(addr, n)
		return
	}
	os.Exit(m.Run())
}

// serverProcess is a whole program, as an application would write it: a
// hub on addr that broadcasts the comma-separated events in publish before
// it serves, then one event for each "pub <data>" line on its standard
// input, in the setup the tests run in (testConfig: -sse.hijack, -sse.poll).
// It prints "listening <addr>" once it serves and "connected" for every
// stream, and shuts down on SIGTERM, the hub first.
func serverProcess(addr, publish string) {
	hub, err := NewHub(testConfig(Config{Retry: 50 * time.Millisecond, Heartbeat: -1,
		OnConnect: func(StreamInfo) { fmt.Println("connected") }}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for _, d := range strings.Split(publish, ",") {
		if d != "" {
			hub.Broadcast(Event{Data: []byte(d)})
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	srv := &http.Server{Handler: hub, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Println("listening", ln.Addr())
	go func() {
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			if d, ok := strings.CutPrefix(in.Text(), "pub "); ok {
				hub.Broadcast(Event{Data: []byte(d)})
			}
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	timeout, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hub.Shutdown(timeout)
	_ = srv.Shutdown(timeout)
}
