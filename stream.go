package sse

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// stream is one connected event stream (the server side; the Go client that
// reads one is Client, in client.go): a bounded queue of frames that any
// goroutine may add to without blocking, and the writer that drains it. The
// writer runs on the stream's own request goroutine (run), or, once a
// stream that took its connection over is handed to the hub (driven), on a
// goroutine started when its queue becomes non-empty, which returns once
// it is empty again (Hub.drain): an idle driven stream holds no goroutine
// of its own to write.
type stream struct {
	// What a delivery touches, kept together (and small: a stream is
	// 320 bytes, a size class, with every field below).
	mu      sync.Mutex  // guards the fields up to held
	queue   []*envelope // in delivery order; conflation may leave nil holes
	bytes   int         // sum of the queued frames' lengths
	holes   int32       // nil entries in queue
	holding int32       // run-time subscriptions whose state is being read (see hold)
	closed  bool
	reason  DisconnectReason
	driven  bool        // the hub's drains write it (see Hub.handOff)
	writing bool        // with driven: a drain runs, or is about to
	wrote   atomic.Bool // set by the writer after a write; cleared by the heartbeat
	hub     *Hub

	keyed map[uint64]int // for long queues: where each state's frame is, by envelope.stateHash

	held []heldFrame // deliveries while holding, and where each state goes

	wake chan struct{} // made by run, the request goroutine's writer: "the queue changed or the stream closed"; guarded by mu

	info StreamInfo
	addr string // with Config.MaxStreamsPerAddress: the remote address's host
	w    http.ResponseWriter
	rc   *http.ResponseController
	conn net.Conn // set by Hub.hijack before the stream opens (see connMu); nil when net/http writes

	// Guarded by hub.mu.
	topics     map[string]struct{}
	registered bool // in the hub's registry

	partial bool // writer-owned: quickWrite wrote part of a frame; the hub keeps the rest (Hub.pending)

	connMu   sync.Mutex // orders expire against the stream's opening, its handler's return and deadline moves
	opened   bool       // the headers are out; guarded by connMu
	finished bool       // the handler is returning; guarded by connMu
	expired  bool       // expire set the deadline to the past, for good; guarded by connMu
	holds    int8       // with conn: who has yet to let go of it, the last hanging up (see letGo); guarded by connMu
	pollFD   int32      // with Config.Poll: 1 + the descriptor the hub's poller watches, 0 if none; guarded by hub.pollMu

	connected bool  // OnConnect was called; set by the handler before its writer runs
	unbounded bool  // counted by Hub.track.bound; set by Hub.open
	endIndex  int32 // its end's place in the hub's heap of ends (Hub.schedule); -1 when not in it; guarded by the hub's ends.mu

	noDeadline bool        // writer-owned: the ResponseWriter takes no write deadline
	idleClear  bool        // writer-owned: clear the deadline before waiting (see disarm)
	spare      []*envelope // writer-owned: the drained queue, kept for reuse
	deadlineAt time.Time   // writer-owned: the write deadline set; zero when none is
}

func newStream(h *Hub, info StreamInfo, w http.ResponseWriter) *stream {
	s := &stream{
		hub:      h,
		info:     info,
		w:        w,
		rc:       http.NewResponseController(w),
		endIndex: -1,
	}
	if info.Request != nil && h.cfg.MaxStreamsPerAddress > 0 {
		s.addr = remoteHost(info.Request.RemoteAddr)
	}
	if len(info.Topics) > 0 {
		s.topics = make(map[string]struct{}, len(info.Topics))
		for _, t := range info.Topics {
			s.topics[t] = struct{}{}
		}
	}
	return s
}

// enqueue adds m's frame to the queue and reports whether it did. It never
// blocks on the client. A queued frame of the same state (the same Key for
// the same audience) is replaced. If the frame does not fit, the stream is
// ended as slow.
func (s *stream) enqueue(m *envelope) bool { return s.offer(m, nil) }

