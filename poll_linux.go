//go:build linux

package sse

import (
	"errors"
	"net"
	"syscall"
)

// With Config.Poll, the connections of taken-over streams are watched by
// one epoll instance per hub, which a goroutine of the hub's waits on,
// instead of a reader goroutine each: an idle stream then holds no
// goroutine at all. The instance is registered for each connection's end
// (EPOLLRDHUP: the client closed or reset it) and for input (EPOLLIN: it
// sent something after its request), once (EPOLLONESHOT): a client that
// left ends its stream as its reader would have; a client that sent
// something gets a reader goroutine (Hub.watch), which reads it as it
// would have from the start (a TLS connection's records go through its
// *tls.Conn). The instance is another reference to the connection's
// socket, beside the Go runtime's own poller: a connection leaves it
// (EPOLL_CTL_DEL) before it is closed, under the poller's lock. An event
// that a wait returned just before, and that is handled after, may still
// name the descriptor once another connection reuses it: each
// registration carries a number of its own in the event's data beside the
// descriptor, and an event whose number is not its descriptor's current
// one is dropped.

// watched is a stream the poller watches, and the number of its
// registration (see poller.gen).
type watched struct {
	s   *stream
	gen uint32
}

// pollBatch is how many events one wait returns at most.
const pollBatch = 128

// poller is a hub's epoll instance and the streams it watches, by file
// descriptor. Its goroutine runs while it watches a stream.
type poller struct {
	epfd    int       // the epoll instance, while running
	wake    [2]int    // a pipe in the instance: a byte written to wake[1] wakes the goroutine
	byFD    []watched // the watched streams, by descriptor
	n       int       // of them
	gen     uint32    // the number of the last registration
	running bool
}

// pollAdd starts watching s's connection and reports whether it does: not if
// the connection has no descriptor to watch (a net.Pipe), or epoll fails.
// Its caller then starts a reader instead. s holds no reader's hold.
func (h *Hub) pollAdd(s *stream) bool {
	sc, ok := rawConn(s.conn)
	if !ok {
		return false
	}
	p := &h.poll
	h.pollMu.Lock()
	defer h.pollMu.Unlock()
	if !p.running {
		if err := h.pollStart(); err != nil {
			h.log.Warn("sse: cannot poll connections, giving each stream a reader", "err", err)
			return false
		}
	}
	added := false
	err := sc.Control(func(fd uintptr) {
		p.gen++
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd), Pad: int32(p.gen)}
		if syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev) != nil {
			return
		}
		if int(fd) >= len(p.byFD) {
			p.byFD = append(p.byFD, make([]watched, int(fd)+1-len(p.byFD))...)
			p.byFD = p.byFD[:cap(p.byFD)]
		}
		p.byFD[fd] = watched{s, p.gen}
		s.pollFD = int32(fd) + 1
		p.n++
		added = true
	})
	if (err != nil || !added) && p.n == 0 {
		p.signal() // nothing to watch: let the goroutine go
	}
	return err == nil && added
}

// pollRemove stops watching s's connection, if it is watched. Called before
// the connection is closed.
func (h *Hub) pollRemove(s *stream) {
	h.pollMu.Lock()
	defer h.pollMu.Unlock()
	h.poll.forget(s)
}

// forget stops watching s. Callers hold h.pollMu.
func (p *poller) forget(s *stream) bool {
	fd := int(s.pollFD) - 1
	if fd < 0 || fd >= len(p.byFD) || p.byFD[fd].s != s {
		return false
	}
	_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	p.byFD[fd] = watched{}
	s.pollFD = 0
	p.n--
	if p.n == 0 {
		p.signal()
	}
	return true
}

// claim returns the stream an event is for, which it stops watching, or
// nil when the event is stale: its stream left, or it was an earlier
// connection's on the same descriptor. Callers hold h.pollMu.
func (p *poller) claim(ev syscall.EpollEvent) *stream {
	if ev.Fd < 0 || int(ev.Fd) >= len(p.byFD) {
		return nil
	}
	w := p.byFD[ev.Fd]
	if w.s == nil || w.gen != uint32(ev.Pad) || !p.forget(w.s) {
		return nil
	}
	return w.s
}

// pollStart makes the epoll instance and starts its goroutine. Callers
// hold h.pollMu.
func (h *Hub) pollStart() error {
	p := &h.poll
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	var wake [2]int
	if err := syscall.Pipe2(wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		_ = syscall.Close(epfd)
		return err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(wake[0])}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, wake[0], &ev); err != nil {
		_ = syscall.Close(epfd)
		_ = syscall.Close(wake[0])
		_ = syscall.Close(wake[1])
		return err
	}
	p.epfd, p.wake, p.running = epfd, wake, true
	h.track.add(1)
	go h.watchAll(epfd, wake[0])
	return nil
}

// signal wakes the goroutine, to see whether it has anything left to
// watch. Callers hold h.pollMu.
func (p *poller) signal() {
	_, _ = syscall.Write(p.wake[1], []byte{0})
}

// watchAll waits on the epoll instance and hands each event to its stream:
// a client that left ends its stream, one that sent something gets a
// reader. It returns, closing the instance, once it watches nothing.
func (h *Hub) watchAll(epfd, wake int) {
	defer h.track.done()
	p := &h.poll
	events := make([]syscall.EpollEvent, pollBatch)
	var gone, talk []*stream
	for {
		n, err := syscall.EpollWait(epfd, events, -1)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			h.alarm().Error("sse: polling connections failed: giving each stream a reader", "err", err)
		}
		h.pollMu.Lock()
		for _, ev := range events[:max(n, 0)] {
			if int(ev.Fd) == wake {
				var b [64]byte
				for {
					if n, _ := syscall.Read(wake, b[:]); n <= 0 {
						break
					}
				}
				continue
			}
			s := p.claim(ev)
			if s == nil {
				continue
			}
			if ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				gone = append(gone, s)
			} else {
				talk = append(talk, s)
			}
		}
		if err != nil && !errors.Is(err, syscall.EINTR) {
			for _, w := range p.byFD {
				if w.s != nil && p.forget(w.s) {
					talk = append(talk, w.s)
				}
			}
		}
		stop := p.n == 0
		if stop {
			p.running = false
			_ = syscall.Close(epfd)
			_ = syscall.Close(p.wake[0])
			_ = syscall.Close(p.wake[1])
			p.byFD = nil
		}
		h.pollMu.Unlock()
		for i, s := range gone {
			s.close(ReasonClientGone)
			gone[i] = nil
		}
		for i, s := range talk {
			h.read(s)
			talk[i] = nil
		}
		gone, talk = gone[:0], talk[:0]
		if stop {
			return
		}
	}
}

// rawConn returns the connection under c (a *tls.Conn's too) as a
// syscall.Conn, if it is one.
func rawConn(c net.Conn) (syscall.RawConn, bool) {
	for {
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	return rc, err == nil
}
