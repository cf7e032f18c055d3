package sse

import (
	"net/http"
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
	StartReset
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
	}
	return "unknown"
}

// plan decides what a registered stream receives before its live events,
// which start after pos, the position it was registered at:
//
//   - with a Last-Event-ID, the events it missed, up to pos (its live queue
//     holds everything after pos, so there is no gap and no duplicate); or,
//     when history cannot cover the gap, one ResetEvent;
//   - without one, or after a reset, the snapshot: the newest event of
//     every key, up to pos;
//   - an id-only block setting the client's resume point to pos, so that a
//     reconnect resumes from here even if no event reached the stream.
//
// It runs before OnConnect, so the hook knows how the stream starts.
func (h *Hub) plan(s *stream, r *http.Request, pos string) (StartKind, []*Message) {
	topics := h.topicsOf(s)
	kind, resumed := StartFresh, ""
	var batch []*Message
	if last := s.info.LastEventID; last != "" {
		missed, ok, why, err := h.missed(s, r, topics, last, pos)
		if err != nil && r.Context().Err() == nil {
			h.log.Warn("sse: replay failed", "client", s.clientID, "last_event_id", cut(last), "err", err)
			ok, why = false, "unavailable"
		}
		if ok {
			kind, resumed = StartResumed, last
			h.stats.replays.Add(1)
			batch = missed
			if len(missed) > 0 {
				resumed = missed[len(missed)-1].Pos
			}
		} else {
			kind = StartReset
			h.stats.resets.Add(1)
			h.log.Info("sse: cannot resume, sending reset", "client", s.clientID, "last_event_id", cut(last), "reason", why)
			batch = append(batch, control(resetFrame(pos, why)))
		}
	}
	if kind != StartResumed {
		snap := h.snapshot(s, r, topics, pos)
		if len(snap) > 0 {
			h.stats.snapshots.Add(1)
			batch = append(batch, snap...)
			resumed = ""
		} else if kind == StartReset {
			resumed = pos // the reset frame carries pos
		}
	}
	if pos != "" && resumed != pos {
		batch = append(batch, control(appendIDLine(nil, pos), '\n'))
	}
	return kind, batch
}

// start writes the planned batch. It returns false, with the reason, if the
// stream ended meanwhile.
func (h *Hub) start(s *stream, r *http.Request, batch []*Message) (DisconnectReason, bool) {
	if err := h.writeAll(s, batch); err != nil {
		return h.startFailed(s, r, err), false
	}
	return 0, true
}

// topicsOf returns a copy of the stream's topics.
func (h *Hub) topicsOf(s *stream) map[string]struct{} {
	h.mu.RLock()
	defer h.mu.RUnlock()
	topics := make(map[string]struct{}, len(s.topics))
	for t := range s.topics {
		topics[t] = struct{}{}
	}
	return topics
}

// snapshot returns the newest keyed message of every key, up to pos, that s
// may receive, in position order.
func (h *Hub) snapshot(s *stream, r *http.Request, topics map[string]struct{}, pos string) []*Message {
	var out []*Message
	err := h.broker.Snapshot(r.Context(), pos, func(m *Message) bool {
		if s.entitled(m, topics) {
			m.buildFrame()
			out = append(out, m)
		}
		return true
	})
	if err != nil && r.Context().Err() == nil {
		h.log.Warn("sse: snapshot failed", "client", s.clientID, "err", err)
	}
	return out
}

// startFailed says why a stream ended while start was writing.
func (h *Hub) startFailed(s *stream, r *http.Request, err error) DisconnectReason {
	if r.Context().Err() != nil {
		return s.close(ReasonClientGone)
	}
	reason := s.close(ReasonWriteFailed) // or ReasonSlow, if that came first
	h.log.Warn("sse: stream ended", "client", s.clientID, "reason", reason, "err", err)
	return reason
}

// missed returns the messages after last, up to pos, that s may receive,
// conflated: of several events of one state (one Key for one audience)
// only the newest is kept.
func (h *Hub) missed(s *stream, r *http.Request, topics map[string]struct{}, last, pos string) ([]*Message, bool, string, error) {
	var out []*Message
	keyed := false
	ok, why, err := h.broker.Replay(r.Context(), last, pos, func(m *Message) bool {
		if s.entitled(m, topics) {
			m.buildFrame()
			out = append(out, m)
			keyed = keyed || m.Key != ""
		}
		return !s.isClosed()
	})
	if !ok || err != nil || !keyed {
		return out, ok, why, err
	}
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
	return kept, true, "", nil
}

// writeAll writes batch in chunks of about writeChunk bytes, each flushed,
// and always flushes at least once.
func (h *Hub) writeAll(s *stream, batch []*Message) error {
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

// control wraps hub-made bytes (retry, reset, id-only blocks) as a message
// that never enters history.
func control(frame []byte, more ...byte) *Message {
	return &Message{frame: append(frame, more...)}
}

// resetFrame builds the ResetEvent frame: its id moves the client's resume
// point to pos, its data is the reason.
func resetFrame(pos, why string) []byte {
	b := appendIDLine(nil, pos)
	b = append(b, "event: "+ResetEvent+"\ndata: "...)
	b = append(b, why...)
	return append(b, '\n', '\n')
}
