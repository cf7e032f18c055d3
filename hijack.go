package sse

import (
	"bytes"
	"time"
)

// hijack takes s's HTTP/1.x connection over from net/http (Config.Hijack)
// and writes the response head and a retry field (none if retry is not
// positive) to it. From then on the stream writes straight to the socket,
// and a goroutine of the hub's (watch) notices the client leaving. Once
// its start is written, the handler hands the stream to Hub.drive and
// returns: net/http's goroutine, with the deep stack its request took, and
// its buffers for the connection are then freed. hijack reports false,
// with a nil error, when the ResponseWriter cannot hijack: the stream is
// then served through net/http as usual.
func (h *Hub) hijack(s *stream, retry time.Duration) (bool, error) {
	conn, _, err := s.rc.Hijack()
	if err != nil {
		h.log.Debug("sse: streaming through net/http: the connection cannot be taken over", "client", s.clientID, "err", err)
		return false, nil
	}
	// Bytes a client sent after its request (pipelined requests) sit in
	// net/http's reader, which is dropped: an event stream reads nothing.
	hdr := s.w.Header()
	// The body is the bare event stream: whatever a middleware announced
	// about lengths, codings or compression before the hub took over no
	// longer applies.
	hdr.Del("Content-Length")
	hdr.Del("Transfer-Encoding")
	hdr.Del("Content-Encoding")
	hdr.Del("Trailer")
	hdr.Set("Connection", "close") // the body ends when the connection closes
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	if err := hdr.Write(&head); err != nil {
		_ = conn.Close()
		return true, err
	}
	head.WriteString("\r\n")
	if retry > 0 {
		head.Write(retryFrame(nil, retry))
	}
	s.conn = conn
	h.track.add(1)
	go h.watch(s)
	if err := s.write([]*Message{control(head.Bytes())}); err != nil {
		return true, err
	}
	s.connMu.Lock()
	s.opened = true
	s.connMu.Unlock()
	return true, nil
}

// watch reads s's connection until it fails: a client that closes its
// connection, or one the stream's handler closes when the stream ends.
// It then ends the stream as the client's leaving (unless it already
// ended), as net/http's background read does for the streams it serves.
func (h *Hub) watch(s *stream) {
	defer h.track.done()
	var b [64]byte
	for {
		if _, err := s.conn.Read(b[:]); err != nil {
			s.close(ReasonClientGone)
			return
		}
	}
}

// drive runs the writer of a stream that took its connection over, on a
// fresh goroutine with a shallow stack, then ends the stream. The request
// has been answered, so its context is over: the stream ends when its
// client leaves (watch), the hub ends it, or a write fails. A panic, in
// OnDisconnect say, is logged: there is no net/http handler to recover it.
func (h *Hub) drive(s *stream, info StreamInfo) {
	reason := ReasonWriteFailed
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("sse: panic in a stream's writer or OnDisconnect", "client", s.clientID, "panic", p)
		}
	}()
	defer func() { h.end(s, info, reason) }() // even if run panics
	reason = s.run(nil)
}
