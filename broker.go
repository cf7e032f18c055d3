package sse

import (
	"context"
	"hash/maphash"
)

// Broker orders a hub's events, keeps their history and delivers them to
// the hub: the part of a Hub that a shared engine can replace so that hubs on
// several nodes deliver the same events and any node can serve a replay.
// Config.Broker nil means the in-memory broker, which keeps Config.History
// events.
//
// A Hub calls Subscribe once, before it serves any stream, and Close once,
// from Shutdown. Publish, Replay and Snapshot may be called concurrently
// with each other and with deliveries.
type Broker interface {
	// Publish assigns m.Pos, a position later than every earlier message's,
	// keeps m in history and delivers it to every subscribed hub. It must
	// not keep m.Body after it returns unless it copies it. ctx is
	// cancelled when the hub's Shutdown gives up waiting for it.
	Publish(ctx context.Context, m *Message) error

	// Subscribe registers deliver, which the broker calls for every
	// published message in position order, never concurrently with itself.
	// It returns the position of the last message before the first one it
	// will deliver, the point from which replays up to the first delivery
	// start. Before any message it should still return a position that
	// Replay accepts (the in-memory broker returns "<epoch>-0"), so that a
	// client that connected before the first event resumes without a gap;
	// "" is allowed but gives such clients no resume point.
	Subscribe(deliver func(*Message)) (last string, err error)

	// Replay calls fn, in position order, for each message after the
	// position after and up to and including the position until, stopping
	// early if fn returns false. after is what a client sent as
	// Last-Event-ID, so it may be anything; until is a position the broker
	// delivered to the hub. to lists the audiences the stream may receive
	// (ToEveryone, its topics, its client ID): the hub skips other messages
	// itself, but a broker must use it to decide whether after can be
	// resumed. A resume from a position older than the history is exact,
	// and must be answered ok with what history holds, when no message for
	// an audience in to after that position has left history (a broker
	// remembers, per audience, the newest message it dropped; when in
	// doubt it answers "expired"): a client on a quiet topic is then not
	// reset for events it was never to receive. ok is false, and fn is
	// not called, when after is not a position the history can resume
	// from; reason then says why, in a word: "unknown", "expired" or
	// "epoch" (the hub sends a ResetEvent), or "ahead", when after is a
	// position later than until that this hub has not been delivered yet
	// (possible with several nodes: the hub then waits for its deliveries
	// to catch up and asks again). An error says the broker failed (it
	// could not reach its store, say): the hub then ends the stream before
	// writing anything, and its client retries with the same
	// Last-Event-ID, so an after the broker cannot read must be answered
	// "unknown", never with an error, or that client would retry for ever.
	// Replay must not hold locks that Publish needs while it calls fn: fn
	// writes to the network.
	Replay(ctx context.Context, after, until string, to []Target, fn func(*Message) bool) (ok bool, reason string, err error)

	// Snapshot calls fn, in position order, for the newest message of each
	// state (a Message.Key within its audience, Message.To) of the
	// audiences in to, if it is at or before the position until: a state
	// updated since comes with the hub's later deliveries. A hub sends
	// these to a stream that starts without a usable Last-Event-ID, so it
	// begins with the current state, and to streams that subscribe to a
	// topic at run time. It stops early if fn returns false. A broker that
	// keeps no such state calls fn for nothing. The hub may call it while
	// it holds its deliveries back (Hub.Subscribe), so it must not wait for
	// a delivery to finish, nor hold locks Publish needs while it calls fn.
	Snapshot(ctx context.Context, until string, to []Target, fn func(*Message) bool) error

	// Close releases the broker's resources. The hub makes no calls after
	// it.
	Close() error
}

// PositionComparer is implemented by a Broker whose positions are ordered.
// A Hub uses it to tell whether a client that resumes has got what came at
// a position (see Hub.Subscribe).
type PositionComparer interface {
	// ComparePositions returns -1, 0 or +1 as a comes before, at or after
	// b, or false when it cannot order them (another epoch, an id it does
	// not know). a is what a client sent as Last-Event-ID; b is a position
	// the broker delivered. It may be called concurrently with everything.
	ComparePositions(a, b string) (int, bool)
}

