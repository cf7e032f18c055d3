package impl

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
	sse "github.com/ssehub/sse"
	"github.com/ssehub/sse/sseredis"
)

// ours is this repository's Hub with its default Config, except History
// when a scenario replays further back than the default keeps, and
// MaxStreams: -1, since the default (nine tenths of the open-file limit)
// would refuse streams in the scenarios that open nearly as many as the
// limit. "ours-hijack" is the same with Config.Hijack, the setting the
// README recommends for servers holding very many idle streams, and
// "ours-poll" with Config.Poll as well (no goroutine per idle stream).
type ours struct{ h *sse.Hub }

func init() {
	register("ours", func(o Options) (Impl, error) { return newOurs(sse.Config{History: o.Replay, MaxStreams: -1}, o) })
	register("ours-hijack", func(o Options) (Impl, error) {
		return newOurs(sse.Config{History: o.Replay, MaxStreams: -1, Hijack: true}, o)
	})
	register("ours-poll", func(o Options) (Impl, error) {
		return newOurs(sse.Config{History: o.Replay, MaxStreams: -1, Hijack: true, Poll: true}, o)
	})
}

// newOurs makes a hub with cfg, on Redis if o says so (sseredis, the stream
// "bench:events", with the default history).
func newOurs(cfg sse.Config, o Options) (Impl, error) {
	if o.Redis != "" {
		client := redis.NewClient(&redis.Options{Addr: o.Redis})
		quiet := slog.New(slog.DiscardHandler)
		b, err := sseredis.New(client, sseredis.Options{Stream: "bench:events", Logger: quiet})
		if err != nil {
			_ = client.Close()
			return nil, err
		}
		cfg.Broker, cfg.History = b, 0
	}
	h, err := sse.NewHub(cfg)
	if err != nil {
		if cfg.Broker != nil {
			_ = cfg.Broker.Close()
		}
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
