package main

// The two libraries under test, each as a cluster of nodes on one Redis:
// every node has its own Redis client(s), its own broker and its own
// loopback HTTP server of SSE streams.

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/centrifugal/centrifuge"
	"github.com/redis/go-redis/v9"
	sse "github.com/ssehub/sse"
	"github.com/ssehub/sse/sseredis"
)

// cluster is N nodes of one library on one Redis.
type cluster interface {
	// addrs returns each node's HTTP address; its streams are at "/".
	addrs() []string
	// publish publishes data on node i, returning once the library says
	// it is published (for both: once Redis ran the publish script).
	publish(i int, data []byte) error
	close()
}

func serve(h http.Handler) (*http.Server, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return srv, l.Addr().String(), nil
}

// sseCluster: sse hubs, each with sseredis.New(client, Options{Stream}) on a
// go-redis client of its own, every setting at its default.
type sseCluster struct {
	hubs    []*sse.Hub
	clients []*redis.Client
	srvs    []*http.Server
	addr    []string
}

func newSSECluster(redisAddr string, n int) (*sseCluster, error) {
	c := &sseCluster{}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for range n {
		client := redis.NewClient(&redis.Options{Addr: redisAddr})
		c.clients = append(c.clients, client)
		b, err := sseredis.New(client, sseredis.Options{Stream: "bench:events", Logger: quiet})
		if err != nil {
			c.close()
			return nil, err
		}
		hub, err := sse.NewHub(sse.Config{Broker: b, Logger: quiet})
		if err != nil {
			_ = b.Close()
			c.close()
			return nil, err
		}
		c.hubs = append(c.hubs, hub)
		srv, addr, err := serve(hub)
		if err != nil {
			c.close()
			return nil, err
		}
		c.srvs = append(c.srvs, srv)
		c.addr = append(c.addr, addr)
	}
	return c, nil
}

func (c *sseCluster) addrs() []string { return c.addr }

func (c *sseCluster) publish(i int, data []byte) error {
	_, err := c.hubs[i].Broadcast(sse.Event{Data: data})
	return err
}

func (c *sseCluster) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, h := range c.hubs {
		_ = h.Shutdown(ctx)
	}
	for _, s := range c.srvs {
		_ = s.Close()
	}
	for _, cl := range c.clients {
		_ = cl.Close()
	}
}

// cfCluster: centrifuge nodes, each with its Redis broker (NewRedisShard and
// NewRedisBroker at their defaults: rueidis, auto-pipelining with a 100 µs
// flush delay), publishing to one channel with history (WithHistory: the
// size sseredis keeps by default, 1,024) into which every stream is
// subscribed server-side with recovery on, as centrifuge's docs recommend
// for reliable delivery. A stream is a unidirectional SSE connection made
// here on centrifuge's Transport interface: every push is written as one
// "data:" line, JSON encoded, so the publication's data (a JSON string)
// appears in it as is.
type cfCluster struct {
	nodes []*centrifuge.Node
	srvs  []*http.Server
	addr  []string
}

const cfChannel = "bench"

func newCFCluster(redisAddr string, n int) (*cfCluster, error) {
	c := &cfCluster{}
	for range n {
		node, err := centrifuge.New(centrifuge.Config{LogLevel: centrifuge.LogLevelNone})
		if err != nil {
			c.close()
			return nil, err
		}
		c.nodes = append(c.nodes, node)
		shard, err := centrifuge.NewRedisShard(node, centrifuge.RedisShardConfig{Address: redisAddr})
		if err != nil {
			c.close()
			return nil, err
		}
		broker, err := centrifuge.NewRedisBroker(node, centrifuge.RedisBrokerConfig{Shards: []*centrifuge.RedisShard{shard}})
		if err != nil {
			c.close()
			return nil, err
		}
		node.SetBroker(broker)
		node.OnConnecting(func(context.Context, centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
			return centrifuge.ConnectReply{
				Credentials:   &centrifuge.Credentials{UserID: "bench"},
				Subscriptions: map[string]centrifuge.SubscribeOptions{cfChannel: {EnableRecovery: true}},
			}, nil
		})
		node.OnConnect(func(*centrifuge.Client) {})
		if err := node.Run(); err != nil {
			c.close()
			return nil, err
		}
		srv, addr, err := serve(uniSSE{node})
		if err != nil {
			c.close()
			return nil, err
		}
		c.srvs = append(c.srvs, srv)
		c.addr = append(c.addr, addr)
	}
	return c, nil
}

func (c *cfCluster) addrs() []string { return c.addr }

func (c *cfCluster) publish(i int, data []byte) error {
	_, err := c.nodes[i].Publish(cfChannel, data, centrifuge.WithHistory(1024, 5*time.Minute))
	return err
}

func (c *cfCluster) close() {
	for _, s := range c.srvs {
		_ = s.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, n := range c.nodes {
		_ = n.Shutdown(ctx)
	}
}

// uniSSE serves a centrifuge node's unidirectional SSE streams.
type uniSSE struct{ node *centrifuge.Node }

func (u uniSSE) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	t := &uniTransport{w: w, rc: rc, done: make(chan struct{})}
	client, closeFn, err := centrifuge.NewClient(r.Context(), u.node, t)
	if err != nil {
		return
	}
	defer func() { _ = closeFn() }()
	if err := client.ConnectNoErrorToDisconnect(centrifuge.ConnectRequest{}); err != nil {
		return
	}
	select {
	case <-r.Context().Done():
	case <-t.done:
	}
}

// uniTransport writes each push as an SSE "data:" line.
type uniTransport struct {
	mu     sync.Mutex
	w      http.ResponseWriter
	rc     *http.ResponseController
	done   chan struct{}
	closed bool
}

func (t *uniTransport) Name() string                      { return "uni_sse" }
func (t *uniTransport) AcceptProtocol() string            { return "h1" }
func (t *uniTransport) Protocol() centrifuge.ProtocolType { return centrifuge.ProtocolTypeJSON }
func (t *uniTransport) ProtocolVersion() centrifuge.ProtocolVersion {
	return centrifuge.ProtocolVersion2
}
func (t *uniTransport) Unidirectional() bool                      { return true }
func (t *uniTransport) Emulation() bool                           { return false }
func (t *uniTransport) DisabledPushFlags() uint64                 { return 0 }
func (t *uniTransport) PingPongConfig() centrifuge.PingPongConfig { return centrifuge.PingPongConfig{} }

func (t *uniTransport) Write(data []byte) error { return t.WriteMany(data) }

func (t *uniTransport) WriteMany(data ...[]byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return io.ErrClosedPipe
	}
	for _, d := range data {
		if _, err := t.w.Write([]byte("data: ")); err != nil {
			return err
		}
		if _, err := t.w.Write(d); err != nil {
			return err
		}
		if _, err := t.w.Write([]byte("\n\n")); err != nil {
			return err
		}
	}
	return t.rc.Flush()
}

func (t *uniTransport) Close(centrifuge.Disconnect) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		close(t.done)
	}
	return nil
}
