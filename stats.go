package sse

import "sync/atomic"

// Stats is a snapshot of a Hub's state and counters, from Hub.Stats. The
// counters start at zero when the hub is created and only grow.
type Stats struct {
	Streams int // streams open now
	Clients int // distinct client IDs with at least one open stream
	Topics  int // topics with at least one subscribed stream

	Published       uint64 // events accepted by Send, Broadcast and Publish
	Queued          uint64 // frames queued to streams: one per recipient
	Written         uint64 // frames written to streams, replays included
	SlowDisconnects uint64 // streams ended because their queue overflowed
	Replays         uint64 // reconnects resumed exactly from Last-Event-ID, also from before the history
	Resets          uint64 // reconnects sent a ResetEvent instead: the sum of ResetsBy
	EpochReplays    uint64 // of those, reconnects from an earlier epoch that were replayed the whole current epoch (see StartReset)
	ResetsBy        Resets // Resets by reason
	ReplayFailures  uint64 // streams whose start the Broker failed (a replay or a snapshot it could not read): the stream ended before writing an event, and its client retries from the same Last-Event-ID
	Snapshots       uint64 // streams that started with a snapshot of keyed events
	Refused         uint64 // requests refused by a limit or a closing hub
	RateLimited     uint64 // of those, refused by Config.ConnectRatePerAddress or ConnectRatePerClient
	Heartbeats      uint64 // heartbeat comments queued
	BrokerGaps      uint64 // deliveries the Broker reported lost (BrokerHandler.HandleGap), each ending every stream
	BrokerEpochs    uint64 // new epochs the Broker reported with nothing lost (BrokerHandler.HandleEpoch)
	Expired         uint64 // streams ended when their credential expired (ReasonExpired)
	LifetimeEnds    uint64 // streams ended at their Config.MaxLifetime (ReasonLifetime)
	HookPanics      uint64 // OnConnect or OnDisconnect calls that panicked (each ends its stream's request, as net/http does)

	// Streams served through a ResponseWriter that hides what streaming
	// needs, such as middleware without an Unwrap method; the first of each
	// kind is also logged as a warning, even without Config.Logger.
	NoWriteDeadline     uint64 // streams whose writes cannot be cut short (see ErrStuckStreams)
	ServerWriteTimeouts uint64 // of those, streams that http.Server.WriteTimeout cut (ReasonServerWriteTimeout)
	Unflushable         uint64 // requests whose ResponseWriter cannot flush, so cannot stream (answered 500 before anything is written)
	Compressed          uint64 // streams that middleware gave a Content-Encoding (see Hub.ServeHTTP)
}

// Resets counts the reconnects sent a ResetEvent, by its reason.
type Resets struct {
	Expired uint64 // an event the stream may receive has left history since its Last-Event-ID
	Unknown uint64 // the Last-Event-ID is no position of the hub's, nor an ID it remembers
	Epoch   uint64 // the Last-Event-ID is from another epoch: an earlier run, a broker that lost its data
	Other   uint64 // any other reason a Broker gave
}

// counters are the hub's running totals.
type counters struct {
	published, queued, written, slow, replays, resets, snapshots, refused, heartbeats atomic.Uint64
	noDeadline, serverTimeouts, unflushable, compressed                               atomic.Uint64
	expired, unknown, epoch, otherReset, gaps, epochs, replayFailures, hookPanics     atomic.Uint64
	epochReplays, credExpired, lifetimes, rateLimited                                 atomic.Uint64
}

// countReset counts a reset for reason why.
func (c *counters) countReset(why string) {
	c.resets.Add(1)
	switch why {
	case "expired":
		c.expired.Add(1)
	case "unknown":
		c.unknown.Add(1)
	case "epoch":
		c.epoch.Add(1)
	default:
		c.otherReset.Add(1)
	}
}

// resetsBy reads the resets by reason.
func (c *counters) resetsBy() Resets {
	return Resets{
		Expired: c.expired.Load(), Unknown: c.unknown.Load(), Epoch: c.epoch.Load(),
		Other: c.otherReset.Load(),
	}
}
