package sse

import (
	"context"
	"sync"
	"testing"
)

// controlBus joins the controls of several test brokers, as a shared
// engine (sseredis) joins its nodes.
type controlBus struct {
	mu       sync.Mutex
	handlers []BrokerHandler
}

// nodeBroker is one node's broker on a controlBus: its events stay its
// own (an in-memory broker), its controls reach every node.
type nodeBroker struct {
	*memoryBroker
	bus *controlBus
}

func (b *nodeBroker) Subscribe(h BrokerHandler) (string, error) {
	b.bus.mu.Lock()
	b.bus.handlers = append(b.bus.handlers, h)
	b.bus.mu.Unlock()
	return b.memoryBroker.Subscribe(h)
}

func (b *nodeBroker) PublishDisconnect(_ context.Context, clientID string) error {
	b.bus.mu.Lock()
	hs := append([]BrokerHandler(nil), b.bus.handlers...)
	b.bus.mu.Unlock()
	for _, h := range hs {
		h.HandleDisconnect(clientID)
	}
	return nil
}

// A Disconnect on one node ends the client's streams on every node of a
// Broker that carries controls (revoking a user), and only that client's.
func TestDisconnectReachesEveryNode(t *testing.T) {
	bus := &controlBus{}
	reasons := make(chan DisconnectReason, 4)
	cfg := Config{ClientID: headerID, Heartbeat: -1, OnDisconnect: func(s StreamInfo, r DisconnectReason) {
		if s.ClientID == "ann" {
			reasons <- r
		}
	}}
	cfg.Broker = &nodeBroker{memoryBroker: newMemoryBroker(16, 16), bus: bus}
	a, srvA := newTestHub(t, cfg)
	cfg.Broker = &nodeBroker{memoryBroker: newMemoryBroker(16, 16), bus: bus}
	b, srvB := newTestHub(t, cfg)
	onA := dial(t, nil, srvA.URL, user("ann"))
	onB := dial(t, nil, srvB.URL, user("ann"))
	bob := dial(t, nil, srvB.URL, user("bob"))
	waitStreams(t, a, 1)
	waitStreams(t, b, 2)
	if n := a.Disconnect("ann"); n != 1 {
		t.Fatalf("Disconnect on A = %d, want its one stream", n)
	}
	for _, c := range []*testClient{onA, onB} {
		if _, err := c.drain(); err == nil {
			t.Fatal("a stream of ann's did not end")
		}
	}
	for range 2 {
		if r := <-reasons; r != ReasonDisconnected {
			t.Fatalf("ended as %v", r)
		}
	}
	waitStreams(t, b, 1)
	b.Broadcast(data("bob stays"))
	if ev := bob.next(); string(ev.Data) != "bob stays" {
		t.Fatalf("bob got %q", ev.Data)
	}
}
