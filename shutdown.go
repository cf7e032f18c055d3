package sse

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"time"
)

// ErrStuckStreams is wrapped by the error Shutdown returns when streams
// whose ResponseWriter takes no write deadline (middleware that wraps the
// ResponseWriter without an Unwrap method) are still blocked in a write
// Config.WriteTimeout after Shutdown began. The hub cannot cut such a
// write short: its client stopped reading, and the write lasts until TCP
// gives up on the connection. Their handlers return then, touching nothing
// that Shutdown released. Stats.NoWriteDeadline counts such streams.
var ErrStuckStreams = errors.New("sse: streams stuck in a write that cannot be cut short")

// Shutdown ends every stream, after each has written what was already
// queued to it, and waits until every goroutine the hub runs on or started
// has returned: stream handlers, the heartbeat, and with Config.Hijack each
// stream's writer and reader. From the moment it is called, Send, Broadcast
// and Publish fail with ErrHubClosed, new requests are refused with a retry
// hint, and no write of any stream goes on past Config.WriteTimeout from
// the first call. Once the streams are done it closes the Broker.
//
// It returns by ctx's deadline whatever happens. If ctx ends first, it
// returns an error wrapping ctx's that says what it did not finish (how
// many streams were still ending, a Broker's Close that had not returned);
// it has then closed the Broker all the same, so that nothing of it
// outlives the hub, and the streams end by Config.WriteTimeout from the
// first call. It returns an error wrapping
// ErrStuckStreams if only streams whose writes cannot be cut short are
// left once the write timeout has passed. A Broker's Publish in flight is
// waited for until then too (or until ctx ends), and its context is
// cancelled if it has not returned. It is safe to call more than
// once, concurrently, and from the hooks: called from OnConnect or
// OnDisconnect, it does not wait for the hook's own stream, which ends once
// the hook returns.
//
// http.Server.Shutdown waits for active requests, which open streams are,
// so shut the hub down first, or register it:
// srv.RegisterOnShutdown(hub.Close).
func (h *Hub) Shutdown(ctx context.Context) error {
	self := h.inHook()
	h.stopBy.CompareAndSwap(0, time.Now().Add(h.cfg.WriteTimeout).UnixNano())
	stopBy := time.Unix(0, h.stopBy.Load())
	// From here no publish starts; once those in flight are done, every
	// event published before is queued (and will be written), none after.
	h.closing.Store(true)
	if h.pubs.Load() == 0 {
		h.pubsOnce.Do(func() { close(h.pubsDone) })
	}
	late := time.NewTimer(time.Until(stopBy))
	defer late.Stop()
	var err error
	select {
	case <-h.pubsDone:
	case <-ctx.Done():
		err = ctx.Err()
	case <-late.C:
		h.warn(warnPublishHangs, "sse: Shutdown stopped waiting for a Broker's Publish")
	}
	if err != nil || !late.Stop() {
		h.pubCancel() // a Broker that honours its context gives up
	}
	h.mu.Lock()
	var streams []*stream
	if !h.closed {
		h.closed = true
		close(h.done)
		streams = h.reg.streams()
	}
	h.mu.Unlock()
	// Ending tens of thousands of streams takes a while (a taken-over
	// stream's drain starts as it ends): not longer than ctx allows.
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for _, s := range streams {
			s.close(ReasonShutdown)
		}
	}()
	select {
	case <-ended:
	case <-ctx.Done(): // the wait below gives up at once, saying how many streams are left
	}
	if err != nil {
		// The publishes in flight outlasted ctx: the streams end, and the
		// broker closes, without Shutdown waiting for them.
		return h.gaveUp(ctx, 0)
	}
	stuck, pending, err := h.track.wait(ctx, self, stopBy)
	if err != nil {
		return h.gaveUp(ctx, pending)
	}
	if stuck > 0 {
		err = fmt.Errorf("%w: %d streams whose ResponseWriter takes no write deadline", ErrStuckStreams, stuck)
		h.warn(warnStuck, "sse: Shutdown gave up on streams blocked in a write that cannot be cut short; "+
			"serve the hub through middleware whose ResponseWriter has an Unwrap method", "streams", stuck)
	}
	if cerr := h.closeBroker(ctx); cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