// Message is an event as a Broker carries it: encoded once, with the
// audience it is for.
type Message struct {
	// Pos is the message's position, assigned by Broker.Publish. It is the
	// SSE id a stream sees unless ID is set. The in-memory broker writes
	// "<epoch>-<sequence>": the epoch is random per broker, so ids from an
	// earlier run are recognised, and the sequence counts up from 1 (0 is
	// the position before the first message). A position should be at
	// most 43 bytes long: the hub refuses events too large for a stream's
	// queue (ErrEventTooLarge) counting an id line of up to 48 bytes.
	Pos string

	// ID is Event.ID: an id the application chose, written instead of Pos.
	ID string

	// To is the audience: every stream, a topic's streams, or one client
	// ID's streams.
	To Target

	// Key is Event.Key, the conflation key.
	Key string

	// Body is the encoded event without its id line: the event, retry and
	// data lines and the blank line that ends the frame.
	Body []byte

	// Gap, set by a Broker on a message it delivers instead of an event,
	// says that messages before it will never be delivered to this hub
	// (its follower fell behind a history that was trimmed meanwhile, for
	// example); Pos is then the position after them, and the other fields
	// are unused. The hub ends every open stream (ReasonUnavailable): their
	// clients reconnect and resume from what they received, exactly or
	// with a reset, never past a silent gap.
	Gap bool

	buf       []byte // Body with idHeadroom bytes before it, when the hub encoded it
	frame     []byte // the id line and Body, built once per message
	queued    int    // streams the local delivery queued it to
	heartbeat bool   // a heartbeat frame, not an event
	stateHash uint64 // hashState, set with frame when Key is set
}

// Target says which streams a Message is for.
type Target struct {
	Kind TargetKind
	Name string // the topic or the client ID; empty for ToEveryone
}

// TargetKind is the kind of audience of a Message.
type TargetKind uint8

// The audiences of a Message.
const (
	ToEveryone TargetKind = iota // every stream: Hub.Broadcast
	ToTopic                      // the streams subscribed to Target.Name: Hub.Publish
	ToClient                     // the streams of the client ID Target.Name: Hub.Send
)

// idHeadroom is room kept before an encoded body for its id line, so the
// frame is built in place without a second allocation.
const idHeadroom = 48

// keyID identifies a state: a Key within its audience. Conflation in
// queues and replays, snapshots and the keys bound all go by it, so that a
// Send with a Key never replaces a broadcast's state of the same Key.
type keyID struct {
	to  Target
	key string
}

// state returns the identity of the state m carries, if it has a Key.
func (m *Message) state() keyID { return keyID{m.To, m.Key} }

// stateSeed seeds the hashes of states.
var stateSeed = maphash.MakeSeed()

// hashState returns a hash of m's state, computed once per message so that
// the index of a stream's queue (see stream.conflate) costs every recipient
// a cheap integer look-up.
func (m *Message) hashState() uint64 {
	var h maphash.Hash
	h.SetSeed(stateSeed)
	h.WriteByte(byte(m.To.Kind))
	h.WriteString(m.To.Name)
	h.WriteByte(0) // so that ("ab", "c") and ("a", "bc") differ
	h.WriteString(m.Key)
	return h.Sum64()
}

// frameBound returns the length of m's frame once its id line is added: an
// application-set ID's exactly, a position's as at most idHeadroom bytes.
func (m *Message) frameBound() int {
	if m.ID != "" {
		return len("id: \n") + len(m.ID) + len(m.Body)
	}
	return idHeadroom + len(m.Body)
}

// newMessage encodes a validated event into a message for to.
func newMessage(e *Event, to Target) *Message {
	buf := make([]byte, idHeadroom, idHeadroom+encodedSize(e))
	buf = appendBody(buf, e)
	return &Message{ID: e.ID, To: to, Key: e.Key, Body: buf[idHeadroom:], buf: buf}
}

// buildFrame sets m.frame to its id line followed by its body, writing the
// id line into the headroom when the body has it.
func (m *Message) buildFrame() {
	if m.frame != nil {
		return
	}
	if m.Key != "" {
		m.stateHash = m.hashState()
	}
	id := m.ID
	if id == "" {
		id = m.Pos
	}
	if id == "" {
		m.frame = m.Body
		return
	}
	line := len("id: ") + len(id) + 1
	if m.buf != nil && line <= idHeadroom {
		f := m.buf[idHeadroom-line:]
		appendIDLine(f[:0], id) // writes into the headroom, in place
		m.frame = f
		return
	}
	f := make([]byte, 0, line+len(m.Body))
	f = appendIDLine(f, id)
	m.frame = append(f, m.Body...)
}
