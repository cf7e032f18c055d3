package sse

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Defaults for the zero fields of a Config.
const (
	DefaultHistory      = 1024
	DefaultHistoryBytes = 32 << 20
	DefaultKeys         = 10_000
	DefaultKeyBytes     = 32 << 20
	DefaultHeartbeat    = 15 * time.Second
	DefaultQueueBytes   = 256 << 10
	DefaultWriteTimeout = 10 * time.Second
	DefaultRetry        = 3 * time.Second
	DefaultRefuseRetry  = 10 * time.Second

	DefaultMaxTopics           = 1024
	DefaultMaxStreamsPerClient = 256
)

// Config configures a Hub. The zero Config is valid; every field says what
// its zero value means. NewHub refuses negative sizes and durations where a
// field allows none, and positive durations below a millisecond. A Hub
// copies its Config: later changes have no effect.
type Config struct {
	// ClientID identifies the client a request belongs to, for example the
	// login of its session. Streams with the same ID all receive Hub.Send to
	// that ID. An error answers the request with 401 Unauthorized, or with
	// the status the error carries (see StatusError), and registers
	// nothing; the error text is logged, never sent. An empty ID with a nil
	// error counts as an error. Nil means a random ID per stream.
	ClientID func(*http.Request) (string, error)

	// Authenticate, if set, identifies a request as ClientID does, and also
	// says until when its credential is valid (a token's expiry): the
	// stream ends then (ReasonExpired), after what was queued to it, and
	// its client reconnects with whatever credential it has by then. An
	// error, an empty ClientID, or a credential already expired answers
	// 401 (or the status the error carries) and registers nothing. Set
	// ClientID or Authenticate, not both. Nil means ClientID identifies
	// requests and credentials never expire.
	Authenticate func(*http.Request) (Credential, error)

	// LastEventIDParam, if set, names a query parameter that carries a
	// resume point as the Last-Event-ID header does (Mercure calls it
	// "lastEventID"). A browser sends the header only on its EventSource's
	// own reconnections; a page that must open a new EventSource (a new
	// token in its URL) puts the last id it saw there instead. The header
	// wins when a request has both. Empty means the header only.
	LastEventIDParam string

	// MaxLifetime, if positive, bounds every stream's life: a stream ends
	// (ReasonLifetime) after between 80 and 100 % of it, at random, so that
	// streams opened together do not reconnect together. Long-lived streams
	// are then authenticated anew, and spread again over the nodes behind a
	// load balancer. Zero means no bound.
	MaxLifetime time.Duration

	// Topics returns the topics a new stream subscribes to, for example from
	// the query (?topic=a&topic=b). An error answers 400 Bad Request, or the
	// status the error carries. Nil means no topics.
	Topics func(*http.Request) ([]string, error)

	// MaxTopics bounds the topics Topics may return for one request: a
	// request asking for more is answered 400 Bad Request, so that one
	// client cannot make its stream cost the hub without bound. Zero means
	// DefaultMaxTopics (1024); negative means no limit. Hub.Subscribe is
	// the application's own call and is not bounded.
	MaxTopics int

	// History is how many events the in-memory broker keeps for
	// Last-Event-ID replay. Zero means DefaultHistory (1024); negative keeps
	// none, so a reconnect that missed anything gets a ResetEvent. Ignored
	// when Broker is set.
	History int

	// HistoryBytes bounds the memory of the in-memory broker's history as
	// well: the oldest events go first when the events kept hold more.
	// Zero means DefaultHistoryBytes (32 MiB). Ignored when Broker is set.
	HistoryBytes int

	// Keys is how many states (see Event.Key: a key within its audience,
	// the broadcast, a topic or a client ID) the in-memory broker remembers
	// the newest event of, per audience, for the snapshot a fresh stream
	// starts with. When an audience has more, its least recently updated
	// state is forgotten. Zero means DefaultKeys (10,000); negative
	// remembers none. Ignored when Broker is set.
	Keys int

	// KeyBytes bounds the memory of all the states the in-memory broker
	// remembers: beyond it, the least recently updated state of a client ID
	// is forgotten first, and shared state (broadcasts, topics) only when
	// no client's is left, so per-client keys never push out what every
	// stream shares. Zero means DefaultKeyBytes (32 MiB). Ignored when
	// Broker is set.
	KeyBytes int

	// Broker orders, keeps and carries events. Nil means in memory, for a
	// single process. For several nodes sharing events and replays, use
	// github.com/ssehub/sse/sseredis (a Broker on a Redis Stream), or write
	// one for another engine against the Broker interface. The hub closes
	// it in Shutdown.
	Broker Broker

	// Heartbeat is the longest a stream stays silent: a stream that wrote
	// nothing for about this long gets a comment, which keeps proxies from
	// closing it. Zero means DefaultHeartbeat (15 s); negative disables
	// heartbeats. One hub-wide ticker serves every stream.
	Heartbeat time.Duration

	// QueueBytes bounds each stream's queue of frames waiting to be written.
	// A stream whose queue would overflow is ended as slow (conflated
	// events replace their predecessors instead of adding up). Zero means
	// DefaultQueueBytes (256 KiB). An event larger than this is refused with
	// ErrEventTooLarge. Queues take memory only while they hold frames.
	QueueBytes int

	// WriteTimeout bounds each write to a stream; a stream whose write takes
	// longer is ended. (The deadline is moved only when half of it is
	// left, so a write may be cut after between half and all of it.) Zero
	// means DefaultWriteTimeout (10 s). The server's
	// own http.Server.WriteTimeout does not apply to streams: the hub clears
	// it when a stream starts.
	WriteTimeout time.Duration

	// Retry is the reconnection time sent to every stream when it starts.
	// Zero means DefaultRetry (3 s); negative sends none, leaving the
	// browser's default.
	Retry time.Duration

	// MaxStreams limits the streams open at once, so that a flood of
	// streams cannot take every file descriptor the process has (accept
	// would then fail for every other request too). A request over a limit
	// (this one or the two below) is answered 200 with a retry field of
	// about RefuseRetry and no events, so browsers try again later (they
	// give up for good on 5xx), and Stats.Refused counts it. Zero means
	// nine tenths of the process's limit on open files as NewHub finds it
	// (RLIMIT_NOFILE; 18,000 for a limit of 20,000), leaving the rest to
	// the server's other work; no limit on platforms without one. Negative
	// means no limit.
	MaxStreams int

	// MaxStreamsPerClient limits the streams of one client ID, so that one
	// login cannot open streams without bound (one open in a few tabs needs
	// a handful). It bounds a peer only when Config.ClientID identifies
	// it: the default ClientID gives every stream an ID of its own. Zero
	// means DefaultMaxStreamsPerClient (256); negative means no limit.
	MaxStreamsPerClient int

	// MaxStreamsPerAddress limits the streams of one remote address: the
	// IP of http.Request.RemoteAddr, whatever the client ID. It is the
	// bound for anonymous streams (no ClientID). Behind a reverse proxy
	// every request has the proxy's address: leave it zero there, or have
	// trusted middleware set RemoteAddr from the proxy's forwarded header
	// before the hub sees the request. Zero means no limit.
	MaxStreamsPerAddress int

	// ConnectRatePerAddress bounds how fast one remote address (the IP of
	// http.Request.RemoteAddr) may open streams, and ConnectRatePerClient
	// how fast one client ID may: a request over its rate is refused as
	// over a limit (200 with a retry hint, so that a browser tries again
	// later; Stats.RateLimited counts them), before authentication for an
	// address. So a flood of connects from one address or one login costs
	// little and delays nobody else. The zero Rate means no bound, the
	// default for both: behind a reverse proxy every request has the
	// proxy's address (set RemoteAddr from the forwarded header in
	// trusted middleware first), and a reconnect storm after a deploy,
	// or a login open in many tabs, must not be refused wholesale. For a
	// server that browsers reach directly, Rate{PerSecond: 5, Burst: 50}
	// per address is a reasonable start; per client ID, a burst above the
	// number of tabs a user opens.
	ConnectRatePerAddress Rate
	ConnectRatePerClient  Rate

	// RefuseRetry is the reconnection time suggested to refused requests;
	// up to half of it again is added at random to spread reconnects. Zero
	// means DefaultRefuseRetry (10 s).
	RefuseRetry time.Duration

	// Hijack takes HTTP/1.x connections over from net/http when their
	// streams start: the hub writes the response head and every frame
	// straight to the socket, a small reader of the hub's notices the
	// client leaving, and once the stream's start is written its handler
	// returns, freeing net/http's goroutine and buffers for the connection.
	// An idle stream then holds its reader goroutine and its state, and no
	// writer (a goroutine writes only while it has something to write):
	// about 4 KiB of memory against 27 KiB through net/http (with Poll as
	// well, under 2 KiB; see the README's "Many idle streams"), which
	// counts with tens of thousands of mostly idle pages. Without
	// OnDisconnect, a stream lets go of its request once it has started.
	// The price, and why it is not the default: middleware sees the request
	// end as soon as the stream has started (and sees no status or byte
	// count), the request's context is done from then on, OnDisconnect
	// runs on a goroutine of the hub's (a panic in it is logged), and the
	// server's ConnState hook and http.Server.Shutdown no longer see the
	// connection: call Hub.Shutdown before http.Server.Shutdown (which
	// would not wait for a hub.Close it runs from RegisterOnShutdown).
	// HTTP/2 streams, refused requests and ResponseWriters that cannot
	// hijack (a wrapper without Unwrap) are served through net/http as
	// usual. False leaves every connection to net/http.
	Hijack bool

	// Poll, with Hijack, watches the taken-over connections for their
	// clients leaving from one goroutine per hub, on one epoll instance
	// (Linux), instead of a reader goroutine per stream: an idle stream
	// then holds no goroutine at all, and under 2 KiB of memory against 4
	// (see the README's "Many idle streams"). A client's leaving is
	// noticed at once all the same. A client that sends anything after
	// its request (pipelined requests, a TLS alert) gets a reader
	// goroutine from then on. On other platforms, and for connections
	// without a file descriptor, every taken-over stream has its reader,
	// as without Poll. Ignored without Hijack. False gives every
	// taken-over stream a reader goroutine.
	Poll bool

	// OnConnect, if set, is called once for every stream, after it is
	// registered and before anything is written to it, so a Hub.Send from
	// OnConnect reaches it, after the stream's replay or snapshot.
	// StreamInfo.Start says which it gets, or that it cannot start now
	// (StartUnavailable: it ends without an event, and its client retries).
	// It runs on the stream's goroutine and delays the stream until it
	// returns.
	OnConnect func(StreamInfo)

	// OnDisconnect, if set, is called once for every stream that OnConnect
	// was called for, after the stream is unregistered, with the reason it
	// ended.
	OnDisconnect func(StreamInfo, DisconnectReason)

	// Logger receives the hub's diagnostics: refused requests at Info,
	// slow and failed streams at Warn, connects and disconnects at Debug.
	// Values a client sent (a Last-Event-ID) are logged cut short. Nil
	// means no logging but for the warnings about conditions that break
	// streams (a ResponseWriter that cannot flush or take a write deadline,
	// a Shutdown that gives up on them, a compressed stream): those go to
	// slog.Default(), once per hub and kind.
	Logger *slog.Logger
}

