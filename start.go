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

// A stream's start is what it receives before its live events, which begin
// after pos, the position it was registered at:
//
//   - with a Last-Event-ID, the events it missed, up to pos (its live queue
//     holds everything after pos, so there is no gap and no duplicate); or,
//     when history cannot cover the gap, one ResetEvent;
//   - without one, or after a reset, the snapshot: the newest event of
//     every state it may see, up to pos; after a reset because the id is
//     of an earlier epoch (the process restarted), every event of the
//     current epoch it may receive instead, when history holds them all
//     (they hold every state too);
//   - then a PositionEvent setting the client's resume point to pos, so
//     that a reconnect resumes from here even if no event reached the
//     stream. A resumed stream needs none: its client's Last-Event-ID
//     resumes exactly as long as nothing it may receive is lost, unless it
//     got topic state instead of a replay (see Hub.Subscribe), which
//     history does not hold.
//
// A start that cannot be written whole (the stream ended meanwhile, the
// Broker failed) gets no PositionEvent, since a resume point must never
// pass an event the stream is entitled to and did not get, and the stream
// ends once what it got is written. OnConnect is called before anything
// is written, with the kind of start; a stream that cannot start at all
// (a failed replay) is StartUnavailable and writes no event.
//
// The start is written a page at a time as it is read from the Broker
// (startPage), so that what a starting stream holds is bounded however
// long the history: a Broker other than the in-memory one hands the hub a
// private copy of each message. The in-memory broker's frames are shared
// by every stream, so its start is gathered whole, and conflated whole.

// startPage bounds the bytes of frames a starting stream gathers before it
// writes them, with a Broker whose messages are private copies: well
// under a stream's queue (Config.QueueBytes), however long its start.
const startPage = 64 << 10

// opening is a stream's start being written: OnConnect, the headers, then
// the frames it begins with, a page at a time.
type opening struct {
	h     *Hub
	s     *stream
	r     *http.Request
	info  *StreamInfo
	limit int // the bytes of a page; 0 gathers the whole start

	began     time.Time // when the stream's handler began
	serverCut time.Time // when http.Server.WriteTimeout cuts a stream whose writer takes no deadline; zero if never (see Hub.open)

	page  []*envelope
	bytes int
	begun bool // OnConnect was called and the headers written (or failed)
	wrote bool // a page went out

	failed   bool             // the stream is over: reason says why
	reason   DisconnectReason // with failed
	panicked any              // a panic of OnConnect's, raised again once the Broker call returns
}

// add gathers e for the stream, which begins as kind. A full page is
// written first. It reports false when the stream cannot go on.
func (op *opening) add(e *envelope, kind StartKind) bool {
	if op.limit > 0 && op.bytes > 0 && op.bytes+len(e.frame) > op.limit && !op.flush(kind) {
		return false
	}
	op.page = append(op.page, e)
	op.bytes += len(e.frame)
	return true
}

// flush begins the stream as kind, if it has not begun, and writes what was
// gathered, conflated. It reports false when the stream cannot go on.
func (op *opening) flush(kind StartKind) bool {
	if !op.begin(kind) {
		return false
	}
	if len(op.page) == 0 {
		return true
	}
	err := op.h.writeAll(op.s, conflate(op.page))
	clear(op.page)
	op.page, op.bytes, op.wrote = op.page[:0], 0, true
	if err != nil {
		op.fail(op.h.startFailed(op.s, op.r, err))
		return false
	}
	return true
}

// begin calls OnConnect with kind and writes the stream's headers, once.
// It may run inside a Broker's Replay or Snapshot (a page is full): a
// panic in OnConnect is then held until the Broker call has returned (see
// Hub.writeStart), so that it never unwinds through the broker.
func (op *opening) begin(kind StartKind) bool {
	if op.begun {
		return !op.failed
	}
	op.begun = true
	h, s := op.h, op.s
	op.info.Start = kind
	h.log.Debug("sse: stream started", "client", s.info.ClientID, "start", kind, "last_event_id", cut(s.info.LastEventID))
	s.connected = true // from here OnDisconnect pairs with OnConnect, even if it panics
	if h.cfg.OnConnect != nil {
		func() {
			defer func() {
				if p := recover(); p != nil {
					op.panicked = p
				}
			}()
			h.hook(func() { h.cfg.OnConnect(*op.info) })
		}()
		if op.panicked != nil {
			op.failed, op.reason = true, ReasonClientGone
			return false
		}
	}
	if err := h.open(s, h.cfg.Retry, op); err != nil {
		op.fail(h.startFailed(s, op.r, err))
		return false
	}
	return true
}