// offer is enqueue for a walk over many streams (a delivery, the
// heartbeat): a driven stream on a TCP connection whose queue it makes
// non-empty goes to quick, whose goroutines write a lone frame to many
// streams each, rather than to a drain of its own.
func (s *stream) offer(m *envelope, quick *quickDrains) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	if s.holding > 0 { // a run-time subscription's state is being read: see hold
		s.held = append(s.held, heldFrame{e: m})
		s.bytes += len(m.frame)
		if s.bytes > s.hub.cfg.QueueBytes {
			s.closed, s.reason = true, ReasonSlow
			s.mu.Unlock()
			s.overflow()
			return false
		}
		s.mu.Unlock()
		return true
	}
	ok, wasEmpty, filling := s.push(m)
	var wake chan struct{}
	start := false
	if ok && wasEmpty {
		wake, start = s.wake, s.startDrain()
	}
	s.mu.Unlock()
	if !ok {
		s.overflow()
		return false
	}
	if filling && !s.hub.pressure.Load() {
		s.hub.pressure.Store(true)
	}
	if wasEmpty {
		// A non-empty queue was signalled when it became non-empty and has
		// not been taken since (take empties it): the writer will see m.
		if start && quick != nil && s.isTCP() {
			quick.add(s)
		} else {
			s.wakeUp(wake, start)
		}
	}
	return true
}

// push adds m to the queue, conflating it with a queued frame of its state.
// It reports false, having marked the stream ended as slow, if m does not
// fit (the caller then calls overflow); wasEmpty, if the queue was empty;
// filling, if the queue is past half full. Callers hold s.mu.
func (s *stream) push(m *envelope) (ok, wasEmpty, filling bool) {
	if m.Key != "" {
		s.conflate(m)
	}
	if s.bytes+len(m.frame) > s.hub.cfg.QueueBytes {
		s.closed, s.reason = true, ReasonSlow
		return false, false, false
	}
	wasEmpty = len(s.queue) == 0
	s.queue = append(s.queue, m)
	s.bytes += len(m.frame)
	if s.keyed != nil && m.Key != "" {
		s.keyed[m.stateHash] = len(s.queue) - 1 // after a compaction in conflate, too
	}
	return true, wasEmpty, s.bytes > s.hub.cfg.QueueBytes/2
}

// overflow follows the end of a stream as slow, which its caller marked
// under s.mu (once: a closed stream takes nothing more): it counts it,
// wakes the writer and cuts its blocked write short rather than wait out
// the write timeout. Callers do not hold s.mu.
func (s *stream) overflow() {
	s.hub.stats.slow.Add(1)
	s.signal()
	// The stream's handler is still running (it is registered), so the
	// tracker's count is not zero.
	s.hub.track.add(1)
	go s.hub.expire(s)
}

// indexFrom is the queue length from which conflation looks keys up in an
// index rather than scanning the queue: a queue that short is scanned
// faster than a map is kept.
const indexFrom = 32

// conflate removes the queued frame of m's state, if there is one. A short
// queue is scanned and closed up; a long one is indexed by the states'
// hashes, and the frame leaves a hole that take drops, so each enqueue
// costs the same however long the queue. (Two states whose hashes collide
// are conflated less, never wrongly: the index entry is checked.) Callers
// hold s.mu.
func (s *stream) conflate(m *envelope) {
	if s.keyed == nil && len(s.queue) >= indexFrom {
		s.keyed = make(map[uint64]int, len(s.queue))
		for i, q := range s.queue {
			if q.Key != "" { // no holes yet: they come with the index
				s.keyed[q.stateHash] = i
			}
		}
	}
	if s.keyed == nil {
		for i, q := range s.queue {
			if q.stateHash == m.stateHash && q.state() == m.state() {
				s.bytes -= len(q.frame)
				copy(s.queue[i:], s.queue[i+1:])
				s.queue[len(s.queue)-1] = nil
				s.queue = s.queue[:len(s.queue)-1]
				return
			}
		}
		return
	}
	i, ok := s.keyed[m.stateHash]
	if !ok || s.queue[i] == nil || s.queue[i].state() != m.state() {
		return
	}
	// The index entry stays: enqueue points it at m.
	s.bytes -= len(s.queue[i].frame)
	s.queue[i] = nil
	s.holes++
	if s.holes >= compactFrom && int(s.holes) > len(s.queue)/2 {
		s.compact()
	}
}

