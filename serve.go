package sse

import (
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// allowed is what ServeHTTP's Allow header lists.
const allowed = "GET, HEAD, OPTIONS"

// ServeHTTP serves one event stream. It answers the ClientID and Topics
// functions' errors with their status, and requests over a limit or to a
// closing hub with 200 and a retry hint. Otherwise it registers the
// stream, replays what a Last-Event-ID missed, and writes events until the
// client leaves or the hub ends the stream. With Config.Hijack, an HTTP/1.x
// stream's writing goes on after ServeHTTP has returned, on the hub's own
// goroutines.
//
// HEAD is answered as GET would be, without a body and without opening a
// stream (RFC 9110); OPTIONS with 204 and an Allow header, for CORS
// middleware that passes preflight requests on; other methods with 405. A
// Content-Encoding that middleware put on a stream is reported (a warning
// logged once per hub, Stats.Compressed): a compressor that buffers holds
// events back. A ResponseWriter that cannot flush (nor hijack, with
// Config.Hijack), such as middleware that wraps it without an Unwrap
// method, cannot stream: such requests are answered 500 (see
// Stats.Unflushable).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		w.Header().Set("Allow", allowed)
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", allowed)
		http.Error(w, "event streams are read with GET", http.StatusMethodNotAllowed)
		return
	}
	if r.Method == http.MethodGet && h.perAddr != nil && !h.perAddr.allow(remoteHost(r.RemoteAddr)) {
		// Before authentication, which may cost more than a refusal.
		h.refuse(newStream(h, StreamInfo{Request: r}, w), r, "ConnectRatePerAddress")
		return
	}
	cred, err := h.identify(r)
	id := cred.ClientID
	if err == nil && id == "" {
		err = errors.New("sse: Config.ClientID or Config.Authenticate returned an empty ID")
	}
	if err == nil && !cred.Expires.IsZero() && !cred.Expires.After(began) {
		err = fmt.Errorf("sse: the credential expired at %v", cred.Expires)
	}
	if err != nil {
		h.reject(w, r, "client ID", err, http.StatusUnauthorized)
		return
	}
	var topics []string
	if h.cfg.Topics != nil {
		topics, err = h.cfg.Topics(r)
		for _, t := range topics {
			if err == nil && t == "" {
				err = errors.New("sse: Config.Topics returned an empty topic")
			}
		}
		if err == nil && h.cfg.MaxTopics > 0 && len(topics) > h.cfg.MaxTopics {
			err = fmt.Errorf("sse: %d topics asked for, over Config.MaxTopics (%d)", len(topics), h.cfg.MaxTopics)
		}
		if err != nil {
			h.reject(w, r, "topics", err, http.StatusBadRequest)
			return
		}
	}
	if !reaches(w, flusher) && !(h.cfg.Hijack && r.ProtoMajor == 1 && reaches(w, hijacker)) {
		h.unflushable(w, r)
		return
	}
	if r.Method == http.MethodHead {
		setStreamHeaders(w.Header())
		w.WriteHeader(http.StatusOK)
		return
	}
	if h.perClient != nil && !h.perClient.allow(id) {
		h.refuse(newStream(h, StreamInfo{ClientID: id, Request: r}, w), r, "ConnectRatePerClient")
		return
	}
	info := StreamInfo{ClientID: id, Topics: topics, LastEventID: h.lastEventID(r), Request: r}
	s := newStream(h, info, w)
	reg, refusal := h.register(s)
	if refusal != "" {
		h.refuse(s, r, refusal)
		return
	}
	if at, why := h.endAt(began, cred); !at.IsZero() {
		h.schedule(s, at, why)
	}
	reason, handedOff := ReasonClientGone, false
	defer func() { // deferred, so a panic (in a hook, a Broker) cannot leave the stream registered
		if !handedOff {
			h.end(s, info, reason)
		}
	}()
	op := &opening{h: h, s: s, r: r, info: &info, began: began}
	if h.mem == nil {
		op.limit = startPage // the Broker's messages are private copies
	}
	reason, handedOff = h.serve(op, reg)
}

// end unregisters a stream whose writer has returned and calls
// OnDisconnect if OnConnect was called. It runs once per registered
// stream, on the goroutine that ran its writer, and releases the stream's
// count in the hub's tracker last, even if the hook panics.
func (h *Hub) end(s *stream, info StreamInfo, reason DisconnectReason) {
	defer h.track.done()
	if s.unbounded {
		defer h.track.bound(-1)
	}
	if s.conn != nil {
		// After OnDisconnect, even if it panics: whichever of this and the
		// connection's reader lets go last hangs up.
		defer s.letGo()
	}
	s.finish()
	h.unregister(s)
	if h.cfg.MaxLifetime > 0 || h.cfg.Authenticate != nil { // the streams that may have an end appointed
		h.unschedule(s)
	}
	if s.conn != nil {
		// Nothing watches for the client any more (a Shutdown called from
		// OnDisconnect waits for the poller to be done with its streams).
		_ = s.conn.SetReadDeadline(time.Now()) // wakes the reader
		if h.cfg.Poll {
			h.pollRemove(s)
		}
	}
	h.log.Debug("sse: stream ended", "client", s.info.ClientID, "reason", reason)
	if s.connected && h.cfg.OnDisconnect != nil {
		h.hook(func() { h.cfg.OnDisconnect(info, reason) })
	}
}

