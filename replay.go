package sse

import (
	"context"
	"net/http"
	"time"
)

// StartKind says how a stream began, as seen by Config.OnConnect.
type StartKind uint8

// The ways a stream begins.
const (
	// StartFresh: the request carried no Last-Event-ID. The stream receives
	// the snapshot of keyed events (see Event.Key), then live events.
	StartFresh StartKind = iota
	// StartResumed: the stream receives the events it missed since its
	// Last-Event-ID, then live events. Its client has the rest of the state.
	StartResumed
	// StartReset: its Last-Event-ID could not be resumed. The stream
	// receives a ResetEvent, the snapshot of keyed events, then live events.
	// When the Last-Event-ID is of an earlier epoch (a restart of the
	// process: a deploy), the ResetEvent is followed by every event of the
	// current epoch the stream may receive, when history still holds them
	// (it holds every state too), instead of the snapshot: a restart loses
	// only what the earlier process never delivered.
	StartReset
	// StartUnavailable: the stream cannot start now: the Broker failed to
	// replay its Last-Event-ID or to read its snapshot, or (with several nodes) this hub's
	// deliveries did not reach that position in time, or the client left
	// while its replay was read. It ends before it writes an event
	// (OnDisconnect follows with ReasonUnavailable, or ReasonClientGone),
	// and its client retries with the same Last-Event-ID.
	StartUnavailable
)

// String returns the kind in a word.
func (k StartKind) String() string {
	switch k {
	case StartFresh:
		return "fresh"
	case StartResumed:
		return "resumed"
	case StartReset:
		return "reset"
	case StartUnavailable:
		return "unavailable"
	}
	return "unknown"
}

