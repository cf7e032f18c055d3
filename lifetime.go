package sse

import (
	"container/heap"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Credential is who a stream belongs to and until when it may stay open:
// what Config.Authenticate returns for a request.
type Credential struct {
	// ClientID identifies the client, as Config.ClientID's result does.
	ClientID string

	// Expires is when the credential lapses (a token's "exp"): the stream
	// ends then, after what was queued to it (ReasonExpired), so that its
	// client reconnects with whatever credential it has by then. A request
	// whose credential has already expired is answered 401, and nothing is
	// registered. Zero means it never expires.
	Expires time.Time
}

// lifetimeJitter is the share of Config.MaxLifetime taken off at random, so
// that streams opened together do not all reconnect together: a stream
// lives between 80 and 100 % of it.
const lifetimeJitter = 0.2

// endAt returns when a stream that began at began with credential c ends:
// the sooner of its credential's expiry and its jittered MaxLifetime (zero:
// never), and the reason it ends for then.
func (h *Hub) endAt(began time.Time, c Credential) (time.Time, DisconnectReason) {
	at, why := c.Expires, ReasonExpired
	if l := h.cfg.MaxLifetime; l > 0 {
		life := began.Add(l - time.Duration(rand.Float64()*lifetimeJitter*float64(l)))
		if at.IsZero() || life.Before(at) {
			at, why = life, ReasonLifetime
		}
	}
	return at, why
}

// ends ends streams at their appointed time (see Hub.endAt): one goroutine
// for the hub, running while some stream has an end, and a heap of those
// ends, so that an idle stream costs no timer of its own.
type ends struct {
	mu      sync.Mutex
	due     endHeap
	running bool          // the goroutine runs (Hub.endStreams)
	wake    chan struct{} // capacity 1: the soonest end changed
}

// schedule appoints s's end, at at for reason why, once it is registered.
func (h *Hub) schedule(s *stream, at time.Time, why DisconnectReason) {
	e := &h.ends
	e.mu.Lock()
	heap.Push(&e.due, appointment{at: at, s: s, why: why})
	start := !e.running
	e.running = true
	soonest := e.due[0].s == s
	e.mu.Unlock()
	switch {
	case start:
		h.track.add(1)
		go h.endStreams()
	case soonest:
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// unschedule takes an ended stream's appointment back, so that the heap
// holds only open streams.
func (h *Hub) unschedule(s *stream) {
	e := &h.ends
	e.mu.Lock()
	soonest := s.endIndex == 0
	if s.endIndex >= 0 {
		heap.Remove(&e.due, int(s.endIndex))
	}
	e.mu.Unlock()
	if soonest { // the goroutine waits for it: let it wait for the next, or stop
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// endStreams ends each stream when its appointed time comes. It returns
// once no stream has an end appointed, or when Shutdown begins.
func (h *Hub) endStreams() {
	defer h.track.done()
	e := &h.ends
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		e.mu.Lock()
		if len(e.due) == 0 {
			e.running = false
			e.mu.Unlock()
			return
		}
		next := e.due[0]
		wait := time.Until(next.at)
		if wait <= 0 {
			heap.Pop(&e.due)
			e.mu.Unlock()
			h.endNow(next.s, next.why)
			continue
		}
		e.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-e.wake:
			if !timer.Stop() {
				<-timer.C
			}
		case <-h.done:
			e.mu.Lock()
			e.running = false
			e.mu.Unlock()
			return
		}
	}
}

// endNow ends s for its appointed reason, after what was queued to it,
// unless it has ended already. It is counted before its writer may end it,
// so that OnDisconnect sees the count.
func (h *Hub) endNow(s *stream, why DisconnectReason) {
	n := &h.stats.lifetimes
	if why == ReasonExpired {
		n = &h.stats.credExpired
	}
	if !s.closeCounted(why, n) {
		return // it had ended already
	}
	h.log.Debug("sse: stream ended", "client", s.info.ClientID, "reason", why)
}

// appointment is a stream's appointed end, kept in the hub's heap rather
// than in the stream, which an idle stream would carry for nothing.
type appointment struct {
	at  time.Time
	s   *stream
	why DisconnectReason
}

// endHeap orders appointments by time; each stream's endIndex follows its
// appointment's place.
type endHeap []appointment

func (q endHeap) Len() int           { return len(q) }
func (q endHeap) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q endHeap) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].s.endIndex, q[j].s.endIndex = int32(i), int32(j)
}
func (q *endHeap) Push(x any) {
	a := x.(appointment)
	a.s.endIndex = int32(len(*q))
	*q = append(*q, a)
}
func (q *endHeap) Pop() any {
	old := *q
	a := old[len(old)-1]
	old[len(old)-1] = appointment{}
	*q = old[:len(old)-1]
	a.s.endIndex = -1
	return a
}

// identify returns the credential of a request, from Config.Authenticate
// or Config.ClientID.
func (h *Hub) identify(r *http.Request) (Credential, error) {
	if h.cfg.Authenticate != nil {
		return h.cfg.Authenticate(r)
	}
	id, err := h.cfg.ClientID(r)
	return Credential{ClientID: id}, err
}
