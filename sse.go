// Package sse serves Server-Sent Events from any net/http server.
//
// A [Hub] is an [http.Handler]: mount it on a mux and every GET request
// becomes a long-lived event stream. Application code pushes events with
// [Hub.Broadcast] (every stream), [Hub.Publish] (streams subscribed to a
// topic) and [Hub.Send] (every stream of one client ID). None of them ever
// waits for a client: each event is validated, encoded once, and its bytes are
// shared by every recipient's bounded queue. A per-stream writer drains its
// queue into one write and one flush.
//
// Frames follow the WHATWG HTML "Server-sent events" rules exactly (see
// [AppendEvent]), and [Decoder] parses a stream the way a browser does, so Go
// programs and tests can read what the hub writes. [Client] follows a stream
// from a Go program as a browser's EventSource does: it resumes with
// Last-Event-ID across reconnects, backs off, and reports a hub's resets.
//
// # Delivery guarantees
//
//   - Order: every stream receives the events it is entitled to in the order
//     they were published on the hub.
//   - Replay: the hub numbers events (see [Message.Pos]) and keeps a bounded
//     history. A browser that reconnects sends Last-Event-ID and receives
//     exactly the events it missed, with no gap and no duplicate, before live
//     events resume. When the history cannot cover the gap, the stream
//     receives one event of type [ResetEvent] instead, so the page can reload
//     its state: never a silent gap.
//   - Slow clients: a stream whose queue fills is ended; the browser
//     reconnects and replays what it missed. Other streams are never slowed.
//     Events with a [Event.Key] are conflated instead: only the newest queued
//     event per key is kept.
//   - Resume points: a stream is told a position only once everything
//     before it that the stream is entitled to has been written, so a
//     stream cut short resumes where it really stopped.
//   - Shutdown: [Hub.Shutdown] ends every stream and returns once every
//     goroutine the hub started or runs on has finished and the Broker is
//     closed, or by its context's deadline, with an error that says what
//     it did not finish (it closes the Broker all the same). The hooks may
//     call it.
//
// # Serving and shutting down
//
// A program mounts the hub like any handler, and ends the hub's streams
// before it shuts its server down: a stream is a request that ends only
// when its client leaves or the hub ends it, so [http.Server.Shutdown] on
// its own would wait out its whole context with streams open. (With
// [Config.Hijack], the server does not see the streams at all.) The
// README's program, examples/quickstart, in short:
//
//	hub, err := sse.NewHub(sse.Config{})
//	if err != nil {
//		log.Fatal(err)
//	}
//	http.Handle("/sse", hub)
//	srv := &http.Server{Addr: "localhost:8080", ReadHeaderTimeout: 10 * time.Second}
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	failed := make(chan error, 1)
//	go func() { failed <- srv.ListenAndServe() }()
//	select {
//	case err := <-failed:
//		log.Fatal(err) // never nil: the port is taken, say
//	case <-ctx.Done(): // SIGINT or SIGTERM
//	}
//	timeout, cancel := context.WithTimeout(context.Background(), 5*time.Second)
//	defer cancel()
//	hub.Shutdown(timeout) // first: the streams end, so the server's handlers return
//	srv.Shutdown(timeout)
//
// Registering the hub with the server, srv.RegisterOnShutdown(hub.Close),
// works too; it runs when Shutdown begins. Behind a web framework (gin,
// echo, chi, GoFrame; Fiber cannot stream it) the hub mounts in one line:
// see examples/frameworks.
//
// # Several nodes
//
// Ordering, history and replay live behind the [Broker] interface. The
// default is in memory; a shared engine lets hubs on several machines deliver
// the same events and replay from any node. Package
// [github.com/ssehub/sse/sseredis] (a module of its own, on go-redis) is a
// Broker on a Redis Stream; examples/cluster runs two nodes on one Redis.
//
// # Metrics
//
// [Hub.Stats] returns the hub's counters and gauges; publish them with
// expvar, or as Prometheus metrics with package
// [github.com/ssehub/sse/sseprom] (a module of its own, on client_golang).
package sse

