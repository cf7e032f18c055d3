package sse

import (
	"context"
	"time"
)

// audiences lists the audiences a stream with topics may receive.
func (s *stream) audiences(topics map[string]struct{}) []Target {
	to := make([]Target, 0, 2+len(topics))
	to = append(to, Target{Kind: ToEveryone}, Target{Kind: ToClient, Name: s.info.ClientID})
	for t := range topics {
		to = append(to, Target{Kind: ToTopic, Name: t})
	}
	return to
}

// aheadWait bounds how long a stream waits for its hub's deliveries to
// reach its Last-Event-ID (see Broker.Replay's "ahead").
var aheadWait = 5 * time.Second // a variable for the tests

// stale returns the topics of a stream resuming from last whose run-time
// subscription its client may not have got the state of: those subscribed
// at a position last is not past (all of them, when last is not past the
// newest subscription the hub forgot). Without a PositionComparer, every
// one remembered.
func (h *Hub) stale(last string, reg registration) map[string]struct{} {
	if len(reg.subscribed) == 0 && reg.forgot == "" {
		return nil
	}
	order, _ := h.broker.(PositionComparer)
	past := func(p string) bool {
		if order == nil {
			return false
		}
		c, ok := order.ComparePositions(last, p)
		return ok && c > 0
	}
	out := make(map[string]struct{})
	if reg.forgot != "" && !past(reg.forgot) {
		for t := range reg.topics {
			out[t] = struct{}{}
		}
		return out
	}
	for t, p := range reg.subscribed {
		if !past(p) {
			out[t] = struct{}{}
		}
	}
	return out
}

// targets returns topics as targets.
func targets(topics map[string]struct{}) []Target {
	out := make([]Target, 0, len(topics))
	for t := range topics {
		out = append(out, Target{Kind: ToTopic, Name: t})
	}
	return out
}

// conflate keeps, of several messages of one state, only the newest.
func conflate(out []*envelope) []*envelope {
	newest := make(map[keyID]int)
	for i, m := range out {
		if m.Key != "" {
			newest[m.state()] = i
		}
	}
	kept := out[:0]
	for i, m := range out {
		if m.Key == "" || newest[m.state()] == i {
			kept = append(kept, m)
		}
	}
	clear(out[len(kept):])
	return kept
}

// awaitPast waits until the hub has delivered something after pos, and,
// when the Broker orders positions, until its deliveries have reached
// last; it reports whether they did before the deadline, the stream's end
// or ctx's. It reads the hub's position without a lock, so a crowd of
// streams waiting costs deliveries nothing; each asks the Broker again
// once, not at every delivery.
func (h *Hub) awaitPast(ctx context.Context, s *stream, pos, last string, deadline time.Time) bool {
	order, _ := h.broker.(PositionComparer)
	for {
		if cur := *h.lastPos.Load(); cur != pos {
			if order == nil {
				return true
			}
			if c, ok := order.ComparePositions(last, cur); !ok || c <= 0 {
				return true // reached, or of another epoch: ask the Broker
			}
		}
		if ctx.Err() != nil || s.isClosed() || time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rebase drops what is queued to a stream that has not started writing
// and returns the hub's position now: the stream then receives live every
// message after it, as if it had been registered there.
func (h *Hub) rebase(s *stream) string {
	h.walking.Lock() // no delivery runs: everything up to the position is queued
	defer h.walking.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	s.mu.Lock()
	clear(s.queue)
	s.queue, s.holes, s.bytes, s.keyed = s.queue[:0], 0, 0, nil
	if s.holding > 0 && !s.closed {
		// A run-time subscription's state, as of a position older than
		// the one the replay now reaches, would follow the replay: end
		// the stream instead; its client resumes (rare: a Subscribe while
		// the stream waits for this node to catch up).
		s.closed, s.reason = true, ReasonUnavailable
	}
	s.mu.Unlock()
	return *h.lastPos.Load()
}

// writeAll writes batch in chunks of about writeChunk bytes, each flushed,
// and always flushes at least once.
func (h *Hub) writeAll(s *stream, batch []*envelope) error {
	for {
		n, size := 0, 0
		for n < len(batch) && (n == 0 || size+len(batch[n].frame) <= writeChunk) {
			size += len(batch[n].frame)
			n++
		}
		if n == 0 {
			return s.flush()
		}
		if err := s.write(batch[:n]); err != nil {
			return err
		}
		batch = batch[n:]
		if len(batch) == 0 {
			return nil
		}
	}
}

// readReplay is Broker.Replay with envelopes: the in-memory broker's own,
// whose frames every stream shares, or a wrapped copy of another Broker's
// messages.
func (h *Hub) readReplay(ctx context.Context, after, until string, to []Target, fn func(*envelope) bool) (bool, string, error) {
	if h.mem != nil {
		return h.mem.replay(ctx, after, until, to, fn)
	}
	return h.broker.Replay(ctx, after, until, to, func(m *Message) bool { return fn(wrap(m)) })
}

// readSnapshot is Broker.Snapshot with envelopes, as readReplay.
func (h *Hub) readSnapshot(ctx context.Context, until string, to []Target, fn func(*envelope) bool) error {
	if h.mem != nil {
		return h.mem.snapshot(ctx, until, to, fn)
	}
	return h.broker.Snapshot(ctx, until, to, func(m *Message) bool { return fn(wrap(m)) })
}
