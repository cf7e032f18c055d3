package sse

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Streams connect and disconnect at random while other goroutines Send,
// Broadcast, Publish, Subscribe, Unsubscribe and Disconnect: no panic, no
// race, every connect hook paired with one disconnect hook, and nothing left
// running after Shutdown.
func TestStressConnectDisconnectWhilePublishing(t *testing.T) {
	const (
		connectors = 8
		cycles     = 25
		publishers = 4
	)
	var connects, disconnects atomic.Int64
	h, srv := newTestHub(t, Config{
		ClientID:     func(r *http.Request) (string, error) { return r.URL.Query().Get("id"), nil },
		Topics:       queryTopics,
		QueueBytes:   8 << 10, // small, so slow disconnects happen too
		OnConnect:    func(StreamInfo) { connects.Add(1) },
		OnDisconnect: func(StreamInfo, DisconnectReason) { disconnects.Add(1) },
	})
	transport := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: connectors}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}

	done := make(chan struct{})
	var pubs sync.WaitGroup
	for p := range publishers {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			r := rand.New(rand.NewPCG(uint64(p), 3))
			for {
				select {
				case <-done:
					return
				default:
				}
				id := fmt.Sprint("c", r.IntN(4))
				var err error
				switch r.IntN(7) {
				case 0:
					_, err = h.Broadcast(data(strings.Repeat("b", r.IntN(300))))
				case 1:
					_, err = h.Send(id, Event{Key: fmt.Sprint(r.IntN(3)), Data: []byte("s")})
				case 2:
					_, err = h.Publish(fmt.Sprint("t", r.IntN(3)), data("p"))
				case 3:
					h.Subscribe(id, fmt.Sprint("t", r.IntN(3)))
				case 4:
					h.Unsubscribe(id, fmt.Sprint("t", r.IntN(3)))
				case 5:
					if r.IntN(20) == 0 {
						h.Disconnect(id)
					}
				case 6:
					h.Stats()
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var conns sync.WaitGroup
	for c := range connectors {
		conns.Add(1)
		go func() {
			defer conns.Done()
			r := rand.New(rand.NewPCG(uint64(c), 5))
			last := ""
			for range cycles {
				url := fmt.Sprintf("%s?id=c%d&topic=t%d", srv.URL, r.IntN(4), r.IntN(3))
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if last != "" {
					req.Header.Set("Last-Event-ID", last)
				}
				resp, err := client.Do(req)
				if err != nil {
					cancel()
					t.Error(err)
					return
				}
				d := NewDecoder(resp.Body)
				for range r.IntN(20) {
					if ev, err := d.Decode(); err != nil {
						break
					} else {
						last = ev.ID
					}
				}
				cancel()
				resp.Body.Close()
			}
		}()
	}
	conns.Wait()
	close(done)
	pubs.Wait()
	waitStreams(t, h, 0)
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if connects.Load() != connectors*cycles || disconnects.Load() != connects.Load() {
		t.Fatalf("%d connects, %d disconnects; want %d each", connects.Load(), disconnects.Load(), connectors*cycles)
	}
	noHubGoroutines(t, h)
	st := h.Stats()
	t.Logf("%+v", st)
	if st.Published == 0 || st.Queued == 0 {
		t.Fatalf("the stress test published nothing: %+v", st)
	}
}
