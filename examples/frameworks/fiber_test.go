package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// Through Fiber's net/http adaptor the hub's stream is buffered whole:
// nothing reaches the client, not its headers, not an event published
// while the stream is open, until the hub ends the stream and the handler
// returns. This is why fiber.go puts the hub beside Fiber instead (tested
// in TestFrameworks, "fiber (hub beside)"). If this test fails because
// the headers arrive early, the adaptor has learnt to stream: update
// fiber.go and the README.
func TestFiberAdaptorBuffersTheStream(t *testing.T) {
	hub, err := newHub(sse.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	app := fiberAdaptor(hub)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		_ = hub.Shutdown(ctx)
		_ = app.ShutdownWithContext(ctx)
	}()

	type answer struct {
		resp *http.Response
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + ssePath + "?token=token-ann")
		answered <- answer{resp, err}
	}()
	waitFor(t, "the hub to serve the stream", func() bool { return hub.Stats().Clients == 1 })
	if _, err := hub.Broadcast(sse.Event{Data: []byte("published while open")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the hub to write the event", func() bool { return hub.Stats().Written >= 1 })
	select {
	case a := <-answered:
		if a.err == nil {
			a.resp.Body.Close()
		}
		t.Fatalf("the client got an answer while the stream was open (%v): the adaptor streams now", a.err)
	case <-time.After(time.Second): // a chance to send something; the hub has written and flushed
	}
	if n := hub.Disconnect("ann"); n != 1 { // the handler returns; only now does fasthttp send
		t.Fatalf("Disconnect ended %d streams", n)
	}
	var a answer
	select {
	case a = <-answered:
	case <-time.After(patience):
		t.Fatal("no answer after the stream ended")
	}
	if a.err != nil {
		t.Fatal(a.err)
	}
	body, _ := io.ReadAll(a.resp.Body)
	a.resp.Body.Close()
	if !strings.Contains(string(body), "data: published while open") {
		t.Fatalf("body %q lacks the event", body)
	}
	if st := hub.Stats(); st.NoWriteDeadline != 1 {
		t.Fatalf("NoWriteDeadline %d: the adaptor's writer was expected to take no deadline", st.NoWriteDeadline)
	}
}
