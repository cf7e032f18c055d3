package sseredis

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// TestNewHubWhilePublishing: a hub created while another node publishes
// loses none of its follower's first deliveries, nor the position it
// starts at: a fresh stream opened at once on it receives every event
// after the position it was given, as a replay from there shows.
func TestNewHubWhilePublishing(t *testing.T) {
	r := startRedis(t)
	b := newNode(t, "B", r, Options{})
	const n = 400
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			if _, err := b.hub.Broadcast(ev("e%d", i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	type started struct {
		n     *node
		c     *sub
		start string
	}
	var hubs []started
	for len(hubs) < 20 {
		a := newNode(t, "A", r, Options{})
		c := connect(t, a, "client=c", "")
		c.waitStart()
		hubs = append(hubs, started{a, c, c.last})
		select {
		case <-done:
		default:
			continue // another hub, started while B publishes
		}
		break
	}
	<-done
	until := lastPos(t, b)
	for i, h := range hubs {
		var want []string
		ok, why, err := h.n.broker.Replay(context.Background(), h.start, until, []sse.Target{{Kind: sse.ToEveryone}}, func(m *sse.Message) bool {
			want = append(want, string(m.Body[len("data: "):len(m.Body)-2]))
			return true
		})
		if !ok || err != nil {
			t.Fatalf("hub %d: replay from %s: %v %q %v", i, h.start, ok, why, err)
		}
		got := readN(t, h.c, len(want))
		if !slices.Equal(got, want) {
			t.Fatalf("hub %d: a stream started at %s got %v, want %v", i, h.start, got, want)
		}
		h.c.quiet(50 * time.Millisecond)
	}
	t.Logf("%d hubs started while B published; each one's first stream got every event after its start", len(hubs))
}

// lastPos returns the position of the newest entry of n's stream.
func lastPos(t *testing.T, n *node) string {
	t.Helper()
	res, err := n.client.XRevRangeN(context.Background(), n.broker.stream, "+", "-", 1).Result()
	if err != nil || len(res) != 1 {
		t.Fatalf("newest entry: %v %v", res, err)
	}
	return n.broker.lineage.Load().epoch + "-" + res[0].ID
}
