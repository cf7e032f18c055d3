package impl

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// raw is the baseline: a minimal hand-written net/http fan-out. Each event
// is encoded once; every connection has its own goroutine (the handler's) and
// a queue of shared frames bounded in bytes, which the handler drains by
// copying the frames into one buffer, one Write and one Flush. A connection
// whose queue overflows is dropped, so no client can slow the others.
type raw struct {
	seq     uint64 // guarded by pubMu
	pubMu   sync.Mutex
	mu      sync.RWMutex
	conns   []*rawConn
	streams atomic.Int64
}

type rawConn struct {
	mu    sync.Mutex
	queue [][]byte
	bytes int
	dead  bool
	wake  chan struct{}
	index int // in raw.conns, guarded by raw.mu
}

// rawQueueBytes bounds a connection's queue, as our hub's default does.
const rawQueueBytes = 256 << 10

// rawMaxBuf is the largest write buffer a connection keeps between drains.
const rawMaxBuf = 64 << 10

func init() { register("raw", func(Options) (Impl, error) { return &raw{}, nil }) }

func (r *raw) Path() string          { return "/sse" }
func (r *raw) Handler() http.Handler { return r }
func (r *raw) Streams() int          { return int(r.streams.Load()) }
func (r *raw) Close()                {}

func (r *raw) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	f, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	f.Flush()

	c := &rawConn{wake: make(chan struct{}, 1)}
	r.mu.Lock()
	c.index = len(r.conns)
	r.conns = append(r.conns, c)
	r.mu.Unlock()
	r.streams.Add(1)
	defer func() {
		r.streams.Add(-1)
		r.mu.Lock()
		last := len(r.conns) - 1
		r.conns[c.index] = r.conns[last]
		r.conns[c.index].index = c.index
		r.conns[last] = nil
		r.conns = r.conns[:last]
		r.mu.Unlock()
	}()

	var spare [][]byte
	var buf []byte
	done := req.Context().Done()
	for {
		select {
		case <-c.wake:
		case <-done:
			return
		}
		c.mu.Lock()
		batch, dead := c.queue, c.dead
		c.queue, c.bytes = spare[:0], 0
		c.mu.Unlock()
		if dead {
			return
		}
		buf = buf[:0]
		for _, frame := range batch {
			buf = append(buf, frame...)
		}
		if _, err := w.Write(buf); err != nil {
			return
		}
		f.Flush()
		clear(batch)
		spare = batch
		if cap(buf) > rawMaxBuf {
			buf = nil // an idle connection keeps no large buffer
		}
	}
}

func (r *raw) Publish(data []byte) error {
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	r.seq++
	frame := make([]byte, 0, len(data)+32)
	frame = append(frame, "id: "...)
	frame = strconv.AppendUint(frame, r.seq, 10)
	frame = append(frame, "\ndata: "...)
	frame = append(frame, data...)
	frame = append(frame, '\n', '\n')

	r.mu.RLock()
	for _, c := range r.conns {
		c.push(frame)
	}
	r.mu.RUnlock()
	return nil
}

func (c *rawConn) push(frame []byte) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	if c.bytes+len(frame) > rawQueueBytes {
		c.dead = true
	} else {
		c.queue = append(c.queue, frame)
		c.bytes += len(frame)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}
