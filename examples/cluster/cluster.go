package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssehub/sse"
	"github.com/ssehub/sse/sseredis"
)

//go:embed web
var web embed.FS

// The events the page receives.
const (
	EventTick = "tick" // data: the tick's number, counting up from 1 across both nodes
	EventNode = "node" // data: the name of the node serving the stream, sent when it opens
)

// node is one instance of the application: a hub whose Broker is shared
// through Redis, served on a port of its own.
type node struct {
	name   string
	hub    *sse.Hub
	broker *sseredis.Broker
	srv    *http.Server
	url    *url.URL
	served atomic.Int64 // streams opened on this node
}

// Cluster is two nodes, one Redis, a publisher that publishes each tick on
// the other node, and a front that sends each new stream to the other
// node and ends it after Hold, so that a page keeps moving between them.
type Cluster struct {
	Nodes []*node
	Front *http.Server
	URL   string // the front's base URL

	rdb    *redis.Client
	ticks  atomic.Int64
	stop   context.CancelFunc
	done   sync.WaitGroup
	log    *slog.Logger
	next   atomic.Int64 // round robin over the nodes
	holdMS atomic.Int64
}

// Options of a Cluster. Zero values are valid.
type Options struct {
	Redis  string        // host:port of Redis
	Front  string        // listen address of the front; "" means 127.0.0.1:0
	Every  time.Duration // time between ticks; 0 means 200 ms
	Hold   time.Duration // how long the front lets a stream stay on one node; 0 means 5 s
	Stream string        // the Redis stream key; "" means "sse-cluster:events"
	Logger *slog.Logger  // nil means slog.Default()
}

// StartCluster starts two nodes on loopback, the publisher and the front.
func StartCluster(opts Options) (*Cluster, error) {
	if opts.Every <= 0 {
		opts.Every = 200 * time.Millisecond
	}
	if opts.Hold <= 0 {
		opts.Hold = 5 * time.Second
	}
	if opts.Stream == "" {
		opts.Stream = "sse-cluster:events"
	}
	if opts.Front == "" {
		opts.Front = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Cluster{rdb: redis.NewClient(&redis.Options{Addr: opts.Redis}), log: opts.Logger}
	c.holdMS.Store(opts.Hold.Milliseconds())
	for _, name := range []string{"A", "B"} {
		n, err := c.startNode(name, opts)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	l, err := net.Listen("tcp", opts.Front)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.URL = "http://" + l.Addr().String()
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(mustSub(web, "web")))
	mux.HandleFunc("GET /events", c.route)
	c.Front = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.Front.Serve(l) }()

	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	c.done.Add(1)
	go c.publish(ctx, opts.Every)
	return c, nil
}

func (c *Cluster) startNode(name string, opts Options) (*node, error) {
	b, err := sseredis.New(c.rdb, sseredis.Options{Stream: opts.Stream, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", name, err)
	}
	n := &node{name: name, broker: b}
	hub, err := sse.NewHub(sse.Config{
		Broker:   b,
		ClientID: func(r *http.Request) (string, error) { return r.URL.Query().Get("client"), nil },
		Retry:    500 * time.Millisecond,
		Logger:   opts.Logger,
		OnConnect: func(info sse.StreamInfo) {
			n.served.Add(1)
			// Tell the page which node serves it; a Send reaches only
			// this client's streams, after its replay.
			_, _ = n.hub.Send(info.ClientID, sse.Event{Type: EventNode, Data: []byte(name)})
		},
	})
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	n.hub = hub
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		hub.Close()
		return nil, err
	}
	n.url = &url.URL{Scheme: "http", Host: l.Addr().String()}
	n.srv = &http.Server{Handler: hub, ReadHeaderTimeout: 10 * time.Second}
	n.srv.RegisterOnShutdown(hub.Close)
	go func() { _ = n.srv.Serve(l) }()
	return n, nil
}

var discardLog = log.New(io.Discard, "", 0)

// route is the front: each stream goes to the other node than the last
// one did, and is ended after Hold, as a load balancer that drains a node
// would. The browser reconnects by itself with its Last-Event-ID.
func (c *Cluster) route(w http.ResponseWriter, r *http.Request) {
	n := c.Nodes[int(c.next.Add(1))%len(c.Nodes)]
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(c.holdMS.Load())*time.Millisecond)
	defer cancel()
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(n.url)
			pr.Out.URL.Path = "/"
		},
		FlushInterval: -1, // an event stream: pass every write on at once
		// The front ends every stream on purpose, which the proxy would
		// log as a failed copy; failures to reach a node go to ErrorHandler.
		ErrorLog: discardLog,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				c.log.Warn("cluster: proxy", "node", n.name, "err", err)
			}
		},
	}
	proxy.ServeHTTP(w, r.WithContext(ctx))
}

// publish publishes a tick every interval, on node A and node B in turn:
// the ticks' order comes from Redis, whichever node publishes.
func (c *Cluster) publish(ctx context.Context, every time.Duration) {
	defer c.done.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := c.ticks.Add(1)
		on := c.Nodes[n%int64(len(c.Nodes))]
		if _, err := on.hub.Broadcast(sse.Event{Type: EventTick, Data: strconv.AppendInt(nil, n, 10)}); err != nil {
			c.ticks.Add(-1) // not published: the next tick takes its number
			if ctx.Err() == nil {
				c.log.Warn("cluster: tick not published", "node", on.name, "err", err)
			}
		}
	}
}

// Close stops the publisher, the front and both nodes, then the Redis
// client.
func (c *Cluster) Close() error {
	if c.stop != nil {
		c.stop()
		c.done.Wait()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	if c.Front != nil {
		errs = append(errs, c.Front.Shutdown(ctx))
	}
	for _, n := range c.Nodes {
		errs = append(errs, n.hub.Shutdown(ctx), n.srv.Shutdown(ctx))
	}
	errs = append(errs, c.rdb.Close())
	return errors.Join(errs...)
}
