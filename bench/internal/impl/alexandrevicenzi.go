package impl

import (
	"net/http"

	asse "github.com/alexandrevicenzi/go-sse"
)

// alexandrevicenzi is github.com/alexandrevicenzi/go-sse as its README sets
// it up: sse.NewServer mounted as a handler, the channel named by the request
// path, SendMessage with a SimpleMessage. The only change from the README is
// an Options without a Logger, which discards the log line the library
// otherwise prints to stdout for every message. It has no replay.
type alexandrevicenzi struct{ s *asse.Server }

func init() {
	register("alexandrevicenzi", func(Options) (Impl, error) {
		return &alexandrevicenzi{asse.NewServer(&asse.Options{})}, nil
	})
}

func (a *alexandrevicenzi) Path() string          { return "/sse" }
func (a *alexandrevicenzi) Handler() http.Handler { return a.s }
func (a *alexandrevicenzi) Streams() int          { return a.s.ClientCount() }

func (a *alexandrevicenzi) Publish(data []byte) error {
	a.s.SendMessage("/sse", asse.SimpleMessage(string(data)))
	return nil
}

// Close leaves the server running: its Shutdown waits on the dispatch
// goroutine, which may be stuck behind a client that does not read.
func (a *alexandrevicenzi) Close() {}
