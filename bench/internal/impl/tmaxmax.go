package impl

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	tsse "github.com/tmaxmax/go-sse"
)

// tmaxmax is github.com/tmaxmax/go-sse as its README sets it up: an
// sse.Server with Joe, the default provider, and, when a scenario replays, a
// FiniteReplayer with automatic IDs. Joe calls its replayer once per new
// subscription, just before it adds the subscriber, so a pass-through
// replayer counts registered streams without changing what Joe does.
type tmaxmax struct {
	s       *tsse.Server
	joe     *tsse.Joe
	added   atomic.Int64
	removed atomic.Int64
}

func init() {
	register("tmaxmax", func(o Options) (Impl, error) {
		t := &tmaxmax{}
		var inner tsse.Replayer = passReplayer{}
		if o.Replay > 0 {
			r, err := tsse.NewFiniteReplayer(o.Replay, true)
			if err != nil {
				return nil, err
			}
			inner = r
		}
		t.joe = &tsse.Joe{Replayer: countingReplayer{inner: inner, added: &t.added}}
		t.s = &tsse.Server{Provider: countingProvider{Provider: t.joe, removed: &t.removed}}
		return t, nil
	})
}

func (t *tmaxmax) Path() string          { return "/sse" }
func (t *tmaxmax) Handler() http.Handler { return t.s }
func (t *tmaxmax) Streams() int          { return int(t.added.Load() - t.removed.Load()) }

func (t *tmaxmax) Publish(data []byte) error {
	m := &tsse.Message{}
	m.AppendData(string(data))
	return t.s.Publish(m)
}

func (t *tmaxmax) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = t.s.Shutdown(ctx)
}

// passReplayer keeps nothing, as Joe does without a replayer.
type passReplayer struct{}

func (passReplayer) Put(m *tsse.Message, _ []string) (*tsse.Message, error) { return m, nil }
func (passReplayer) Replay(tsse.Subscription) error                         { return nil }

type countingReplayer struct {
	inner tsse.Replayer
	added *atomic.Int64
}

func (c countingReplayer) Put(m *tsse.Message, topics []string) (*tsse.Message, error) {
	return c.inner.Put(m, topics)
}

func (c countingReplayer) Replay(sub tsse.Subscription) error {
	c.added.Add(1)
	return c.inner.Replay(sub)
}

type countingProvider struct {
	tsse.Provider
	removed *atomic.Int64
}

func (c countingProvider) Subscribe(ctx context.Context, sub tsse.Subscription) error {
	defer c.removed.Add(1)
	return c.Provider.Subscribe(ctx, sub)
}
