package sse

import (
	"net/http"
)

// start writes what a registered stream receives before its live events
// (open has sent its headers and reconnection time):
//
//   - with a Last-Event-ID, the events it missed, up to pos, the position
//     the stream went live at (its live queue holds everything after pos,
//     so there is no gap and no duplicate); or, when history cannot cover
//     the gap, one ResetEvent;
//   - an id-only block setting the client's resume point to pos, so that a
//     reconnect resumes from here even if no event reached the stream.
//
// It returns false, with the reason, if the stream ended meanwhile.
func (h *Hub) start(s *stream, r *http.Request, pos string) (DisconnectReason, bool) {
	var batch []*Message
	resumed := ""
	if last := s.info.LastEventID; last != "" {
		missed, ok, why, err := h.missed(s, r, last, pos)
		if err != nil && r.Context().Err() != nil {
			return ReasonClientGone, false
		}
		if err != nil {
			h.log.Warn("sse: replay failed", "client", s.clientID, "last_event_id", last, "err", err)
			ok, why = false, "unavailable"
		}
		if ok {
			h.stats.replays.Add(1)
			batch = append(batch, missed...)
			resumed = last
			if len(missed) > 0 {
				resumed = missed[len(missed)-1].Pos
			}
		} else {
			h.stats.resets.Add(1)
			h.log.Info("sse: cannot resume, sending reset", "client", s.clientID, "last_event_id", last, "reason", why)
			batch = append(batch, control(resetFrame(pos, why)))
			resumed = pos
		}
	}
	if pos != "" && resumed != pos {
		batch = append(batch, control(appendIDLine(nil, pos), '\n'))
	}
	if err := h.writeAll(s, batch); err != nil {
		return h.startFailed(s, r, err), false
	}
	return 0, true
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
// conflated: of several events with one Key only the newest is kept.
func (h *Hub) missed(s *stream, r *http.Request, last, pos string) ([]*Message, bool, string, error) {
	h.mu.RLock()
	topics := make(map[string]struct{}, len(s.topics))
	for t := range s.topics {
		topics[t] = struct{}{}
	}
	h.mu.RUnlock()
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
	newest := make(map[string]int)
	for i, m := range out {
		if m.Key != "" {
			newest[m.Key] = i
		}
	}
	kept := out[:0]
	for i, m := range out {
		if m.Key == "" || newest[m.Key] == i {
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
			return s.rc.Flush()
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