import (
	"errors"
	"fmt"
	"net/http"
)

// ResetEvent is the event type a stream receives when its Last-Event-ID
// cannot be resumed: the id is unknown, older than the history, or from
// another hub epoch (an earlier run of the process). Its data is the reason,
// one of "unknown", "expired" or "epoch" (a Broker may give others). The
// snapshot of keyed state follows it, then a PositionEvent, so the next
// reconnect resumes from there (the reset
// carries the position as its own id when no snapshot follows). It is sent
// only when an event the stream may receive is really gone, or the id
// cannot be placed. A page should treat it as "reload your state", for
// example by fetching a snapshot:
//
//	es.addEventListener("sse-reset", () => reloadEverything());
//
// A Broker that fails to replay resets nobody: the stream ends before it
// writes an event, and its client retries with the same Last-Event-ID
// (Stats.ReplayFailures counts them).
const ResetEvent = "sse-reset"

// PositionEvent is the type of the event that tells a stream's client its
// resume point without carrying anything: its id is the hub's position and
// its data is empty. A Hub sends one at the end of a fresh or reset
// stream's start (after the snapshot; a reset without one carries the
// position itself), so that a client that gets no event before it drops
// still resumes without a gap. A resumed stream keeps its client's
// Last-Event-ID (but for one that gets the state of a topic subscribed at
// run time instead of its replay, see Hub.Subscribe), and heartbeats carry
// no id.
//
// It is a named event because that is the one form every popular client
// both dispatches and takes the id of: a browser's EventSource and npm's
// eventsource move their resume point and never pass it to onmessage (an
// id-only block would not move npm eventsource's), while clients with a
// single handler for every event, such as @microsoft/fetch-event-source and
// the other Go clients, hand it to the application once per fresh start:
// ignore the type there. This package's Client never yields it.
const PositionEvent = "sse-position"

// ErrHubClosed is returned by Send, Broadcast, Publish and friends after
// Shutdown or Close has begun.
var ErrHubClosed = errors.New("sse: hub is closed")

// ErrInvalidEvent is wrapped by every error that reports an event that
// cannot be encoded: a CR, LF or NUL in its ID or Type, another control
// byte or a space at either end of its ID (which could not come back as a
// Last-Event-ID header), invalid UTF-8, a negative Retry. Test with
// errors.Is.
var ErrInvalidEvent = errors.New("sse: invalid event")

// ErrEventTooLarge is wrapped by the errors that report an event larger than
// a configured bound: a Decoder's maximum event size, or a Hub's per-stream
// queue (an event that could never fit into any queue is refused).
var ErrEventTooLarge = errors.New("sse: event too large")

// StatusError is an error that carries the HTTP status a Hub answers with
// when Config.ClientID or Config.Topics returns it. Any error with a method
// StatusCode() int works the same way; errors without one answer 401
// (ClientID) or 400 (Topics).
type StatusError struct {
	Code int   // an HTTP status code, such as http.StatusForbidden
	Err  error // the cause, logged but never sent to the client
}

// Error describes the status and the cause.
func (e *StatusError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("sse: %d %s", e.Code, http.StatusText(e.Code))
	}
	return fmt.Sprintf("sse: %d %s: %v", e.Code, http.StatusText(e.Code), e.Err)
}

// Unwrap returns the cause.
func (e *StatusError) Unwrap() error { return e.Err }

// StatusCode returns Code.
func (e *StatusError) StatusCode() int { return e.Code }

// statusOf returns the status that err carries, or fallback.
func statusOf(err error, fallback int) int {
	var sc interface{ StatusCode() int }
	if errors.As(err, &sc) {
		if c := sc.StatusCode(); c >= 400 && c <= 599 {
			return c
		}
	}
	return fallback
}
