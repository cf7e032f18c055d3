package sse

import (
	"container/list"
	"context"
	"slices"
)

// Subscribe adds topics to every open stream of clientID and returns how
// many streams that was. Each stream first receives the current state of
// each topic it did not have: the newest event of every Key published to
// the topic (see Event.Key and Config.Keys), in publish order, then the
// topic's live events, so nothing comes twice and nothing older comes after
// something newer. Subscribe waits while it reads that state from the
// Broker (at most Config.WriteTimeout), holding no lock of the hub's: the
// streams that subscribe hold back what is delivered to them meanwhile (as
// part of their queue), and nothing else waits. A stream whose state the
// Broker cannot read ends (ReasonUnavailable); its client resumes from
// before the subscription and gets the state then.
//
// That state is not in history, so its events carry no id: they leave the
// client's resume point where it was, and the next event the stream gets
// moves it past them. The hub remembers the subscription, also when the
// client has no stream open (a page that changes its points while it
// reconnects): a client whose Last-Event-ID is not past it when it resumes
// with the topic (its stream dropped before it read the state, or before
// anything came after it) gets the topic's state first, then the replay of
// the rest, never a replay that could not hold the state. So a resume may
// repeat state the client has read (once more, if it drops again before
// anything after that state), but never lose it, and never bring a value
// older than one it had. The hub remembers up to
// 65,536 subscriptions; resumes from before the newest one it had to forget
// get the state of all their topics. Telling "before" from "past" needs a
// Broker that orders its positions (PositionComparer), as the in-memory one
// does; with another, every resume of the client repeats that state while
// the hub remembers the subscription.
//
// Streams opened later get their topics from Config.Topics only, so an
// application that subscribes at run time should make Config.Topics return
// the same topics for that client's next request.
func (h *Hub) Subscribe(clientID string, topics ...string) int {
	type pending struct {
		s     *stream
		added []Target
		c     *catchUp
	}
	var todo []pending
	h.walking.Lock() // no delivery runs: every message up to the position is queued
	h.mu.Lock()
	streams := len(h.reg.byID[clientID])
	pos := *h.lastPos.Load()
	for _, t := range topics {
		// With no stream open, the client's next stream (a resume, with
		// the topic from Config.Topics) is the one that has to catch up.
		if t != "" && (streams == 0 || slices.ContainsFunc(h.reg.byID[clientID], func(s *stream) bool { return !s.has(t) })) {
			h.subs.note(clientID, t, pos)
		}
	}
	for _, s := range h.reg.byID[clientID] {
		var added []Target
		for _, t := range topics {
			if t == "" || s.has(t) {
				continue
			}
			h.reg.subscribe(s, t)
			added = append(added, Target{Kind: ToTopic, Name: t})
		}
		if len(added) > 0 {
			todo = append(todo, pending{s, added, s.hold()})
		}
	}
	h.mu.Unlock()
	h.walking.Unlock()
	// The state is read with no lock held: the streams hold what is
	// delivered to them meanwhile (see hold).
	for _, p := range todo {
		h.catchUp(p.s, p.added, pos, p.c)
	}
	return streams
}

// has reports whether s is subscribed to topic. Callers hold h.mu.
func (s *stream) has(topic string) bool {
	_, ok := s.topics[topic]
	return ok
}

// Unsubscribe removes topics from every open stream of clientID and returns
// how many streams that was.
func (h *Hub) Unsubscribe(clientID string, topics ...string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range topics {
		h.subs.forget(clientID, t)
	}
	streams := h.reg.byID[clientID]
	for _, s := range streams {
		for _, t := range topics {
			h.reg.unsubscribe(s, t)
		}
	}
	return len(streams)
}

// catchUp reads the state of the topics s has just subscribed to, as of
// pos, the position the subscription took effect at, and puts it in c's
// place. It waits at most Config.WriteTimeout for the Broker: a stream
// whose state cannot be read ends, so that its client resumes from before
// the subscription and gets the state then.
func (h *Hub) catchUp(s *stream, added []Target, pos string, c *catchUp) {
	ctx, cancel := context.WithTimeout(h.pubCtx, h.cfg.WriteTimeout)
	defer cancel()
	state, err := h.topicState(ctx, added, pos)
	if err != nil {
		h.log.Warn("sse: the state of subscribed topics could not be read: ending the stream, so that its client resumes with it",
			"client", s.info.ClientID, "err", err)
	}
	s.release(c, idless(state), err == nil)
}

// topicState returns the newest keyed message of every state of the topics
// in to, up to pos, in position order.
func (h *Hub) topicState(ctx context.Context, to []Target, pos string) ([]*envelope, error) {
	var state []*envelope
	err := h.readSnapshot(ctx, pos, to, func(m *envelope) bool {
		if m.To.Kind == ToTopic && slices.Contains(to, m.To) {
			state = append(state, m)
		}
		return true
	})
	return state, err
}

// idless returns copies of state written without their ids: those are
// older than what the stream was sent, and would move its resume point
// back.
func idless(state []*envelope) []*envelope {
	out := make([]*envelope, len(state))
	for i, m := range state {
		// Not a copy of *m: its delivery may still be writing m.queued.
		c := &envelope{Message: m.Message, frame: m.Body, stateHash: m.stateHash}
		c.Pos, c.ID = "", ""
		out[i] = c
	}
	return out
}

// maxSubscriptions bounds the run-time subscriptions a hub remembers.
const maxSubscriptions = 1 << 16

// subscriptions remembers where run-time subscriptions took effect, by
// client ID and topic, so that a resume from before one gets the topic's
// state (see Hub.Subscribe). It holds at most max of them, forgetting the
// oldest first; forgot is the position of the newest it forgot that way.
// The hub guards it with its mutex.
type subscriptions struct {
	byClient map[string]map[string]*list.Element // of *subscription
	order    list.List                           // oldest first
	max      int
	forgot   string
}

type subscription struct {
	client, topic, pos string
}

func newSubscriptions(max int) subscriptions {
	return subscriptions{byClient: make(map[string]map[string]*list.Element), max: max}
}

// note records that clientID subscribed to topic at pos.
func (ss *subscriptions) note(clientID, topic, pos string) {
	ss.forget(clientID, topic)
	topics := ss.byClient[clientID]
	if topics == nil {
		topics = make(map[string]*list.Element)
		ss.byClient[clientID] = topics
	}
	topics[topic] = ss.order.PushBack(&subscription{clientID, topic, pos})
	if ss.order.Len() > ss.max {
		oldest := ss.order.Front().Value.(*subscription)
		ss.forget(oldest.client, oldest.topic)
		ss.forgot = oldest.pos
	}
}

// forget drops what is remembered of clientID's subscription to topic.
func (ss *subscriptions) forget(clientID, topic string) {
	topics := ss.byClient[clientID]
	if e, ok := topics[topic]; ok {
		ss.order.Remove(e)
		delete(topics, topic)
		if len(topics) == 0 {
			delete(ss.byClient, clientID)
		}
	}
}

// since returns, for the topics in topics that clientID subscribed to at
// run time, the positions the subscriptions took effect at, and the
// position of the newest subscription forgotten.
func (ss *subscriptions) since(clientID string, topics map[string]struct{}) (map[string]string, string) {
	var out map[string]string
	for t, e := range ss.byClient[clientID] {
		if _, ok := topics[t]; ok {
			if out == nil {
				out = make(map[string]string)
			}
			out[t] = e.Value.(*subscription).pos
		}
	}
	return out, ss.forgot
}
