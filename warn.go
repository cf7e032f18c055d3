package sse

import "log/slog"

// warning is a kind of condition that breaks streams without the
// application having done anything wrong in its own code: middleware that
// hides what streaming needs, a Broker that hangs.
type warning uint8

const (
	warnNoFlush       warning = iota // a ResponseWriter that cannot flush
	warnNoDeadline                   // a ResponseWriter that takes no write deadline
	warnServerTimeout                // such a ResponseWriter under http.Server.WriteTimeout
	warnStuck                        // Shutdown gave up on such streams
	warnPublishHangs                 // Shutdown gave up waiting for Broker.Publish
	warnGaveUp                       // Shutdown's context ended before it was done
	warnEncoding                     // middleware compresses a stream
	warnKinds
)

// warn logs msg at Warn the first time a hub meets w, to Config.Logger, or
// to slog.Default() if the hub has none: such conditions must not go
// unnoticed. Later occurrences go to Config.Logger at Debug; Stats counts
// them.
func (h *Hub) warn(w warning, msg string, args ...any) {
	if h.warned[w].Swap(true) {
		h.log.Debug(msg, args...)
		return
	}
	h.alarm().Warn(msg, args...)
}

// alarm returns the logger for conditions that must not go unnoticed:
// Config.Logger, or slog.Default() if the hub has none.
func (h *Hub) alarm() *slog.Logger {
	if h.alarms == nil {
		return slog.Default()
	}
	return h.alarms
}
