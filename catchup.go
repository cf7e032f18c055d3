package sse

// A stream that subscribes to a topic at run time (Hub.Subscribe) must get
// the topic's state, as of the position the subscription took effect at,
// before anything delivered after that position. Reading the state is a
// Broker call, which may take long (a Broker on a stalled Redis), so no
// hub-wide lock is held across it: instead the stream holds its deliveries
// from that position on (hold), in order, counted against its queue's
// bound, and once the state is read puts the state in its place and the
// held deliveries after it into its queue (release). Concurrent
// subscriptions of one stream each hold a place in the same list.

// heldFrame is a delivery a holding stream kept back, or (c set) the place
// of a run-time subscription's state.
type heldFrame struct {
	e *envelope
	c *catchUp
}

// catchUp is one run-time subscription's state, once read.
type catchUp struct {
	state []*envelope
	read  bool
}

// hold starts holding s's deliveries for a run-time subscription and
// returns the place of its state. Callers hold the hub's mutex, so no
// delivery after the subscription's position has been queued yet.
func (s *stream) hold() *catchUp {
	c := &catchUp{}
	s.mu.Lock()
	s.holding++
	s.held = append(s.held, heldFrame{c: c})
	s.mu.Unlock()
	return c
}

// release puts state in c's place. Once no subscription's state is still
// being read, the held list goes to the queue in order: each state, then
// the deliveries that came after it. When the state could not be read (ok
// false), the stream ends without anything delivered after c's place,
// which its client must get after the state: it resumes from before the
// subscription and gets the state then (see Hub.stale).
func (s *stream) release(c *catchUp, state []*envelope, ok bool) {
	s.mu.Lock()
	if !ok && !s.closed {
		s.closed, s.reason = true, ReasonUnavailable
		for i, f := range s.held {
			if f.c == c {
				clear(s.held[i:])
				s.held = s.held[:i]
				break
			}
		}
	}
	c.state, c.read = state, true
	s.holding--
	if s.holding > 0 {
		s.mu.Unlock()
		return
	}
	held := s.held
	s.held = nil
	for _, f := range held {
		if f.e != nil {
			s.bytes -= len(f.e.frame) // counted while held; push counts it again
		}
	}
	overflowed, filled := false, false
	put := func(e *envelope) bool {
		if ok, _, _ := s.push(e); !ok {
			overflowed = true
			return false
		}
		filled = true
		return true
	}
	if !s.closed || s.reason != ReasonSlow {
	flush:
		for _, f := range held {
			if f.c == nil {
				if !put(f.e) {
					break
				}
				continue
			}
			for _, e := range f.c.state {
				if !put(e) {
					break flush
				}
			}
		}
	}
	s.mu.Unlock()
	if overflowed {
		s.overflow()
	}
	if filled || s.isClosed() {
		s.signal()
	}
}
