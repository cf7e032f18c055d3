package main

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/gogf/gf/v2/net/ghttp"
	"github.com/ssehub/sse"
)

// GoFrame's documented mount for a net/http handler, ghttp.WrapH, streams
// (its buffer's Flush writes through), but its writers have no Unwrap, so
// the hub cannot reach write deadlines: the hub reports it, which is why
// goframe.go hands the hub goframeWriter instead (TestFrameworks shows
// that one reports nothing).
func TestGoFrameWrapHHidesWriteDeadlines(t *testing.T) {
	hub, err := newHub(sse.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := ghttp.GetServer("sse-wraph")
	s.SetDumpRouterMap(false)
	s.SetAccessLogEnabled(false)
	s.Logger().SetStdoutPrint(false)
	if err := s.SetListener(ln); err != nil {
		t.Fatal(err)
	}
	s.Group("/api/v1", func(group *ghttp.RouterGroup) {
		group.Middleware(goframeAuth)
		group.GET("/sse", ghttp.WrapH(hub))
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = shutdown(context.Background(), hub, func(context.Context) error { return s.Shutdown() }) }()

	c := connect(t, "http://"+ln.Addr().String()+ssePath+"?token=token-ann", nil)
	waitFor(t, "the stream to register", func() bool { return hub.Stats().Streams == 1 })
	if _, err := hub.Broadcast(sse.Event{Data: []byte("through WrapH")}); err != nil {
		t.Fatal(err)
	}
	if ev := c.next(t); string(ev.Data) != "through WrapH" {
		t.Fatalf("got %q", ev.Data)
	}
	if st := hub.Stats(); st.NoWriteDeadline != 1 {
		t.Fatalf("NoWriteDeadline %d, want 1: has GoFrame's writer gained an Unwrap method?", st.NoWriteDeadline)
	}
}