// compactFrom is the fewest holes a queue is compacted for: compacting
// re-indexes the queue, so it is done rarely enough to cost little per
// enqueue (the holes cost a pointer each meanwhile).
const compactFrom = 256

// compact closes the queue's holes and re-indexes it. Callers hold s.mu.
func (s *stream) compact() {
	kept := s.queue[:0]
	for _, q := range s.queue {
		if q != nil {
			if q.Key != "" && s.keyed != nil {
				s.keyed[q.stateHash] = len(kept)
			}
			kept = append(kept, q)
		}
	}
	clear(s.queue[len(kept):])
	s.queue, s.holes = kept, 0
}

// expire makes a blocked write of s fail at once. It runs on its own
// goroutine: a ResponseWriter's SetWriteDeadline may wait on its connection,
// and enqueue must never wait.
func (h *Hub) expire(s *stream) {
	defer h.track.done()
	s.connMu.Lock()
	defer s.connMu.Unlock()
	// Not before the stream's headers are out, so its client gets a 200;
	// not once the handler returns, as the connection may serve another
	// request.
	if s.opened && !s.finished {
		s.expired = true // so that no later deadline move undoes this one
		_ = s.setWriteDeadline(time.Now())
	}
}

// finish marks the stream's handler as returning: from now on the hub
// leaves its connection alone.
func (s *stream) finish() {
	s.connMu.Lock()
	s.finished = true
	s.connMu.Unlock()
}

// close ends the stream for reason, unless it has already ended, and
// returns the reason it ended for: the first one given.
func (s *stream) close(reason DisconnectReason) DisconnectReason {
	s.mu.Lock()
	if !s.closed {
		s.closed, s.reason = true, reason
	}
	reason = s.reason
	wake, start := s.wake, s.startDrain()
	s.mu.Unlock()
	s.wakeUp(wake, start)
	return reason
}

// closeCounted ends the stream for reason, as close does, and adds one to
// n, unless it has ended already; it reports whether it ended it. The
// count comes first, so that whoever sees the stream end sees it counted.
func (s *stream) closeCounted(reason DisconnectReason, n *atomic.Uint64) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.closed, s.reason = true, reason
	n.Add(1)
	wake, start := s.wake, s.startDrain()
	s.mu.Unlock()
	s.wakeUp(wake, start)
	return true
}

// signal wakes the writer: the request goroutine's (run), or for a driven
// stream a drain, started unless one runs. Signalling a finished stream is
// harmless: its channel is never closed, and no drain starts for it.
func (s *stream) signal() {
	s.mu.Lock()
	wake, start := s.wake, s.startDrain()
	s.mu.Unlock()
	s.wakeUp(wake, start)
}

// startDrain reports whether a drain of a driven stream must start: one
// that has something to write, or has ended, and no drain running; it then
// marks one running. Callers hold s.mu and call wakeUp once they release it.
func (s *stream) startDrain() bool {
	if !s.driven || s.writing || (len(s.queue) == 0 && !s.closed) {
		return false
	}
	s.writing = true
	return true
}

