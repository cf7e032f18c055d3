package sse

// DisconnectReason says why a stream ended. Config.OnDisconnect receives it.
type DisconnectReason uint8

// The reasons a stream ends.
const (
	// ReasonClientGone: the client closed the connection, or the request's
	// context ended.
	ReasonClientGone DisconnectReason = iota
	// ReasonSlow: the stream's queue overflowed (Config.QueueBytes). The
	// client reconnects and replays what it missed.
	ReasonSlow
	// ReasonWriteFailed: a write or flush failed, or took longer than
	// Config.WriteTimeout.
	ReasonWriteFailed
	// ReasonDisconnected: Hub.Disconnect ended the client's streams.
	ReasonDisconnected
	// ReasonShutdown: Hub.Shutdown or Hub.Close ended the stream.
	ReasonShutdown
	// ReasonUnavailable: the stream could not start exactly, so it ended
	// before it told its client a position it had not reached: the Broker
	// failed to read the snapshot, or (with several nodes) this hub's
	// deliveries did not catch up with the client's Last-Event-ID in
	// time; or the Broker lost deliveries to this hub (BrokerHandler.HandleGap). The
	// client reconnects and tries again.
	ReasonUnavailable
	// ReasonServerWriteTimeout: http.Server.WriteTimeout cut the stream,
	// because its ResponseWriter takes no write deadline, so the hub could
	// not clear the server's (middleware that wraps the ResponseWriter
	// without an Unwrap method; see Stats.NoWriteDeadline). The client
	// reconnects, and the next stream is cut the same way: give the
	// wrapper an Unwrap method. The hub names this reason for a stream
	// whose writer takes no deadline and that ended, as a client leaving
	// or a failed write, once the server's WriteTimeout had passed since
	// its request began.
	ReasonServerWriteTimeout
	// ReasonExpired: the stream's credential expired (Credential.Expires,
	// from Config.Authenticate). The client reconnects with the credential
	// it has by then: a refreshed cookie passes, an expired one is refused.
	ReasonExpired
	// ReasonLifetime: the stream reached its Config.MaxLifetime. The client
	// reconnects, authenticated anew, to whichever node serves it.
	ReasonLifetime
)

// String returns the reason in a word or two, for logs.
func (r DisconnectReason) String() string {
	switch r {
	case ReasonClientGone:
		return "client gone"
	case ReasonSlow:
		return "slow"
	case ReasonWriteFailed:
		return "write failed"
	case ReasonDisconnected:
		return "disconnected"
	case ReasonShutdown:
		return "shutdown"
	case ReasonUnavailable:
		return "unavailable"
	case ReasonServerWriteTimeout:
		return "cut by http.Server.WriteTimeout"
	case ReasonExpired:
		return "credential expired"
	case ReasonLifetime:
		return "lifetime over"
	}
	return "unknown"
}