// open writes the stream's headers and a retry field (none if retry is not
// positive), and flushes them, so the browser's onopen fires at once. Until
// then the stream is not cut short even if it is ended as slow (see
// Hub.expire): its client always gets its 200. For a stream (op, its
// opening; nil for a refusal) it first tries to take the connection over
// from net/http with Config.Hijack, and it reports a ResponseWriter that
// takes no write deadline.
func (h *Hub) open(s *stream, retry time.Duration, op *opening) error {
	streaming := op != nil
	hdr := s.w.Header()
	setStreamHeaders(hdr)
	if streaming && h.cfg.Hijack && s.info.Request.ProtoMajor == 1 {
		if ok, err := h.hijack(s, retry); ok || err != nil {
			return err
		}
	}
	if s.info.Request.ProtoMajor == 1 {
		// No chunked coding: net/http then writes each drain as it is, in
		// one write, and closes the connection when the stream ends (the
		// setup its own source recommends for Server-Sent Events).
		hdr.Set("Transfer-Encoding", "identity")
	}
	s.w.WriteHeader(http.StatusOK)
	// Streams outlive http.Server.WriteTimeout: clear it, and bound each
	// write instead (stream.deadline).
	if err := s.rc.SetWriteDeadline(time.Time{}); err != nil {
		if !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		s.noDeadline = true
		if streaming {
			s.unbounded = true
			h.track.bound(1)
			h.stats.noDeadline.Add(1)
			h.warn(warnNoDeadline, "sse: the ResponseWriter takes no write deadline, so a client that stops reading "+
				"holds its stream's writer until TCP gives up, and Shutdown cannot end it; "+
				"wrap the ResponseWriter in middleware with an Unwrap method",
				"type", fmt.Sprintf("%T", s.w))
			if srv, _ := s.info.Request.Context().Value(http.ServerContextKey).(*http.Server); srv != nil && srv.WriteTimeout > 0 {
				// net/http set it as it read the request, just before the
				// handler began: allow for that.
				wt := srv.WriteTimeout
				op.serverCut = op.began.Add(wt - min(wt/50, 100*time.Millisecond))
				h.warn(warnServerTimeout, "sse: the ResponseWriter takes no write deadline, so the hub cannot clear "+
					"http.Server.WriteTimeout, which will cut every stream that long after its request began "+
					"(reason \""+ReasonServerWriteTimeout.String()+"\"); "+
					"wrap the ResponseWriter in middleware with an Unwrap method",
					"write_timeout", wt, "type", fmt.Sprintf("%T", s.w))
			}
		}
	}
	s.idleClear = s.info.Request.ProtoMajor != 1
	var batch []*envelope
	if retry > 0 {
		batch = append(batch, control(retryFrame(nil, retry)))
	}
	if err := h.writeAll(s, batch); err != nil {
		if errors.Is(err, http.ErrNotSupported) { // a writer that could hijack, but then did not
			h.stats.unflushable.Add(1)
			h.warn(warnNoFlush, "sse: the ResponseWriter cannot flush, so it cannot stream; "+
				"wrap it in middleware with an Unwrap method", "type", fmt.Sprintf("%T", s.w))
		}
		return err
	}
	if ce := hdr.Get("Content-Encoding"); ce != "" && streaming {
		// Set by middleware, before the hub's headers or when they were
		// written: a compressor that buffers holds events back.
		h.stats.compressed.Add(1)
		h.warn(warnEncoding, "sse: middleware gave the event stream a Content-Encoding; unless its Flush "+
			"flushes the compressor, events wait in its buffer: leave text/event-stream uncompressed",
			"content_encoding", ce, "type", fmt.Sprintf("%T", s.w))
	}
	s.connMu.Lock()
	s.opened = true
	s.connMu.Unlock()
	return nil
}

// serve writes the stream's start (OnConnect, the headers, then a replay,
// a reset, a snapshot, a position: see writeStart), then its queue until
// it ends, and says why it ended. A stream that took its connection over
// is handed off instead (handedOff): the hub's goroutines write it when
// there is something to write (Hub.handOff), and the handler returns.
func (h *Hub) serve(op *opening, reg registration) (reason DisconnectReason, handedOff bool) {
	s, r := op.s, op.r
	if reason, live := h.writeStart(op, reg); !live {
		return h.cutByServer(op, reason), false
	}
	if s.conn != nil {
		h.handOff(s, op.info.Start)
		return 0, true
	}
	return h.cutByServer(op, s.run(r.Context().Done())), false
}