// wakeUp starts a drain (start, from startDrain), or wakes the writer
// waiting on wake, if any.
func (s *stream) wakeUp(wake chan struct{}, start bool) {
	if start {
		go s.hub.drain(s)
		return
	}
	if wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// isClosed reports whether the stream has been ended.
func (s *stream) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// take removes everything queued. A stream ended as slow hands over
// nothing: its client cannot keep up and will replay after reconnecting.
func (s *stream) take() (batch []*envelope, closed bool, reason DisconnectReason) {
	s.mu.Lock()
	if len(s.queue) > 0 { // a wake-up may find the queue already drained
		if s.holes > 0 {
			s.compact()
		}
		batch = s.queue
		s.queue, s.spare = s.spare, nil
		s.bytes, s.keyed = 0, nil
	}
	closed, reason = s.closed, s.reason
	s.mu.Unlock()
	if closed && reason == ReasonSlow {
		return nil, true, reason
	}
	return batch, closed, reason
}

// run drains the queue on the request's goroutine until the stream ends,
// and returns why it ended.
func (s *stream) run(done <-chan struct{}) DisconnectReason {
	wake := make(chan struct{}, 1)
	s.mu.Lock()
	s.wake = wake // frames queued before are taken below, without a signal
	s.mu.Unlock()
	for {
		batch, closed, reason := s.take()
		if len(batch) > 0 {
			if err := s.writeBatch(batch); err != nil {
				return s.failed(err)
			}
		}
		if closed {
			return reason
		}
		if s.idleClear && !s.deadlineAt.IsZero() && len(wake) == 0 {
			s.disarm() // about to wait, with no write pending
		}
		select {
		case <-wake:
		case <-done:
			return ReasonClientGone
		}
	}
}

// quickBatch is how many streams one goroutine of a walk's quickDrains
// writes to.
const quickBatch = 64

// quickDrains collects, during a walk, the driven streams whose queue the
// walk made non-empty, and starts a goroutine (Hub.quickDrain) for every
// quickBatch of them: most are idle streams with one frame to write, which
// a write that does not block sends at once, without a goroutine and a
// write deadline of their own. A walk calls flush at its end.
type quickDrains struct {
	h    *Hub
	list []*stream
}

func (q *quickDrains) add(s *stream) {
	if q.list == nil {
		q.list = make([]*stream, 0, quickBatch)
	}
	q.list = append(q.list, s)
	if len(q.list) == quickBatch {
		q.flush()
	}
}

// flush starts the goroutine for the streams collected so far.
func (q *quickDrains) flush() {
	if len(q.list) > 0 {
		go q.h.quickDrain(q.list)
		q.list = nil
	}
}

// isTCP reports whether the stream writes to a TCP connection it took over,
// which takes writes that do not block (see quickWrite).
func (s *stream) isTCP() bool {
	_, ok := s.conn.(*net.TCPConn)
	return ok
}

// quickWrite writes a driven stream's queue if it is one frame and the
// stream has not ended, with one write that does not block, and reports
// whether it is done: the frame was written and nothing was queued
// meanwhile, so the stream's writing is over. Otherwise the stream still
// has a writer's work to do (the rest of its frame, in pending; more
// frames; its end), which a drain must do. The caller holds the stream's
// writer role (writing).
func (s *stream) quickWrite() (done bool) {
	s.mu.Lock()
	if s.closed || len(s.queue) != 1 || s.queue[0] == nil {
		s.mu.Unlock()
		return false
	}
	m := s.queue[0]
	s.queue[0] = nil
	s.queue, s.bytes, s.keyed = s.queue[:0], 0, nil
	s.mu.Unlock()
	n := tryWrite(s.conn.(*net.TCPConn), m.frame)
	if n < len(m.frame) {
		s.hub.keepPending(s, m.frame[n:]) // frames are never written to: no copy
		s.partial = true
		return false
	}
	s.wrote.Store(true)
	s.hub.stats.written.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 && !s.closed {
		s.writing = false // from here another writer may start
		return true
	}
	return false
}

// keepPending keeps rest, what quickWrite could not write of a stream's
// frame, for the stream's drain. Rare (the socket's buffer was full), so
// kept out of the stream's state.
func (h *Hub) keepPending(s *stream, rest []byte) {
	h.pendingMu.Lock()
	defer h.pendingMu.Unlock()
	if h.pending == nil {
		h.pending = make(map[*stream][]byte)
	}
	h.pending[s] = rest
}

// takePending returns what keepPending kept for s.
func (h *Hub) takePending(s *stream) []byte {
	h.pendingMu.Lock()
	defer h.pendingMu.Unlock()
	rest := h.pending[s]
	delete(h.pending, s)
	return rest
}

// tryWrite writes b to c with one write system call that does not wait
// for room in the socket's buffer, and returns how many bytes it wrote: all
// of them, unless the buffer is full or the connection failed (the
// blocking write that follows finds out).
func tryWrite(c *net.TCPConn, b []byte) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			k, err := syscall.Write(int(fd), b[n:])
			if err == syscall.EINTR {
				continue
			}
			if err != nil || k <= 0 {
				break
			}
			n += k
		}
		return true // never wait for the socket: the caller's drain does
	})
	return n
}

