package sse

import "time"

// beat is the hub's one heartbeat goroutine. Every half Config.Heartbeat it
// queues a comment to each stream that wrote nothing since the previous
// tick, so no stream stays silent much longer than Config.Heartbeat. It runs
// while the hub has streams: register starts it, and it returns when a tick
// finds none, or when Shutdown begins.
//
// The comment frame also carries an id-only block with the hub's current
// position. A stream that rarely receives events (a quiet topic) would
// otherwise keep an old Last-Event-ID that history may have dropped by the
// time it reconnects, and get a ResetEvent although it missed nothing. Every
// event the stream may receive up to that position is queued before the
// heartbeat, so moving its resume point there skips nothing.
func (h *Hub) beat() {
	defer h.track.done()
	t := time.NewTicker(h.cfg.Heartbeat / 2)
	defer t.Stop()
	for {
		select {
		case <-h.done:
			h.mu.Lock()
			h.heartbeat = false
			h.mu.Unlock()
			return
		case <-t.C:
		}
		if !h.tick() {
			return
		}
	}
}

// tick queues heartbeats to idle streams. It reports false, having marked
// the heartbeat stopped, when there are no streams left.
func (h *Hub) tick() bool {
	// The write lock keeps deliveries out, so every message up to the
	// current position has been queued to the streams it is for, and none
	// is queued after the heartbeat that it should precede.
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reg.all) == 0 {
		h.heartbeat = false
		return false
	}
	m := heartbeatMessage(*h.lastPos.Load())
	var n uint64
	for _, s := range h.reg.all {
		if !s.wrote.Swap(false) && s.enqueue(m) {
			n++
		}
	}
	h.stats.heartbeats.Add(n)
	return true
}

// heartbeatMessage builds the heartbeat frame: a comment, plus an id-only
// block when the hub has delivered anything.
func heartbeatMessage(pos string) *Message {
	b := []byte(":\n")
	if pos != "" {
		b = appendIDLine(b, pos)
	}
	m := control(b, '\n')
	m.heartbeat = true
	return m
}
