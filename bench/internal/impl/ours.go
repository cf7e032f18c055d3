package impl

import (
	"context"
	"net/http"
	"time"

	sse "github.com/ssehub/sse"
)

// ours is this repository's Hub with its default Config, except History
// when a scenario replays further back than the default keeps.
// "ours-hijack" is the same with Config.Hijack, the setting the README
// recommends for servers holding very many idle streams.
type ours struct{ h *sse.Hub }

func init() {
	register("ours", func(o Options) (Impl, error) { return newOurs(sse.Config{History: o.Replay}) })
	register("ours-hijack", func(o Options) (Impl, error) {
		return newOurs(sse.Config{History: o.Replay, Hijack: true})
	})
}

func newOurs(cfg sse.Config) (Impl, error) {
	h, err := sse.NewHub(cfg)
	if err != nil {
		return nil, err
	}
	return &ours{h}, nil
}

func (o *ours) Path() string          { return "/sse" }
func (o *ours) Handler() http.Handler { return o.h }
func (o *ours) Streams() int          { return o.h.Stats().Streams }

func (o *ours) Publish(data []byte) error {
	_, err := o.h.Broadcast(sse.Event{Data: data})
	return err
}

func (o *ours) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = o.h.Shutdown(ctx)
}
