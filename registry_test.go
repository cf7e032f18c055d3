package sse

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
)

// registered returns the streams of h, as its registry lists them.
func registered(h *Hub) []*stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reg.streams()
}

// A delivery walks the streams without the hub's lock: while it is held up
// at one stream, another registers, and Stats answers. The stream that
// registered during the delivery does not get its message live (it
// connected after it was published); the one it was held up at gets it
// once the delivery goes on, and both get the next.
func TestRegisterDuringADelivery(t *testing.T) {
	h, srv := newTestHub(t, Config{Heartbeat: -1})
	first := dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	s := registered(h)[0]
	before := *h.lastPos.Load()

	s.mu.Lock() // the delivery stops at s
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		if _, err := h.Broadcast(data("during")); err != nil {
			t.Error(err)
		}
	}()
	waitFor(t, "the delivery to begin", func() bool { return *h.lastPos.Load() != before })
	second := make(chan *testClient, 1)
	go func() { second <- dial(t, nil, srv.URL, nil) }()
	waitStreams(t, h, 2) // registered while the delivery is held up
	select {
	case <-delivered:
		t.Fatal("the delivery went past a stream it could not queue to")
	default:
	}
	s.mu.Unlock()
	<-delivered
	c := <-second
	if _, err := h.Broadcast(data("after")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"during", "after"} {
		if ev := first.next(); string(ev.Data) != want {
			t.Fatalf("the first stream got %q, want %q", ev.Data, want)
		}
	}
	if ev := c.next(); string(ev.Data) != "after" {
		t.Fatalf("the stream that registered during the delivery got %q first, want \"after\"", ev.Data)
	}
}

// A stream that leaves stays in the list deliveries walk until the list is
// rebuilt, a quarter of it having left, or at a heartbeat tick; a stream
// that unsubscribes from a topic, and stays, is out of the topic's list at
// the next delivery.
func TestWalkList(t *testing.T) {
	var l walkList
	in := map[*stream]bool{}
	keep := func(s *stream) bool { return in[s] }
	var all []*stream
	for range 8 {
		s := &stream{}
		all = append(all, s)
		in[s] = true
		l.add(s)
	}
	walked := func(tidy bool) []*stream {
		snap, fresh := l.take(keep, tidy)
		return slices.Concat(snap, fresh)
	}
	if got := walked(false); !slices.Equal(got, all) {
		t.Fatalf("walked %d streams, want the 8 added", len(got))
	}
	in[all[0]] = false
	l.stale++
	if got := walked(false); len(got) != 8 {
		t.Fatalf("one of 8 left: walked %d, want 8 (not rebuilt yet)", len(got))
	}
	in[all[1]] = false
	l.stale++
	in[all[2]] = false
	l.stale++
	if got := walked(false); len(got) != 5 || slices.Contains(got, all[0]) {
		t.Fatalf("three of 8 left: walked %d, want the 5 left after a rebuild", len(got))
	}
	in[all[3]] = false
	l.stale++
	if got := walked(true); len(got) != 4 || slices.Contains(got, all[3]) {
		t.Fatalf("tidy: walked %d, want 4", len(got))
	}
	in[all[4]] = false // unsubscribed: open, so it must not be walked
	l.stale++
	l.dirty = true
	if got := walked(false); len(got) != 3 || slices.Contains(got, all[4]) {
		t.Fatalf("after an unsubscribe: walked %d, want 3", len(got))
	}
}

// Unsubscribe takes effect for the next delivery to the topic, however
// many streams the topic has and have left it.
func TestUnsubscribeTakesEffectAtOnce(t *testing.T) {
	h, srv := newTestHub(t, Config{Heartbeat: -1, ClientID: headerID,
		Topics: func(*http.Request) ([]string, error) { return []string{"t"}, nil }})
	var clients []*testClient
	for i := range 5 {
		clients = append(clients, dial(t, nil, srv.URL, user(fmt.Sprint(i))))
	}
	waitStreams(t, h, 5)
	clients[4].close()
	waitStreams(t, h, 4)
	h.Unsubscribe("0", "t")
	if n, err := h.Publish("t", data("x")); err != nil || n != 3 {
		t.Fatalf("Publish = %d, %v; want 3 streams", n, err)
	}
	if _, err := h.Broadcast(data("y")); err != nil {
		t.Fatal(err)
	}
	if ev := clients[0].next(); string(ev.Data) != "y" {
		t.Fatalf("the unsubscribed stream got %q", ev.Data)
	}
	for _, c := range clients[1:4] {
		if ev := c.next(); string(ev.Data) != "x" {
			t.Fatalf("got %q, want x", ev.Data)
		}
	}
}