// fail marks the start over, for reason.
func (op *opening) fail(reason DisconnectReason) {
	op.failed, op.reason = true, reason
}

// finish writes what is left of a start of kind and says whether the
// stream goes live: only when its start is whole.
func (op *opening) finish(kind StartKind, whole bool) (DisconnectReason, bool) {
	if !op.flush(kind) {
		return op.reason, false
	}
	if !whole {
		return op.s.close(ReasonUnavailable), false // or why it had ended already
	}
	return 0, true
}

// unavailable ends a stream that cannot start now, having written nothing
// but its headers: its client retries with the same Last-Event-ID. Once
// pages went out (a Broker that failed half way), the stream ends after
// them: its client resumes from the last event it got.
func (op *opening) unavailable() (DisconnectReason, bool) {
	if !op.wrote {
		clear(op.page)
		op.page, op.bytes = op.page[:0], 0
	}
	return op.finish(StartUnavailable, false)
}

// writeStart writes s's start (see above) and says whether the stream goes
// live, or why it ended.
func (h *Hub) writeStart(op *opening, reg registration) (reason DisconnectReason, live bool) {
	defer func() {
		if p := op.panicked; p != nil {
			op.panicked = nil
			panic(p) // OnConnect's, now that no Broker call is under way
		}
	}()
	s, ctx := op.s, op.r.Context()
	pos, topics := reg.pos, reg.topics
	to := s.audiences(topics)
	kind, why := StartFresh, ""
	if last := s.info.LastEventID; last != "" {
		var done bool
		if why, reason, live, done = h.resume(op, ctx, to, reg, last, &pos); done {
			return reason, live
		}
		kind = StartReset
	}
	if kind == StartReset {
		op.add(control(resetFrame("", why)), kind) // or with pos as its id, if nothing follows
	}
	entries, whole := 0, true
	gather := func(m *envelope) bool {
		if s.isClosed() {
			whole = false
			return false
		}
		if s.entitled(m, topics) {
			entries++
			if !op.add(m, kind) {
				whole = false
				return false
			}
		}
		return true
	}
	replayed := false
	if why == "epoch" {
		// A client of an earlier epoch (a restart: a deploy) missed at
		// least everything of this one: replay it all, when history holds
		// it, rather than only its state.
		if origin, can := h.epochOrigin(pos); can {
			ok, _, err := h.readReplay(ctx, origin, pos, to, gather)
			switch {
			case err != nil:
				return h.startBrokeDown(op, err)
			case ok:
				replayed = true
				h.stats.epochReplays.Add(1)
			}
		}
	}
	if !replayed {
		if err := h.readSnapshot(ctx, pos, to, gather); err != nil {
			return h.startBrokeDown(op, err)
		}
		if entries > 0 {
			h.stats.snapshots.Add(1)
		}
	}
	if kind == StartReset {
		h.stats.countReset(why)
		h.log.Info("sse: cannot resume, sending reset", "client", s.info.ClientID, "last_event_id", cut(s.info.LastEventID), "reason", why)
		if entries == 0 && whole && !op.wrote {
			// Nothing follows the reset: it carries the position itself.
			// (When something does, its id must not move the client's
			// resume point: a start cut short leaves the client with its
			// unusable id, so that it is reset, and sent all, again.)
			op.page[0] = control(resetFrame(pos, why))
			return op.finish(kind, true)
		}
	}
	if whole && pos != "" {
		op.add(control(positionFrame(pos)), kind)
	}
	return op.finish(kind, whole)
}

