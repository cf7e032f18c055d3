package sse

// deliveries is the BrokerHandler a Hub gives its Broker: the broker's
// news, one method per kind. It is a type of its own so that the Hub's
// method set stays the application's API.
type deliveries struct{ h *Hub }

// HandleMessage queues a broker's message to the streams it is for.
func (d deliveries) HandleMessage(m *Message) { d.h.deliver(wrap(m)) }

// HandleGap ends every stream: see Hub.gap.
func (d deliveries) HandleGap(pos string) { d.h.gap(pos) }

// HandleEpoch moves the hub to a new lineage: see Hub.epoch.
func (d deliveries) HandleEpoch(pos string) { d.h.epoch(pos) }

// HandleDisconnect ends the client's streams on this hub: a Disconnect
// made on another node (see ControlBroker).
func (d deliveries) HandleDisconnect(clientID string) { d.h.disconnect(clientID) }

// deliver queues m to the streams it is for. The broker calls it in
// position order, one message at a time. It takes the streams to walk
// under the hub's lock, with the position stored, and walks them without
// it: a stream that registers meanwhile is registered at m's position or
// later, so it gets m from its start, not live (see Hub.register). What
// must see no delivery half done (Subscribe, rebase) holds h.walking.
func (h *Hub) deliver(m *envelope) {
	h.walking.Lock()
	defer h.walking.Unlock()
	n := 0
	var snap, fresh []*stream
	h.mu.Lock()
	switch m.To.Kind {
	case ToEveryone:
		snap, fresh = h.reg.all(false)
	case ToTopic:
		snap, fresh = h.reg.topic(m.To.Name)
	case ToClient:
		// A client's few streams (MaxStreamsPerClient), under the lock.
		for _, s := range h.reg.byID[m.To.Name] {
			if s.enqueue(m) {
				n++
			}
		}
	}
	h.lastPos.Store(&m.Pos)
	h.mu.Unlock()
	quick := quickDrains{h: h}
	for _, part := range [2][]*stream{snap, fresh} {
		for _, s := range part {
			if s.offer(m, &quick) { // refused by a stream that left
				n++
			}
		}
	}
	quick.flush()
	m.queued = n
	h.stats.queued.Add(uint64(n))
}

// gap handles a Broker's report that messages before pos were lost to
// this hub: every stream open now ends once it has written what it was
// queued, so that its client resumes from what it really received. A
// stream that registers afterwards starts at pos.
func (h *Hub) gap(pos string) {
	h.walking.Lock()
	defer h.walking.Unlock()
	h.mu.Lock() // no stream registers meanwhile: each is ended, or starts at pos
	streams := h.reg.streams()
	if pos != "" {
		h.lastPos.Store(&pos)
	}
	h.mu.Unlock()
	h.stats.gaps.Add(1)
	h.log.Error("sse: the Broker lost deliveries to this hub: ending every stream, so that clients resume exactly",
		"streams", len(streams), "after", pos)
	for _, s := range streams {
		s.close(ReasonUnavailable)
	}
}

// epoch handles a Broker's report that its positions start a new lineage
// at pos with nothing lost to this hub's streams: streams that register
// from now on are told positions of the new epoch and get its snapshot.
func (h *Hub) epoch(pos string) {
	h.walking.Lock()
	defer h.walking.Unlock()
	h.mu.Lock()
	if pos != "" {
		h.lastPos.Store(&pos)
	}
	h.mu.Unlock()
	h.stats.epochs.Add(1)
	h.log.Warn("sse: the Broker started a new epoch", "at", pos)
}
