package impl

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ssehub/sse/bench/internal/load"
)

// TestDelivers checks that every implementation, mounted as a handler,
// delivers published events, in order, to the load generator's client.
func TestDelivers(t *testing.T) {
	for _, name := range Names {
		t.Run(name, func(t *testing.T) {
			im, err := New(name, Options{})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(im.Handler())
			defer srv.Close()
			defer im.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var sh load.Shared
			addr := strings.TrimPrefix(srv.URL, "http://")
			c := load.Start(ctx, load.Spec{Addr: addr, Path: im.Path()}, &sh, nil)
			defer c.Close()
			waitFor(t, "a registered stream", func() bool { return im.Streams() == 1 })
			var buf []byte
			for seq := uint64(1); seq <= 100; seq++ {
				buf = load.Payload(buf, seq, time.Now().UnixNano(), 64)
				if err := im.Publish(buf); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "100 events", func() bool { return c.Seq() == 100 })
			cancel()
			c.Wait()
			// Let the server see the client go before Close: tmaxmax's
			// Shutdown ends a handler still waiting in Joe.Subscribe without
			// waiting for Joe's last flush to it, a race in that library,
			// not in what this test checks.
			waitFor(t, "the stream to end", func() bool { return im.Streams() == 0 })
			if c.Received != 100 || c.FirstSeq != 1 || c.Lost != 0 || c.Dups != 0 {
				t.Fatalf("received %d from %d, lost %d, dups %d", c.Received, c.FirstSeq, c.Lost, c.Dups)
			}
		})
	}
}

func TestUnknown(t *testing.T) {
	if _, err := New("nope", Options{}); err == nil {
		t.Fatal("no error for an unknown implementation")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 5s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