// drain writes a driven stream's queue until it is empty, and returns; or,
// once the stream has ended, returns why (ended). It runs on a goroutine of
// its own (Hub.drain), one at a time per stream (writing). Driven streams
// are HTTP/1 connections, where a deadline only bounds the calls made
// before it passes: as run does, it leaves the deadline in place, to be
// moved when less than half of it is left (see deadline).
func (s *stream) drain() (reason DisconnectReason, ended bool) {
	if s.partial { // a frame quickWrite began
		s.partial = false
		rest := s.hub.takePending(s)
		if err := s.deadline(); err != nil {
			return s.failed(err), true
		}
		if _, err := s.conn.Write(rest); err != nil {
			return s.failed(err), true
		}
		s.wrote.Store(true)
		s.hub.stats.written.Add(1)
	}
	for {
		batch, closed, reason := s.take()
		if len(batch) > 0 {
			if err := s.writeBatch(batch); err != nil {
				return s.failed(err), true
			}
		}
		if closed {
			return reason, true
		}
		s.mu.Lock()
		if len(s.queue) == 0 && !s.closed {
			s.writing = false // from here another drain may start
			s.mu.Unlock()
			return 0, false
		}
		s.mu.Unlock()
	}
}

// writeBatch writes batch, then keeps the drained slice for the next
// drain, so a busy stream queues without allocating; a stream idle enough
// for a lone heartbeat gives a large one back to the garbage collector.
func (s *stream) writeBatch(batch []*envelope) error {
	err := s.write(batch)
	idle := len(batch) == 1 && batch[0].heartbeat
	clear(batch)
	if !idle || cap(batch) <= idleSpare {
		s.spare = batch[:0]
	}
	return err
}

// failed ends a stream whose write failed and returns why it ended: a
// stream ended as slow while its write was blocked ends as slow.
func (s *stream) failed(err error) DisconnectReason {
	reason := s.close(ReasonWriteFailed)
	s.hub.log.Warn("sse: stream ended", "client", s.info.ClientID, "reason", reason, "err", err)
	return reason
}

// idleSpare is the largest drained queue an idle stream keeps for reuse.
const idleSpare = 16

// writeChunk bounds the bytes gathered into one write.
const writeChunk = 32 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, writeChunk); return &b }}

// write writes the frames of batch, gathered into as few writes as possible,
// then flushes, all under the write deadline.
func (s *stream) write(batch []*envelope) error {
	if err := s.deadline(); err != nil {
		return err
	}
	out := s.out()
	if len(batch) == 1 {
		if _, err := out.Write(batch[0].frame); err != nil {
			return err
		}
	} else {
		bp := chunkPool.Get().(*[]byte)
		buf := (*bp)[:0]
		for _, m := range batch {
			if len(buf) > 0 && len(buf)+len(m.frame) > writeChunk {
				if _, err := out.Write(buf); err != nil {
					chunkPool.Put(bp)
					return err
				}
				buf = buf[:0]
			}
			if len(m.frame) > writeChunk {
				if _, err := out.Write(m.frame); err != nil {
					chunkPool.Put(bp)
					return err
				}
				continue
			}
			buf = append(buf, m.frame...)
		}
		var err error
		if len(buf) > 0 {
			_, err = out.Write(buf)
		}
		*bp = buf[:0]
		chunkPool.Put(bp)
		if err != nil {
			return err
		}
	}
	if err := s.flush(); err != nil {
		return err
	}
	s.wrote.Store(true)
	s.hub.stats.written.Add(uint64(len(batch)))
	return nil
}