// StreamInfo describes a stream to the connect and disconnect hooks.
type StreamInfo struct {
	ClientID    string        // from Config.ClientID
	Topics      []string      // from Config.Topics, at connect; do not modify
	LastEventID string        // the Last-Event-ID the request carried, if any
	Start       StartKind     // fresh, resumed or reset: what the stream receives first
	Request     *http.Request // the stream's request
}

// withDefaults validates c and fills in its zero fields.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	neg := func(name string, v int) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("sse: Config.%s is negative (%d)", name, v))
		}
	}
	neg("QueueBytes", c.QueueBytes)
	neg("HistoryBytes", c.HistoryBytes)
	neg("KeyBytes", c.KeyBytes)
	neg("MaxStreamsPerAddress", c.MaxStreamsPerAddress)
	// A duration is zero (the default), at least a millisecond (the
	// resolution of SSE's retry field, and far below any sensible
	// heartbeat or write timeout), or, where the field says so, negative.
	dur := func(name string, v time.Duration, negativeMeansOff bool) {
		switch {
		case v < 0 && !negativeMeansOff:
			errs = append(errs, fmt.Errorf("sse: Config.%s is negative (%v)", name, v))
		case v > 0 && v < time.Millisecond:
			errs = append(errs, fmt.Errorf("sse: Config.%s is %v: a positive duration must be at least 1ms", name, v))
		}
	}
	dur("Heartbeat", c.Heartbeat, true)
	dur("WriteTimeout", c.WriteTimeout, false)
	dur("Retry", c.Retry, true)
	dur("RefuseRetry", c.RefuseRetry, false)
	dur("MaxLifetime", c.MaxLifetime, false)
	if c.ClientID != nil && c.Authenticate != nil {
		errs = append(errs, errors.New("sse: Config.ClientID and Config.Authenticate are both set: set one"))
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if c.ClientID == nil {
		c.ClientID = randomClientID
	}
	if c.History == 0 {
		c.History = DefaultHistory
	}
	if c.Keys == 0 {
		c.Keys = DefaultKeys
	}
	if c.HistoryBytes == 0 {
		c.HistoryBytes = DefaultHistoryBytes
	}
	if c.KeyBytes == 0 {
		c.KeyBytes = DefaultKeyBytes
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.Retry == 0 {
		c.Retry = DefaultRetry
	}
	if c.RefuseRetry == 0 {
		c.RefuseRetry = DefaultRefuseRetry
	}
	switch {
	case c.MaxTopics == 0:
		c.MaxTopics = DefaultMaxTopics
	case c.MaxTopics < 0:
		c.MaxTopics = 0 // no limit
	}
	switch {
	case c.MaxStreams == 0:
		c.MaxStreams = defaultMaxStreams(openFileLimit())
	case c.MaxStreams < 0:
		c.MaxStreams = 0 // no limit
	}
	switch {
	case c.MaxStreamsPerClient == 0:
		c.MaxStreamsPerClient = DefaultMaxStreamsPerClient
	case c.MaxStreamsPerClient < 0:
		c.MaxStreamsPerClient = 0 // no limit
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// randomClientID is the default Config.ClientID: 96 random bits.
func randomClientID(*http.Request) (string, error) {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// defaultMaxStreams is MaxStreams for a process allowed limit open files (0:
// no limit): nine tenths of them, keeping at least 32 for the rest of the
// server.
func defaultMaxStreams(limit int) int {
	if limit <= 0 {
		return 0
	}
	return max(limit-max(limit/10, 32), 1)
}
