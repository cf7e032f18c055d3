// Package impl adapts each SSE implementation under test to one interface,
// so the server mode and the tests treat them alike.
package impl

import (
	"fmt"
	"net/http"
	"sort"
)

// Impl is one SSE implementation mounted as an http.Handler.
type Impl interface {
	// Handler serves event streams.
	Handler() http.Handler
	// Path is the request path (and query) a client asks for the stream at.
	Path() string
	// Publish sends one event with data to every stream. The caller may
	// reuse data once Publish returns. It may block if the implementation
	// applies backpressure.
	Publish(data []byte) error
	// Streams returns how many streams are registered and will receive the
	// next Publish.
	Streams() int
	// Close releases the implementation's resources, without waiting for
	// clients for long.
	Close()
}

// Options are the per-scenario settings an adapter may need.
type Options struct {
	// Replay asks for a history of at least this many events for
	// Last-Event-ID replay; 0 means the implementation's default setup.
	Replay int
	// Redis, if set, is the address of a redis-server that our hub uses
	// as its Broker (sseredis), so that several hub processes share the
	// events; the other implementations refuse it.
	Redis string
}

// Names lists the implementations, the baseline first, then ours (with
// its default Config, with Config.Hijack, with Config.Hijack and Poll),
// then the peers.
var Names = []string{"raw", "ours", "ours-hijack", "ours-poll", "tmaxmax", "r3labs", "alexandrevicenzi"}

// Ours reports whether name is one of this repository's setups.
func Ours(name string) bool { return name == "ours" || name == "ours-hijack" || name == "ours-poll" }

// Peers are the implementations that are neither the baseline nor ours.
var Peers = []string{"tmaxmax", "r3labs", "alexandrevicenzi"}

var constructors = map[string]func(Options) (Impl, error){}

func register(name string, f func(Options) (Impl, error)) { constructors[name] = f }

// New returns the implementation called name.
func New(name string, o Options) (Impl, error) {
	f, ok := constructors[name]
	if !ok {
		var known []string
		for n := range constructors {
			known = append(known, n)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("unknown implementation %q (known: %v)", name, known)
	}
	if o.Redis != "" && !Ours(name) {
		return nil, fmt.Errorf("%s cannot use Redis", name)
	}
	return f(o)
}

// CanReplay reports whether the implementation resumes a stream from
// Last-Event-ID.
func CanReplay(name string) bool {
	switch name {
	case "ours", "ours-hijack", "ours-poll", "tmaxmax", "r3labs":
		return true
	}
	return false
}
