package impl

import (
	"net/http"
	"sync/atomic"

	r3 "github.com/r3labs/sse/v2"
)

// r3labs is github.com/r3labs/sse/v2 as its README sets it up: sse.New (here
// NewWithCallback, the same defaults plus the subscribe hooks, which count
// streams) and one stream, "messages", that clients ask for with
// ?stream=messages. Its defaults keep every event in an unbounded event log
// and replay it from Last-Event-ID (AutoReplay).
type r3labs struct {
	s       *r3.Server
	streams atomic.Int64
}

func init() {
	register("r3labs", func(Options) (Impl, error) {
		r := &r3labs{}
		r.s = r3.NewWithCallback(
			func(string, *r3.Subscriber) { r.streams.Add(1) },
			func(string, *r3.Subscriber) { r.streams.Add(-1) },
		)
		r.s.CreateStream("messages")
		return r, nil
	})
}

func (r *r3labs) Path() string          { return "/sse?stream=messages" }
func (r *r3labs) Handler() http.Handler { return r.s }
func (r *r3labs) Streams() int          { return int(r.streams.Load()) }
func (r *r3labs) Close()                { r.s.Close() }

func (r *r3labs) Publish(data []byte) error {
	// The event is queued, not written, before Publish returns: it needs
	// its own copy of data.
	r.s.Publish("messages", &r3.Event{Data: append([]byte(nil), data...)})
	return nil
}
