// Command cluster runs two nodes of one application behind a front that
// moves each browser between them, with Redis between the nodes: a live
// page whose stream changes node every few seconds without losing or
// repeating an event.
//
//	go -C examples/cluster run .                  # starts its own redis-server
//	go -C examples/cluster run . -redis host:port # or uses yours
//
// Each node is an sse.Hub whose Broker is an sseredis.Broker on the same
// Redis stream. A publisher publishes a numbered tick every 200 ms, on
// node A and node B in turn. The front (http://localhost:8080) sends every
// new stream to the other node and ends it after 5 s, as a load balancer
// draining a node would; the browser reconnects with its Last-Event-ID and
// the other node replays what it missed from Redis. The page counts the
// ticks, the gaps (none) and the repeats (none).
package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/signal"
	"time"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "the front's listen address")
	redisAddr := flag.String("redis", "", "Redis host:port (empty: start redis-server on a free loopback port)")
	hold := flag.Duration("hold", 5*time.Second, "how long a stream stays on one node")
	every := flag.Duration("every", 200*time.Millisecond, "time between ticks")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *redisAddr == "" {
		r, err := startRedis(context.Background())
		if err != nil {
			log.Fatalf("cluster: %v", err)
		}
		defer r.Stop()
		*redisAddr = r.Addr
		log.Printf("cluster: started redis-server on %s", r.Addr)
	}
	c, err := StartCluster(Options{Redis: *redisAddr, Front: *addr, Hold: *hold, Every: *every})
	if err != nil {
		log.Fatalf("cluster: %v", err)
	}
	fmt.Printf("cluster: open %s/ (nodes %s and %s, Redis %s)\n", c.URL, c.Nodes[0].url.Host, c.Nodes[1].url.Host, *redisAddr)
	<-ctx.Done()
	if err := c.Close(); err != nil {
		log.Printf("cluster: close: %v", err)
	}
}

// mustSub returns the subtree dir of fsys.
func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
