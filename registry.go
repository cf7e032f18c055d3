package sse

// registry indexes the open streams: all of them, by client ID and by topic.
// The hub guards it with its mutex. A delivery to everyone or to a topic
// takes the streams to walk under the mutex (walkList.take: a few slice
// headers) and walks them without it, so that a broadcast to many streams
// keeps neither registration, nor the heartbeat, nor Stats waiting.
type registry struct {
	everyone walkList
	n        int // streams registered
	byID     map[string][]*stream
	byTopic  map[string]*topicStreams
	byAddr   map[string]int // with perAddr: streams per remote address (stream.addr)
	perAddr  bool           // Config.MaxStreamsPerAddress is set
}

// topicStreams are the streams subscribed to a topic: a set, for
// subscribing and unsubscribing, and a walkList, for deliveries.
type topicStreams struct {
	set  map[*stream]struct{}
	walk walkList
}

// walkList is a list of streams that walkers read without the hub's lock:
// slices that are never written to below their length once made. A
// stream that registers is appended to fresh; one that leaves stays where
// it is (counted in stale: it is closed, so a delivery to it is refused at
// once) until the list is rebuilt, at a walk, once a quarter of it has
// left, or at the next heartbeat tick, so that what registering and
// leaving cost does not grow with the number of streams, nor does a
// broadcast copy the list under connect churn. A stream that stays but
// leaves a topic (Unsubscribe) must not be walked: its list is rebuilt
// at the next walk (dirty).
type walkList struct {
	snap  []*stream // made by rebuild
	fresh []*stream // appended since
	stale int       // entries of snap and fresh that left
	dirty bool      // an entry left that is not closed: rebuild before walking
}

// add appends s.
func (l *walkList) add(s *stream) { l.fresh = append(l.fresh, s) }

// take returns the streams to walk: each of snap and fresh, once, that is
// in (as keep says, for the streams that left), with entries that left
// and are closed. It rebuilds the list first when it must, or when it is
// worth it: a quarter of it left, or tidy and anything left. Callers hold
// the hub's lock, and walk without it.
func (l *walkList) take(keep func(*stream) bool, tidy bool) (snap, fresh []*stream) {
	if l.dirty || l.stale > 0 && (tidy || 4*l.stale > len(l.snap)+len(l.fresh)) {
		l.rebuild(keep)
	}
	return l.snap, l.fresh[:len(l.fresh):len(l.fresh)]
}

// rebuild makes a new snap of the entries keep keeps, and an empty fresh.
// The slices it replaces are left to the walkers that took them.
func (l *walkList) rebuild(keep func(*stream) bool) {
	n := len(l.snap) + len(l.fresh) - l.stale
	var out []*stream
	if n > 0 {
		out = make([]*stream, 0, n)
	}
	for _, part := range [2][]*stream{l.snap, l.fresh} {
		for _, s := range part {
			if keep(s) {
				out = append(out, s)
			}
		}
	}
	l.snap, l.fresh, l.stale, l.dirty = out, nil, 0, false
}

func newRegistry(perAddr bool) registry {
	return registry{
		byID:    make(map[string][]*stream),
		byTopic: make(map[string]*topicStreams),
		byAddr:  make(map[string]int),
		perAddr: perAddr,
	}
}

func (r *registry) add(s *stream) {
	s.registered = true
	r.n++
	r.everyone.add(s)
	r.byID[s.info.ClientID] = append(r.byID[s.info.ClientID], s)
	if r.perAddr {
		r.byAddr[s.addr]++
	}
	for t := range s.topics {
		r.subscribe(s, t)
	}
}

// remove unregisters s, which is closed.
func (r *registry) remove(s *stream) {
	s.registered = false
	r.n--
	r.everyone.stale++
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
		if ts := r.byTopic[t]; ts != nil {
			delete(ts.set, s)
			ts.walk.stale++ // closed: left in the list until it is rebuilt
			if len(ts.set) == 0 {
				delete(r.byTopic, t)
			}
		}
	}
	if r.perAddr {
		if r.byAddr[s.addr]--; r.byAddr[s.addr] <= 0 {
			delete(r.byAddr, s.addr)
		}
	}
}

// streams returns every registered stream, in a slice of the caller's.
func (r *registry) streams() []*stream {
	out := make([]*stream, 0, r.n)
	for _, part := range [2][]*stream{r.everyone.snap, r.everyone.fresh} {
		for _, s := range part {
			if s.registered {
				out = append(out, s)
			}
		}
	}
	return out
}

// all returns the streams a delivery to everyone walks (see walkList.take).
func (r *registry) all(tidy bool) (snap, fresh []*stream) {
	return r.everyone.take(func(s *stream) bool { return s.registered }, tidy)
}

// topic returns the streams a delivery to topic walks.
func (r *registry) topic(topic string) (snap, fresh []*stream) {
	ts := r.byTopic[topic]
	if ts == nil {
		return nil, nil
	}
	return ts.walk.take(func(s *stream) bool { _, in := ts.set[s]; return in }, false)
}

// subscribe adds topic to s; it is a no-op if s already has it.
func (r *registry) subscribe(s *stream, topic string) {
	if s.topics == nil {
		s.topics = make(map[string]struct{})
	}
	s.topics[topic] = struct{}{}
	ts := r.byTopic[topic]
	if ts == nil {
		ts = &topicStreams{set: make(map[*stream]struct{})}
		r.byTopic[topic] = ts
	}
	if _, in := ts.set[s]; !in {
		ts.set[s] = struct{}{}
		ts.walk.add(s)
	}
}

// unsubscribe removes topic from s, if it has it.
func (r *registry) unsubscribe(s *stream, topic string) {
	if _, ok := s.topics[topic]; !ok {
		return
	}
	delete(s.topics, topic)
	ts := r.byTopic[topic]
	if ts == nil {
		return
	}
	delete(ts.set, s)
	ts.walk.stale++
	ts.walk.dirty = true // s is open: no delivery to topic may reach it
	if len(ts.set) == 0 {
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
	case h.cfg.MaxStreams > 0 && h.reg.n >= h.cfg.MaxStreams:
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
