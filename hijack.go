package sse

import (
	"bytes"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"
)

// hijack takes s's HTTP/1.x connection over from net/http (Config.Hijack)
// and writes the response head and a retry field (none if retry is not
// positive) to it. From then on the stream writes straight to the socket,
// and a goroutine of the hub's (watch; with Config.Poll, the hub's poller)
// notices the client leaving. Once
// its start is written, the handler hands the stream to the hub
// (Hub.handOff) and returns: net/http's goroutine, with the deep stack its
// request took, and its buffers for the connection are then freed. hijack
// reports false, with a nil error, when the ResponseWriter cannot hijack:
// the stream is then served through net/http as usual.
func (h *Hub) hijack(s *stream, retry time.Duration) (bool, error) {
	conn, _, err := s.rc.Hijack()
	if err != nil {
		h.log.Debug("sse: streaming through net/http: the connection cannot be taken over", "client", s.info.ClientID, "err", err)
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
	// Drop net/http's response, which holds on to the connection's 4 KiB
	// reader and writer: nothing of it is needed any more. A request body
	// (odd on a GET) reads from that reader too: OnDisconnect gets a copy
	// of the request without it.
	s.w, s.rc = nil, nil
	if r := s.info.Request; r.Body != nil && r.Body != http.NoBody {
		r = r.WithContext(r.Context())
		r.Body, r.GetBody = http.NoBody, nil
		s.info.Request = r
	}
	s.holds = 1 // the stream's end's, and the reader's once it has one: see letGo
	if !h.cfg.Poll || !h.pollAdd(s) {
		h.read(s)
	}
	if err := s.write([]*envelope{control(head.Bytes())}); err != nil {
		return true, err
	}
	s.connMu.Lock()
	s.opened = true
	s.connMu.Unlock()
	return true, nil
}

// watch reads s's connection until it fails: its client closing the
// connection, or Hub.end waking it because the stream ended. It then ends
// the stream as the client's leaving (unless it already ended), as
// net/http's background read does for the streams it serves, and lets go
// of the connection.
func (h *Hub) watch(s *stream) {
	defer h.track.done()
	var b [64]byte
	for {
		if _, err := s.conn.Read(b[:]); err != nil {
			break
		}
	}
	s.close(ReasonClientGone) // unless it had ended already
	s.letGo()
	// h stays live across the reads, so that a traceback names the hub
	// (the tests tell a hub's goroutines by it).
	runtime.KeepAlive(h)
}

// read gives s's connection a reader goroutine (watch), unless it has been
// let go of already: with Config.Poll, once its client sent something.
func (h *Hub) read(s *stream) {
	s.connMu.Lock()
	if s.holds == 0 {
		s.connMu.Unlock()
		return
	}
	s.holds++
	s.connMu.Unlock()
	// The stream's end has not let go, so the stream still holds the
	// tracker's count.
	h.track.add(1)
	go h.watch(s)
}

// letGo releases a hold on a taken-over connection: its reader's, once it
// stopped reading, or the stream's end's (Hub.end), once the stream is
// unregistered and OnDisconnect has returned. The last to let go hangs up,
// so that a linger or a TLS alert never delays OnDisconnect, and nothing
// reads the connection while it does.
func (s *stream) letGo() {
	s.connMu.Lock()
	s.holds--
	last := s.holds == 0
	s.connMu.Unlock()
	if last {
		s.mu.Lock()
		reason := s.reason // the stream has ended: its end or its reader closed it
		s.mu.Unlock()
		s.hangUp(reason)
	}
}

// lingerTime bounds how long a connection that the hub ends lingers for its
// client to read the last frames (net/http waits as long).
const lingerTime = 500 * time.Millisecond

// hangUp closes a taken-over connection once its stream has ended. A stream
// the hub ended on purpose (Disconnect, Shutdown) promised its client the
// frames queued before: closing a socket with unread input makes the kernel
// send a reset, which may discard frames the client has not read yet. So it
// shuts the write side (the client reads everything, then the end), reads
// whatever the client still sends until it closes its side or lingerTime
// passes, and then closes. Over TLS the connection underneath is closed
// without waiting for the close_notify alert to be written, which could
// take 5 s with a client that stopped reading. Other streams, whose client
// left or could not keep up, are closed at once.
func (s *stream) hangUp(reason DisconnectReason) {
	if s.hub.cfg.Poll {
		s.hub.pollRemove(s) // before its descriptor may be reused
	}
	raw := s.conn
	if tc, ok := raw.(interface{ NetConn() net.Conn }); ok {
		raw = tc.NetConn()
	}
	if reason != ReasonDisconnected && reason != ReasonShutdown && reason != ReasonExpired && reason != ReasonLifetime {
		_ = raw.Close()
		return
	}
	linger := time.AfterFunc(lingerTime, func() { _ = raw.Close() }) // also cuts a close_notify short
	defer linger.Stop()
	if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(lingerTime))
	buf := make([]byte, 4<<10)
	for {
		if _, err := s.conn.Read(buf); err != nil {
			break
		}
	}
	_ = raw.Close()
}

// handOff hands a stream that took its connection over, and whose start is
// written, to the hub: from now on a drain writes it whenever its queue
// becomes non-empty (Hub.drain), and ends it, and its handler returns. The
// request has been answered, so its context is over: the stream ends when
// its client leaves (watch), the hub ends it, or a write fails. Unless
// OnDisconnect needs them, the stream lets go of its request and what else
// only its start needed.
func (h *Hub) handOff(s *stream, start StartKind) {
	s.info.Start = start
	if h.cfg.OnDisconnect == nil {
		s.info.Request, s.info.Topics, s.info.LastEventID = nil, nil, ""
	}
	s.mu.Lock()
	s.driven = true
	begin := s.startDrain() // what was queued during the start, or its end
	s.mu.Unlock()
	s.wakeUp(nil, begin)
}

// drain is the writer of a driven stream, on a goroutine of its own: it
// writes what is queued until the queue is empty and returns, or ends the
// stream once it has ended. A panic, in OnDisconnect say, is logged: there
// is no net/http handler to recover it.
func (h *Hub) drain(s *stream) {
	reason, ended := ReasonWriteFailed, true // unless the drain returns
	defer func() {
		if p := recover(); p != nil {
			h.alarm().Error("sse: panic in a stream's writer or OnDisconnect", "client", s.info.ClientID, "panic", p,
				"stack", string(debug.Stack()))
		}
	}()
	defer func() {
		if ended { // even if the drain panicked
			h.end(s, s.info, reason)
		}
	}()
	reason, ended = s.drain()
	runtime.KeepAlive(h) // see watch
}

// quickDrain writes the lone frame of each stream of list, without
// blocking (stream.quickWrite), and starts a drain for each that has more
// to write: the rest of its frame, more frames, or its end. Each stream of
// list holds its writer role (writing) until then; none has ended (they
// are registered), so each holds the tracker's count while this runs.
func (h *Hub) quickDrain(list []*stream) {
	for i, s := range list {
		list[i] = nil
		if !s.quickWrite() {
			go h.drain(s)
		}
	}
	runtime.KeepAlive(h) // see watch
}
