package sse

// registry indexes the open streams: all of them, by client ID and by topic.
// The hub guards it with its mutex; deliveries read it under the read lock.
type registry struct {
	all     []*stream
	byID    map[string][]*stream
	byTopic map[string]map[*stream]struct{}
	byAddr  map[string]int // streams per remote address (stream.addr)
}

func newRegistry() registry {
	return registry{
		byID:    make(map[string][]*stream),
		byTopic: make(map[string]map[*stream]struct{}),
		byAddr:  make(map[string]int),
	}
}

func (r *registry) add(s *stream) {
	s.index = len(r.all)
	r.all = append(r.all, s)
	r.byID[s.info.ClientID] = append(r.byID[s.info.ClientID], s)
	r.byAddr[s.addr]++
	for t := range s.topics {
		r.subscribe(s, t)
	}
}

func (r *registry) remove(s *stream) {
	last := len(r.all) - 1
	r.all[s.index] = r.all[last]
	r.all[s.index].index = s.index
	r.all[last] = nil
	r.all = r.all[:last]
	if len(r.all) == 0 {
		r.all = nil // let a drained hub give back its memory
	}

	peers := r.byID[s.info.ClientID]
	for i, p := range peers {
		if p == s {
			peers[i] = peers[len(peers)-1]
			peers[len(peers)-1] = nil
			peers = peers[:len(peers)-1]
			break
		}
	}
	if len(peers) == 0 {
		delete(r.byID, s.info.ClientID)
	} else {
		r.byID[s.info.ClientID] = peers
	}
	for t := range s.topics {
		r.unsubscribe(s, t)
	}
	if r.byAddr[s.addr]--; r.byAddr[s.addr] <= 0 {
		delete(r.byAddr, s.addr)
	}
}

// subscribe adds topic to s; it is a no-op if s already has it.
func (r *registry) subscribe(s *stream, topic string) {
	if s.topics == nil {
		s.topics = make(map[string]struct{})
	}
	s.topics[topic] = struct{}{}
	set := r.byTopic[topic]
	if set == nil {
		set = make(map[*stream]struct{})
		r.byTopic[topic] = set
	}
	set[s] = struct{}{}
}

// unsubscribe removes topic from s, if it has it.
func (r *registry) unsubscribe(s *stream, topic string) {
	delete(s.topics, topic)
	set := r.byTopic[topic]
	delete(set, s)
	if len(set) == 0 {
		delete(r.byTopic, topic)
	}
}

// registration is what a stream's start covers, as of its registration.
type registration struct {
	pos        string              // the position of the last message delivered before: s receives every later one live
	topics     map[string]struct{} // a copy of its topics (topics added later get their state from Subscribe)
	subscribed map[string]string   // of those, the ones its client subscribed to at run time, and where
	forgot     string              // where the newest run-time subscription the hub forgot took effect
}

// register adds s to the registry unless the hub is closed or a limit is
// reached, in which case it says why.
func (h *Hub) register(s *stream) (reg registration, refusal string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return reg, "hub closing"
	case h.cfg.MaxStreams > 0 && len(h.reg.all) >= h.cfg.MaxStreams:
		return reg, "MaxStreams reached"
	case h.cfg.MaxStreamsPerClient > 0 && len(h.reg.byID[s.info.ClientID]) >= h.cfg.MaxStreamsPerClient:
		return reg, "MaxStreamsPerClient reached"
	case h.cfg.MaxStreamsPerAddress > 0 && h.reg.byAddr[s.addr] >= h.cfg.MaxStreamsPerAddress:
		return reg, "MaxStreamsPerAddress reached"
	}
	h.reg.add(s)
	h.track.add(1)
	if !h.heartbeat && h.cfg.Heartbeat > 0 {
		h.heartbeat = true
		h.track.add(1)
		go h.beat()
	}
	reg.topics = make(map[string]struct{}, len(s.topics))
	for t := range s.topics {
		reg.topics[t] = struct{}{}
	}
	reg.subscribed, reg.forgot = h.subs.since(s.info.ClientID, reg.topics)
	reg.pos = *h.lastPos.Load()
	return reg, ""
}

func (h *Hub) unregister(s *stream) {
	s.close(ReasonClientGone) // nothing more is queued to it
	h.mu.Lock()
	h.reg.remove(s)
	h.mu.Unlock()
}
