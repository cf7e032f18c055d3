package sse

import "time"

// beat is the hub's one heartbeat goroutine. Every half Config.Heartbeat it
// queues a comment to each stream that wrote nothing since the previous
// tick, so no stream stays silent much longer than Config.Heartbeat. It runs
// while the hub has streams: register starts it, and it returns when a tick
// finds none, or when Shutdown begins.
//
// The heartbeat is a lone comment line, ":" and a line feed, with no blank
// line after it: it ends no block, so no client dispatches anything for it
// (some hand the application an empty event for every blank line, comments
// only or not), and it moves no resume point. None needs moving: a stream
// on a quiet topic resumes exactly from an old Last-Event-ID as long as
// none of its audiences lost an event since (see Broker.Replay). Clients
// ignore a comment line wherever it falls, so it may begin the next event's
// block.
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
// the heartbeat stopped, when there are no streams left. It walks the
// streams without the hub's lock, as a delivery does, and tidies the
// registry's list of them (walkList), so that streams that left are not
// kept for long.
func (h *Hub) tick() bool {
	h.mu.Lock()
	if h.reg.n == 0 {
		h.heartbeat = false
		h.reg.all(true) // drops the streams that left
		h.mu.Unlock()
		return false
	}
	snap, fresh := h.reg.all(true)
	h.mu.Unlock()
	m := heartbeatMessage()
	var n uint64
	quick := quickDrains{h: h}
	for _, part := range [2][]*stream{snap, fresh} {
		for _, s := range part {
			if !s.wrote.Swap(false) && s.offer(m, &quick) {
				n++
			}
		}
	}
	quick.flush()
	h.stats.heartbeats.Add(n)
	return true
}
