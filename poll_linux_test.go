package sse

import (
	"net/http"
	"syscall"
	"testing"
)

// An event that an epoll wait returned just before its connection left
// the poller, and that is handled after another connection took the same
// descriptor, is the earlier connection's: the poller drops it rather than
// end (or give a reader to) the stream now on that descriptor.
func TestPollDropsAnEventOfAReusedDescriptor(t *testing.T) {
	h, gone := pollHub(t, Config{}, 2)
	srv, _ := hijackServer(t, h, func(w http.ResponseWriter) http.ResponseWriter { return w })
	client, _, br := rawStream(t, srv.Listener.Addr().String())
	waitStreams(t, h, 1)

	h.pollMu.Lock()
	var fd int32 = -1
	var w watched
	for i, e := range h.poll.byFD {
		if e.s != nil {
			fd, w = int32(i), e
		}
	}
	if fd < 0 {
		h.pollMu.Unlock()
		t.Fatal("the stream is not watched")
	}
	stale := syscall.EpollEvent{Events: syscall.EPOLLRDHUP, Fd: fd, Pad: int32(w.gen - 1)}
	if s := h.poll.claim(stale); s != nil {
		h.pollMu.Unlock()
		t.Fatal("an event of an earlier registration on the descriptor was taken for the stream now on it")
	}
	if h.poll.byFD[fd].s != w.s {
		h.pollMu.Unlock()
		t.Fatal("the stale event made the poller forget the stream")
	}
	current := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: fd, Pad: int32(w.gen)}
	s := h.poll.claim(current)
	h.pollMu.Unlock()
	if s != w.s {
		t.Fatalf("the stream's own event was not claimed: got %p, want %p", s, w.s)
	}
	h.read(s) // as the poller does for a client that sent something

	// The stream lives on, read by its reader now.
	if _, err := h.Broadcast(data("after")); err != nil {
		t.Fatal(err)
	}
	if d := readData(t, br); d != "after" {
		t.Fatalf("got %q", d)
	}
	client.Close()
	awaitClientGone(t, gone)
	waitStreams(t, h, 0)
}