// deadline sets the write deadline for the next write. Writers that cannot
// take a deadline (a wrapper without Unwrap, a test recorder) are written
// without one (see Hub.open, which reports them).
//
// Moving a deadline costs a runtime timer update (over HTTP/2, a message to
// the connection's goroutine), so a deadline in place is moved only when
// less than half of Config.WriteTimeout is left: a write is bounded by
// between half and all of it. Once Shutdown has begun, no deadline goes
// past Hub.stopBy, so every stream has ended by then. A stream that expire
// cut short keeps its deadline in the past.
func (s *stream) deadline() error {
	if s.noDeadline {
		return nil
	}
	now := time.Now()
	stopBy := s.hub.stopBy.Load()
	if !s.deadlineAt.IsZero() && s.deadlineAt.Sub(now) > s.hub.cfg.WriteTimeout/2 &&
		(stopBy == 0 || s.deadlineAt.UnixNano() <= stopBy) {
		return nil
	}
	at := now.Add(s.hub.cfg.WriteTimeout)
	if stopBy != 0 && at.UnixNano() > stopBy {
		at = time.Unix(0, stopBy)
	}
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.expired {
		return errExpired
	}
	err := s.setWriteDeadline(at)
	if errors.Is(err, http.ErrNotSupported) {
		s.noDeadline = true // and stop asking: each refusal allocates an error
		return nil
	}
	if err == nil {
		s.deadlineAt = at
	}
	return err
}

// disarm clears the write deadline of a writer about to wait for its queue.
// Over HTTP/2 a write deadline is a timer that resets the stream when it
// fires, even with no write pending: a deadline left in place after a write
// would end an idle stream WriteTimeout later, whatever the heartbeat. So
// streams not written over an HTTP/1 connection (where a deadline only
// bounds the calls made before it passes) hold a deadline only while they
// write.
func (s *stream) disarm() {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if !s.expired {
		_ = s.setWriteDeadline(time.Time{})
	}
	s.deadlineAt = time.Time{}
}

// errExpired fails the writes of a stream that expire cut short.
var errExpired = errors.New("sse: the stream was ended as slow")

// out is where the stream's frames go: the ResponseWriter, or the
// connection once the stream has taken it over.
func (s *stream) out() io.Writer {
	if s.conn != nil {
		return s.conn
	}
	return s.w
}

// flush sends what net/http buffered. A connection taken over is written
// unbuffered: nothing to flush.
func (s *stream) flush() error {
	if s.conn != nil {
		return nil
	}
	return s.rc.Flush()
}

// setWriteDeadline sets the deadline of the stream's connection. Safe to
// call while the writer writes (Hub.expire does).
func (s *stream) setWriteDeadline(t time.Time) error {
	if s.conn != nil {
		return s.conn.SetWriteDeadline(t)
	}
	return s.rc.SetWriteDeadline(t)
}

// entitled reports whether the stream may receive m. topics is a snapshot
// of the stream's topics.
func (s *stream) entitled(m *envelope, topics map[string]struct{}) bool {
	switch m.To.Kind {
	case ToEveryone:
		return true
	case ToTopic:
		_, ok := topics[m.To.Name]
		return ok
	case ToClient:
		return m.To.Name == s.info.ClientID
	}
	return false
}

// remoteHost returns the host of a request's RemoteAddr ("ip:port"), or
// the whole of it if it has no port.
func remoteHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