// cutByServer returns ReasonServerWriteTimeout for a stream that
// http.Server.WriteTimeout has cut, and reason for any other: a stream
// whose writer takes no deadline that failed or saw its request end, as
// net/http ends it when a write misses the deadline, once the server's
// WriteTimeout has passed.
func (h *Hub) cutByServer(op *opening, reason DisconnectReason) DisconnectReason {
	s := op.s
	if op.serverCut.IsZero() || time.Now().Before(op.serverCut) ||
		(reason != ReasonClientGone && reason != ReasonWriteFailed) {
		return reason
	}
	h.stats.serverTimeouts.Add(1)
	h.log.Warn("sse: stream ended", "client", s.info.ClientID, "reason", ReasonServerWriteTimeout,
		"type", fmt.Sprintf("%T", s.w))
	return ReasonServerWriteTimeout
}

// unflushable answers a request whose ResponseWriter cannot flush, which
// therefore cannot stream: the events would wait in a buffer until the
// handler returned, that is for ever. It answers 500, after which browsers
// do not reconnect: this is a fault in the server's code, which no retry
// mends, and an empty 200 instead would have every page reconnect every
// Retry and never receive an event, with nothing in the browser to say
// why. The body says it; the warning goes to slog.Default() if the hub
// has no Logger.
func (h *Hub) unflushable(w http.ResponseWriter, r *http.Request) {
	h.stats.unflushable.Add(1)
	h.warn(warnNoFlush, "sse: the ResponseWriter cannot flush, so it cannot stream: answered 500; "+
		"wrap it in middleware with an Unwrap method (or a Flush method that flushes)",
		"type", fmt.Sprintf("%T", w), "remote", r.RemoteAddr)
	http.Error(w, "sse: this server cannot stream events: its ResponseWriter cannot flush "+
		"(middleware that wraps it needs an Unwrap method)", http.StatusInternalServerError)
}

// reaches reports whether w, or a writer its Unwrap methods lead to, has
// a method that can, as http.ResponseController looks for them. Nothing
// is written.
func reaches(w http.ResponseWriter, can func(http.ResponseWriter) bool) bool {
	for !can(w) {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
	return true
}

// flusher and hijacker say whether w has the methods that
// http.ResponseController calls to flush and to hijack.
func flusher(w http.ResponseWriter) bool {
	switch w.(type) {
	case http.Flusher, interface{ FlushError() error }:
		return true
	}
	return false
}

func hijacker(w http.ResponseWriter) bool {
	_, ok := w.(http.Hijacker)
	return ok
}

// refuse answers a request the hub will not serve now with 200 and a retry
// hint, so the browser tries again later: a 5xx would make it give up.
func (h *Hub) refuse(s *stream, r *http.Request, why string) {
	h.stats.refused.Add(1)
	if strings.HasPrefix(why, "ConnectRate") {
		h.stats.rateLimited.Add(1)
	}
	h.log.Info("sse: request refused", "reason", why, "remote", r.RemoteAddr)
	retry := h.cfg.RefuseRetry
	if half := int64(retry / 2); half > 0 {
		retry += time.Duration(mrand.Int64N(half))
	}
	_ = h.open(s, retry, nil) // through net/http, which then closes or reuses the connection
}

// reject answers a request whose client ID or topics could not be
// determined. The error is logged, never sent.
func (h *Hub) reject(w http.ResponseWriter, r *http.Request, what string, err error, fallback int) {
	code := statusOf(err, fallback)
	h.log.Info("sse: request rejected", "step", what, "status", code, "err", err, "remote", r.RemoteAddr)
	http.Error(w, http.StatusText(code), code)
}

// setStreamHeaders sets the response headers of an event stream.
func setStreamHeaders(hdr http.Header) {
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
}

// cut shortens a client-supplied value for a log line.
func cut(v string) string {
	const most = 48
	if len(v) <= most {
		return v
	}
	return fmt.Sprintf("%s… (%d bytes)", strings.ToValidUTF8(v[:most], ""), len(v))
}

// lastEventID returns the resume point a request carries: its
// Last-Event-ID header, or, with Config.LastEventIDParam, that query
// parameter (the header wins when both are there).
func (h *Hub) lastEventID(r *http.Request) string {
	if v := r.Header.Get("Last-Event-ID"); v != "" || h.cfg.LastEventIDParam == "" {
		return v
	}
	return r.URL.Query().Get(h.cfg.LastEventIDParam)
}