// plan decides what a registered stream receives before its live events,
// which start after pos, the position it was registered at with topics:
//
//   - with a Last-Event-ID, the events it missed, up to pos (its live queue
//     holds everything after pos, so there is no gap and no duplicate); or,
//     when history cannot cover the gap, one ResetEvent;
//   - without one, or after a reset, the snapshot: the newest event of
//     every state it may see, up to pos;
//   - then a PositionEvent setting the client's resume point to
//     pos, so that a reconnect resumes from here even if no event reached
//     the stream. A resumed stream needs none, its client's Last-Event-ID
//     resumes exactly as long as nothing it may receive is lost, unless it
//     got topic state instead of a replay (see below).
//
// whole is false when the start could not be collected up to pos (the
// stream ended meanwhile, the Broker failed): then the batch has no
// PositionEvent, since a resume point must never pass an event the
// stream is entitled to and did not get, and the stream must end once the
// batch is written. plan runs before OnConnect, so the hook knows how the
// stream starts.
//
// A resume from before a run-time subscription of one of its topics (see
// Hub.Subscribe) starts with that topic's state, which history does not
// hold, instead of the topic's keyed events.
//
// A reset because the Last-Event-ID is of an earlier epoch (the process
// restarted) is followed, instead of the snapshot, by every event of the
// current epoch that the stream may receive, when the Broker can say
// where the epoch began (EpochOrigin) and history still holds all of them
// (see sinceOrigin).
func (h *Hub) plan(s *stream, r *http.Request, reg registration) (kind StartKind, batch []*envelope, whole bool) {
	ctx := r.Context()
	pos, topics := reg.pos, reg.topics
	to := s.audiences(topics)
	kind, whole = StartFresh, true
	why := "" // the reason of a reset
	if last := s.info.LastEventID; last != "" {
		var missed []*envelope
		var ok, complete bool
		var err error
		stale := h.stale(last, reg)
		missed, ok, why, complete, err = h.missed(ctx, s, to, topics, stale, last, &pos)
		switch {
		case err != nil && ctx.Err() != nil:
			return StartUnavailable, nil, false // the client left
		case err != nil:
			// Nothing says anything was lost: end the stream before
			// anything moves the client's resume point, and let it try
			// again, rather than reset a client that may have missed
			// nothing.
			h.stats.replayFailures.Add(1)
			h.log.Warn("sse: replay failed, ending the stream so that its client retries", "client", s.info.ClientID, "last_event_id", cut(last), "err", err)
			return StartUnavailable, nil, false
		case !ok && why == "ahead":
			// This node did not catch up with the client in time: end the
			// stream before anything moves the client's resume point, and
			// let it try again.
			h.log.Warn("sse: the Last-Event-ID is ahead of this hub's deliveries", "client", s.info.ClientID, "last_event_id", cut(last))
			return StartUnavailable, nil, false
		}
		if ok {
			h.stats.replays.Add(1)
			if len(stale) > 0 {
				state, err := h.topicState(ctx, targets(stale), pos)
				if err != nil {
					complete = false
					if ctx.Err() == nil {
						h.log.Warn("sse: the state of subscribed topics could not be read", "client", s.info.ClientID, "err", err)
					}
				}
				missed = append(idless(state), missed...)
				// The state has no ids, and the replay skipped the
				// topics' keyed events it replaces: move the client past
				// them, or its next resume would bring them again.
				if complete && pos != "" {
					missed = append(missed, control(positionFrame(pos)))
				}
			}
			return StartResumed, missed, complete
		}
		kind = StartReset
	}
	var snap []*envelope
	replayed := false
	if why == "epoch" {
		// A client of an earlier epoch (a restart: a deploy) missed at
		// least everything of this one: replay it all, when history holds
		// it, rather than only its state.
		var complete bool
		if snap, replayed, complete = h.sinceOrigin(ctx, s, to, topics, &pos); replayed {
			whole = complete
		}
	}
	if !replayed {
		var err error
		snap, err = h.snapshot(ctx, s, to, topics, pos)
		if err != nil {
			// Nothing is written, not even a reset: the client retries
			// with what it has, and gets all of its start then.
			if ctx.Err() == nil {
				h.stats.replayFailures.Add(1)
				h.log.Warn("sse: snapshot failed, ending the stream so that its client retries", "client", s.info.ClientID, "err", err)
			}
			return StartUnavailable, nil, false
		}
		if len(snap) > 0 {
			h.stats.snapshots.Add(1)
		}
	}
	if kind == StartReset {
		h.stats.countReset(why)
		h.log.Info("sse: cannot resume, sending reset", "client", s.info.ClientID, "last_event_id", cut(s.info.LastEventID), "reason", why)
		// The reset's id moves the client's resume point only when nothing
		// follows it: a snapshot cut short must leave the client with its
		// unusable id, so that it is reset (and gets the snapshot) again.
		if len(snap) == 0 && whole {
			return kind, append(batch, control(resetFrame(pos, why))), whole
		}
		batch = append(batch, control(resetFrame("", why)))
	}
	batch = append(batch, snap...)
	if whole && pos != "" {
		batch = append(batch, control(positionFrame(pos)))
	}
	return kind, batch, whole
}

// sinceOrigin returns the messages s may receive from the start of pos's
// epoch up to pos, conflated, and whether history could give them all
// (ok): a replay from the epoch's origin. It holds every state the
// snapshot would, so it takes its place. whole is false when the stream
// ended while they were collected.
func (h *Hub) sinceOrigin(ctx context.Context, s *stream, to []Target, topics map[string]struct{}, pos *string) (out []*envelope, ok, whole bool) {
	var origin string
	if h.mem != nil {
		origin, ok = h.mem.EpochOrigin(*pos)
	} else if eo, can := h.broker.(EpochOrigin); can {
		origin, ok = eo.EpochOrigin(*pos)
	}
	if !ok {
		return nil, false, false
	}
	out, ok, _, whole, err := h.missed(ctx, s, to, topics, nil, origin, pos)
	if err != nil || !ok {
		return nil, false, false
	}
	h.stats.epochReplays.Add(1)
	return out, true, whole
}

