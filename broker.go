package sse

import "context"

// Broker orders a hub's events, keeps their history and delivers them to
// the hub: the part of a Hub that a shared engine can replace so that hubs on
// several nodes deliver the same events and any node can serve a replay.
// Config.Broker nil means the in-memory broker, which keeps Config.History
// events. sseredis (github.com/ssehub/sse/sseredis) is a Broker on a Redis
// Stream.
//
// A Hub calls Subscribe once, from NewHub, before it serves any stream, and
// Close once, from Shutdown. Publish, Replay and Snapshot may be called
// concurrently with each other and with deliveries. The hub holds none of
// its locks while it calls a Broker, and gives every call it makes on a
// request's behalf a context that ends with the request.
//
// What a broker tells its hub comes through the BrokerHandler that
// Subscribe receives, one method per kind of news: a message, a gap (the
// hub will never get some messages), or a new epoch (positions start a new
// lineage). A third-party Broker (on NATS, on Postgres) is written against
// this interface and that handler alone.
type Broker interface {
	// Publish assigns m.Pos, a position later than every earlier message's,
	// keeps m in history and delivers it to every subscribed hub. It must
	// not keep m.Body after it returns unless it copies it. ctx is
	// cancelled when the hub's Shutdown gives up waiting for it.
	Publish(ctx context.Context, m *Message) error

	// Subscribe registers the hub's handler, which the broker calls for
	// everything it delivers (see BrokerHandler). It returns the position
	// of the last message before the first one it will deliver: the point
	// from which replays up to the first delivery start, and the position
	// a stream that starts before any delivery is given. Before any message
	// it should still return a position that Replay accepts (the in-memory
	// broker returns "<epoch>-0"), so that a client that connected before
	// the first event resumes without a gap; "" is allowed but gives such
	// clients no resume point. The handler may be called before Subscribe
	// returns; the hub is ready for it.
	Subscribe(h BrokerHandler) (last string, err error)

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
	// An until of an epoch the store has moved past is answered "ahead": the
	// hub waits for its deliveries to reach the new epoch, and asks again.
	// Replay must not hold locks that Publish needs while it calls fn: fn
	// writes to the network. The hub writes while fn is called, so a
	// broker should read a long replay in bounded pages rather than whole:
	// what a starting stream holds is then bounded however long the
	// history, and a stream cut short stops the reading.
	Replay(ctx context.Context, after, until string, to []Target, fn func(*Message) bool) (ok bool, reason string, err error)

	// Snapshot calls fn, in position order, for the newest message of each
	// state (a Message.Key within its audience, Message.To) of the
	// audiences in to, if it is at or before the position until: a state
	// updated since comes with the hub's later deliveries. A hub sends
	// these to a stream that starts without a usable Last-Event-ID, so it
	// begins with the current state, and to streams that subscribe to a
	// topic at run time. It stops early if fn returns false. A broker that
	// keeps no such state calls fn for nothing. A broker whose store has
	// moved past until's epoch (it lost its data) returns an error, so that
	// the hub ends the stream before it writes anything and its client
	// retries, by when the broker's deliveries have reached the new epoch
	// (see BrokerHandler): a state of the new epoch sent with a position of
	// the old one would reset that client for nothing at its next resume.
	// It must not wait for a delivery to finish, nor hold locks Publish
	// needs while it calls fn.
	Snapshot(ctx context.Context, until string, to []Target, fn func(*Message) bool) error

	// Close releases the broker's resources and stops its deliveries: once
	// it returns, the broker calls the handler no more and every goroutine
	// it started has returned. It must return promptly whatever the state
	// of its store (a frozen Redis): Shutdown waits for it only until its
	// context ends. When Shutdown's context ended before every stream did,
	// streams still ending may call Replay or Snapshot after Close: those
	// calls should fail at once (an error ends the stream).
	Close() error
}

// BrokerHandler is how a Broker tells its hub what it delivers: a Hub
// passes one to Broker.Subscribe. The broker calls its methods in the order
// of the positions they carry, one at a time, never concurrently with each
// other; each returns quickly (the hub queues, it never waits for a
// client), and may be called on any goroutine of the broker's.
//
// The kinds:
//   - HandleMessage: the next message, in position order.
//   - HandleGap: messages before pos that this hub was to deliver will
//     never reach it (its connection to the engine fell behind a history
//     trimmed meanwhile; the engine lost data this hub had not read yet).
//     The hub ends every open stream (ReasonUnavailable), so that each
//     client resumes from what it really received: exactly, or with one
//     ResetEvent. pos is the position deliveries go on after; it may be of
//     a new epoch.
//   - HandleEpoch: positions now belong to a new lineage (the engine lost
//     data and started a new epoch) but nothing this hub's streams were
//     to receive was lost: the hub only takes pos, a position of the new
//     epoch, as where its deliveries stand, so that fresh streams are told
//     positions of the new epoch and get its snapshot. A broker that
//     cannot tell whether this hub missed something calls HandleGap.
//   - HandleDisconnect: Hub.Disconnect(clientID) was called on a hub of
//     this broker (see ControlBroker): the hub ends the client's streams.
//     It carries no position and is not ordered with the messages.
type BrokerHandler interface {
	HandleMessage(m *Message)
	HandleGap(pos string)
	HandleEpoch(pos string)
	HandleDisconnect(clientID string)
}

// ControlBroker is implemented by a Broker that carries controls between
// its hubs, so that Hub.Disconnect on one node ends the client's streams on
// every node. Controls are not events: they take no position and stay out
// of history.
type ControlBroker interface {
	// PublishDisconnect has every hub subscribed to the broker (this one
	// may be included) call its handler's HandleDisconnect(clientID). ctx
	// bounds the call.
	PublishDisconnect(ctx context.Context, clientID string) error
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

// EpochOrigin is implemented by a Broker that knows where each of its
// epochs began. A Hub uses it when a client resumes from a position of an
// earlier epoch (the process restarted, the engine lost its data): after
// the ResetEvent, such a stream is replayed every event of the current
// epoch it may receive, from the epoch's origin, when Replay can still
// resume from there exactly, rather than sent the snapshot alone. A
// restart then loses only what the earlier process never delivered.
type EpochOrigin interface {
	// EpochOrigin returns the position just before the first message of
	// pos's epoch, one that Replay accepts as after, or false when the
	// broker does not know it. It may be called concurrently with
	// everything.
	EpochOrigin(pos string) (origin string, ok bool)
}

// Message is an event as a Broker carries it: a plain value, encoded once,
// with the audience it is for. A Broker may keep it and hand it back (in
// Replay and Snapshot) as it is; the hub never changes a Message it got
// from a Broker.
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
