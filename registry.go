package sse

// registry indexes the open streams: all of them, by client ID and by topic.
// The hub guards it with its mutex; deliveries read it under the read lock.
type registry struct {
	all     []*stream
	byID    map[string][]*stream
	byTopic map[string]map[*stream]struct{}
}

func newRegistry() registry {
	return registry{
		byID:    make(map[string][]*stream),
		byTopic: make(map[string]map[*stream]struct{}),
	}
}

func (r *registry) add(s *stream) {
	s.index = len(r.all)
	r.all = append(r.all, s)
	r.byID[s.info.ClientID] = append(r.byID[s.info.ClientID], s)
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