// start writes the planned batch. It returns false, with the reason, if the
// stream ended meanwhile, or if the batch is not whole.
func (h *Hub) start(s *stream, r *http.Request, batch []*envelope, whole bool) (DisconnectReason, bool) {
	if err := h.writeAll(s, batch); err != nil {
		return h.startFailed(s, r, err), false
	}
	if !whole {
		return s.close(ReasonUnavailable), false // or why it had ended already
	}
	return 0, true
}

// audiences lists the audiences a stream with topics may receive.
func (s *stream) audiences(topics map[string]struct{}) []Target {
	to := make([]Target, 0, 2+len(topics))
	to = append(to, Target{Kind: ToEveryone}, Target{Kind: ToClient, Name: s.info.ClientID})
	for t := range topics {
		to = append(to, Target{Kind: ToTopic, Name: t})
	}
	return to
}

// snapshot returns the newest keyed message of every state, up to pos, that
// s may receive, in position order.
func (h *Hub) snapshot(ctx context.Context, s *stream, to []Target, topics map[string]struct{}, pos string) ([]*envelope, error) {
	var out []*envelope
	err := h.readSnapshot(ctx, pos, to, func(m *envelope) bool {
		if s.entitled(m, topics) {
			out = append(out, m)
		}
		return true
	})
	return out, err
}

// startFailed says why a stream ended while start was writing.
func (h *Hub) startFailed(s *stream, r *http.Request, err error) DisconnectReason {
	if r.Context().Err() != nil {
		return s.close(ReasonClientGone)
	}
	reason := s.close(ReasonWriteFailed) // or ReasonSlow, if that came first
	h.log.Warn("sse: stream ended", "client", s.info.ClientID, "reason", reason, "err", err)
	return reason
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

// missed returns the messages after last, up to pos, that s may receive,
// but for the keyed ones of the topics in stale (whose state the stream
// gets instead), conflated: of several events of one state (one Key for
// one audience) only the newest is kept. complete says whether they are all of them: a
// stream that ends while they are collected stops the collection. When
// last is ahead of pos (a position this hub has not been delivered yet), it
// waits for the hub's deliveries to move on, registers s afresh at the new
// position, which it stores in pos, and asks again, until aheadWait ends.
func (h *Hub) missed(ctx context.Context, s *stream, to []Target, topics, stale map[string]struct{}, last string, pos *string) (out []*envelope, ok bool, why string, complete bool, err error) {
	giveUp := time.Now().Add(aheadWait)
	for {
		out, complete = out[:0], true
		keyed := false
		ok, why, err = h.readReplay(ctx, last, *pos, to, func(m *envelope) bool {
			if s.isClosed() {
				complete = false
				return false
			}
			if _, skip := stale[m.To.Name]; skip && m.To.Kind == ToTopic && m.Key != "" {
				return true
			}
			if s.entitled(m, topics) {
				out = append(out, m)
				keyed = keyed || m.Key != ""
			}
			return true
		})
		if err != nil {
			return out, ok, why, false, err
		}
		if ok {
			if keyed {
				out = conflate(out)
			}
			return out, true, "", complete, nil
		}
		if why != "ahead" || !h.awaitPast(ctx, s, *pos, giveUp) {
			return nil, false, why, false, nil
		}
		*pos = h.rebase(s)
	}
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

// awaitPast waits until the hub has delivered something after pos, and
// reports whether it did before the deadline, the stream's end or ctx's.
func (h *Hub) awaitPast(ctx context.Context, s *stream, pos string, deadline time.Time) bool {
	for *h.lastPos.Load() == pos {
		if ctx.Err() != nil || s.isClosed() || time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// rebase drops what is queued to a stream that has not started writing
// and returns the hub's position now: the stream then receives live every
// message after it, as if it had been registered there.
func (h *Hub) rebase(s *stream) string {
	h.mu.Lock() // no delivery runs: everything up to the position is queued
	defer h.mu.Unlock()
	s.mu.Lock()
	clear(s.queue)
	s.queue, s.holes, s.bytes, s.keyed = s.queue[:0], 0, 0, nil
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
