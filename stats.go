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
	Replays         uint64 // reconnects resumed from Last-Event-ID
	Resets          uint64 // reconnects sent a ResetEvent instead
	Snapshots       uint64 // streams that started with a snapshot of keyed events
	Refused         uint64 // requests refused by a limit or a closing hub
	Heartbeats      uint64 // heartbeat comments queued

	// Streams served through a ResponseWriter that hides what streaming
	// needs, such as middleware without an Unwrap method; the first of each
	// kind is also logged as a warning, even without Config.Logger.
	NoWriteDeadline uint64 // streams whose writes cannot be cut short (see ErrStuckStreams)
	Unflushable     uint64 // requests whose ResponseWriter cannot flush, which cannot stream
	Compressed      uint64 // streams that middleware gave a Content-Encoding (see Hub.ServeHTTP)
}

// counters are the hub's running totals.
type counters struct {
	published, queued, written, slow, replays, resets, snapshots, refused, heartbeats atomic.Uint64
	noDeadline, unflushable, compressed                                               atomic.Uint64
}
