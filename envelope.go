package sse

import "hash/maphash"

// envelope is a message as the hub carries it: the Message, and what the
// hub computes once for all of its recipients (its frame, its state's
// hash). Streams' queues, the in-memory broker's history and its keyed
// state all hold envelopes, so a frame is encoded once and shared by every
// stream and every replay. Frames the hub makes itself (retry, reset,
// position, heartbeat: see control) travel in envelopes with a zero
// Message.
type envelope struct {
	Message
	buf       []byte // Body with idHeadroom bytes before it, when the hub encoded it
	frame     []byte // the id line and Body, built once (see build)
	stateHash uint64 // hashState, set by build when Key is set
	queued    int    // streams the local delivery queued it to
	heartbeat bool   // a heartbeat frame, not an event
}

// idHeadroom is room kept before an encoded body for its id line, so the
// frame is built in place without a second allocation.
const idHeadroom = 48

// newEnvelope encodes a validated event into an envelope for to.
func newEnvelope(e *Event, to Target) *envelope {
	buf := make([]byte, idHeadroom, idHeadroom+encodedSize(e))
	buf = appendBody(buf, e)
	return &envelope{Message: Message{ID: e.ID, To: to, Key: e.Key, Body: buf[idHeadroom:]}, buf: buf}
}

// wrap returns an envelope, with its frame built, for a message a Broker
// handed the hub. The Message is copied: the broker keeps its own.
func wrap(m *Message) *envelope {
	e := &envelope{Message: *m}
	e.build()
	return e
}

// keyID identifies a state: a Key within its audience. Conflation in
// queues and replays, snapshots and the keys bound all go by it, so that a
// Send with a Key never replaces a broadcast's state of the same Key.
type keyID struct {
	to  Target
	key string
}

// state returns the identity of the state e carries, if it has a Key.
func (e *envelope) state() keyID { return keyID{e.To, e.Key} }

// stateSeed seeds the hashes of states.
var stateSeed = maphash.MakeSeed()

// hashState returns a hash of e's state, computed once per message so that
// the index of a stream's queue (see stream.conflate) costs every recipient
// a cheap integer look-up.
func (e *envelope) hashState() uint64 {
	var h maphash.Hash
	h.SetSeed(stateSeed)
	h.WriteByte(byte(e.To.Kind))
	h.WriteString(e.To.Name)
	h.WriteByte(0) // so that ("ab", "c") and ("a", "bc") differ
	h.WriteString(e.Key)
	return h.Sum64()
}

// frameBound returns the length of e's frame once its id line is added: an
// application-set ID's exactly, a position's as at most idHeadroom bytes.
func (e *envelope) frameBound() int {
	if e.ID != "" {
		return len("id: \n") + len(e.ID) + len(e.Body)
	}
	return idHeadroom + len(e.Body)
}

// build sets e.frame to its id line followed by its body, writing the id
// line into the headroom when the body has it. It does nothing once the
// frame is built.
func (e *envelope) build() {
	if e.frame != nil {
		return
	}
	if e.Key != "" {
		e.stateHash = e.hashState()
	}
	id := e.ID
	if id == "" {
		id = e.Pos
	}
	if id == "" {
		e.frame = e.Body
		return
	}
	line := len("id: ") + len(id) + 1
	if e.buf != nil && line <= idHeadroom {
		f := e.buf[idHeadroom-line:]
		appendIDLine(f[:0], id) // writes into the headroom, in place
		e.frame = f
		return
	}
	f := make([]byte, 0, line+len(e.Body))
	f = appendIDLine(f, id)
	e.frame = append(f, e.Body...)
}