// gaveUp closes the broker although streams may still be ending (their
// Broker calls then fail at once, and they end), so that nothing of the
// broker's outlives the hub, and returns the error that says what
// Shutdown did not finish before ctx ended.
func (h *Hub) gaveUp(ctx context.Context, pending int) error {
	err := fmt.Errorf("sse: Shutdown gave up waiting: %w", ctx.Err())
	if pending > 0 {
		err = fmt.Errorf("sse: Shutdown gave up waiting for %d streams and goroutines to end (their writes "+
			"end by Config.WriteTimeout from its start; a hook that blocks holds its own): %w", pending, ctx.Err())
	}
	h.warn(warnGaveUp, err.Error())
	if cerr := h.closeBroker(ctx); cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

// closeBroker closes the broker, once, and waits for its Close until ctx
// ends (Broker.Close should return promptly whatever the state of its
// store; one that does not is left to finish on its own goroutine).
func (h *Hub) closeBroker(ctx context.Context) error {
	h.stop.Do(func() {
		h.pubCancel()
		go func() {
			if err := h.broker.Close(); err != nil {
				h.log.Warn("sse: closing the broker", "err", err)
			}
			close(h.brokerClosed)
		}()
	})
	select {
	case <-h.brokerClosed:
		return nil
	case <-ctx.Done():
		h.warn(warnGaveUp, "sse: Shutdown did not wait for the Broker's Close to return (it was called)")
		return fmt.Errorf("sse: Shutdown did not wait for the Broker's Close to return (it was called): %w", ctx.Err())
	}
}

// Close is Shutdown without a deadline of its own. It returns once every
// stream has ended, or once only streams whose writes cannot be cut short
// are left, Config.WriteTimeout after it began (see ErrStuckStreams).
func (h *Hub) Close() {
	_ = h.Shutdown(context.Background())
}

// tracker counts what Shutdown waits for: registered streams (until their
// handler, or with Hijack their writer, is done), a taken-over stream's
// reader, the heartbeat goroutine, slow-stream expiries. All its methods
// are safe for concurrent use.
type tracker struct {
	mu        sync.Mutex
	running   int           // streams and goroutines not yet done
	parked    int           // hooks blocked in Shutdown: each holds its stream's count
	unbounded int           // running streams whose writes cannot be cut short
	changed   chan struct{} // closed, and replaced, whenever a count changes
}

func newTracker() *tracker { return &tracker{changed: make(chan struct{})} }

// add counts n more streams or goroutines.
func (t *tracker) add(n int) { t.update(&t.running, n) }

// done counts one of them done.
func (t *tracker) done() { t.update(&t.running, -1) }

// bound counts a running stream whose writer takes no deadline (n = 1),
// or its end (n = -1).
func (t *tracker) bound(n int) { t.update(&t.unbounded, n) }

func (t *tracker) update(count *int, n int) {
	t.mu.Lock()
	*count += n
	close(t.changed) // nobody sends on it: waiters only wait for it to close
	t.changed = make(chan struct{})
	t.mu.Unlock()
}

// wait returns once nothing is left running but hooks waiting in Shutdown
// (self: the caller is one of them), or once only unbounded streams are
// left after stopBy, reporting how many. It returns ctx's error if ctx
// ends first, with how many were still running.
func (t *tracker) wait(ctx context.Context, self bool, stopBy time.Time) (stuck, pending int, err error) {
	if self {
		t.update(&t.parked, 1)
		defer t.update(&t.parked, -1)
	}
	var late <-chan time.Time
	if d := time.Until(stopBy); d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		late = timer.C
	}
	for {
		t.mu.Lock()
		pending, unbounded, changed := t.running-t.parked, t.unbounded, t.changed
		t.mu.Unlock()
		if pending <= 0 {
			return 0, 0, nil
		}
		if pending <= unbounded && !time.Now().Before(stopBy) {
			return pending, 0, nil
		}
		select {
		case <-changed:
		case <-late:
			late = nil
		case <-ctx.Done():
			return 0, pending, ctx.Err()
		}
	}
}

// hook runs a hook of the application's through callHook, counting it, so
// that a Shutdown called from the hook knows not to wait for the hook's own
// stream (see inHook). A panic is counted, then passed on.
func (h *Hub) hook(fn func()) {
	h.hooksRunning.Add(1)
	defer h.hooksRunning.Add(-1)
	defer func() {
		if p := recover(); p != nil {
			// Counted, then passed on: net/http recovers it, logs it and
			// aborts the request's connection (Hub.drain logs it for a stream
			// that took its connection over).
			h.stats.hookPanics.Add(1)
			panic(p)
		}
	}()
	callHook(fn)
}

// callHook calls fn. Its frame on a goroutine's stack marks the goroutine as
// running a hook: see inHook.
//
//go:noinline
func callHook(fn func()) { fn() }

// callHookName is callHook's name as the runtime reports its frames.
var callHookName = runtime.FuncForPC(reflect.ValueOf(callHook).Pointer()).Name()

// inHook reports whether the caller runs inside one of the hub's hooks:
// whether this hub runs a hook now and callHook is on the caller's stack.
// (A goroutine has no identity to compare in Go; its stack is what says
// where it is.) It walks the whole stack, so it is meant for rare calls:
// Shutdown makes it. Were a hook of another hub to call this hub's
// Shutdown while a hook of this one runs, Shutdown would not wait for one
// of its streams; nothing else is mistaken.
func (h *Hub) inHook() bool {
	if h.hooksRunning.Load() == 0 {
		return false
	}
	pcs := make([]uintptr, 64)
	n := runtime.Callers(2, pcs)
	for n == len(pcs) { // a deep stack: read it all
		pcs = make([]uintptr, 2*len(pcs))
		n = runtime.Callers(2, pcs)
	}
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if f.Function == callHookName {
			return true
		}
		if !more {
			return false
		}
	}
}