// startBrokeDown ends a start the Broker failed: before anything was
// written, the stream is StartUnavailable and its client retries with
// what it has; after, the stream ends after what it got.
func (h *Hub) startBrokeDown(op *opening, err error) (DisconnectReason, bool) {
	if op.r.Context().Err() == nil {
		h.stats.replayFailures.Add(1)
		h.log.Warn("sse: the Broker failed a stream's start, ending the stream so that its client retries",
			"client", op.s.info.ClientID, "last_event_id", cut(op.s.info.LastEventID), "err", err)
	}
	return op.unavailable()
}

// resume writes the replay of what s missed since last, up to pos, when
// history covers it. done says whether the start is over: resumed (live
// then says whether the stream goes live), or ended; when it is not, why
// says why the stream must be reset. When last is ahead of pos (a
// position this hub has not been delivered yet), it waits for the hub's
// deliveries to reach it, registers s afresh at the new position, which
// it stores in pos, and asks again, until aheadWait ends.
func (h *Hub) resume(op *opening, ctx context.Context, to []Target, reg registration, last string, pos *string) (why string, reason DisconnectReason, live, done bool) {
	s, topics := op.s, reg.topics
	stale := h.stale(last, reg)
	giveUp := time.Now().Add(aheadWait)
	for {
		if len(stale) > 0 {
			// The state of topics subscribed at run time since last, which
			// history does not hold, comes first (see Hub.Subscribe); the
			// replay skips their keyed events, which it replaces.
			state, err := h.topicState(ctx, targets(stale), *pos)
			if err != nil {
				reason, live = h.startBrokeDown(op, err)
				return "", reason, live, true
			}
			op.page = append(op.page, idless(state)...) // small: a state per key of those topics
		}
		whole := true
		ok, why, err := h.readReplay(ctx, last, *pos, to, func(m *envelope) bool {
			if s.isClosed() {
				whole = false
				return false
			}
			if _, skip := stale[m.To.Name]; skip && m.To.Kind == ToTopic && m.Key != "" {
				return true
			}
			if s.entitled(m, topics) && !op.add(m, StartResumed) {
				whole = false
				return false
			}
			return true
		})
		switch {
		case err != nil:
			// Nothing says anything was lost: end the stream before
			// anything moves the client's resume point, and let it try
			// again, rather than reset a client that may have missed
			// nothing.
			reason, live = h.startBrokeDown(op, err)
			return "", reason, live, true
		case ok:
			h.stats.replays.Add(1)
			if whole && len(stale) > 0 && *pos != "" {
				// The state has no ids, and the replay skipped the
				// topics' keyed events it replaces: move the client past
				// them, or its next resume would bring them again.
				op.add(control(positionFrame(*pos)), StartResumed)
			}
			reason, live = op.finish(StartResumed, whole)
			return "", reason, live, true
		}
		clear(op.page) // the topics' state, read for a resume that is not one
		op.page, op.bytes = op.page[:0], 0
		if why != "ahead" {
			return why, 0, false, false
		}
		if !h.awaitPast(ctx, s, *pos, last, giveUp) {
			// This node did not catch up with the client in time: end the
			// stream before anything moves the client's resume point, and
			// let it try again.
			if ctx.Err() == nil {
				h.log.Warn("sse: the Last-Event-ID is ahead of this hub's deliveries", "client", s.info.ClientID, "last_event_id", cut(last))
			}
			reason, live = op.unavailable()
			return "", reason, live, true
		}
		*pos = h.rebase(s)
	}
}

// epochOrigin returns where pos's epoch began, if the Broker can tell.
func (h *Hub) epochOrigin(pos string) (string, bool) {
	if h.mem != nil {
		return h.mem.EpochOrigin(pos)
	}
	if eo, ok := h.broker.(EpochOrigin); ok {
		return eo.EpochOrigin(pos)
	}
	return "", false
}

// startFailed says why a stream ended while its start was written.
func (h *Hub) startFailed(s *stream, r *http.Request, err error) DisconnectReason {
	if r.Context().Err() != nil {
		return s.close(ReasonClientGone)
	}
	reason := s.close(ReasonWriteFailed) // or ReasonSlow, if that came first
	h.log.Warn("sse: stream ended", "client", s.info.ClientID, "reason", reason, "err", err)
	return reason
}
