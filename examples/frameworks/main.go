// Command frameworks serves a hub from one of several web frameworks,
// each in its own way: under /api/v1, behind the framework's CORS and auth
// middleware, with the client ID taken from the request's context. Open
// http://localhost:8080/api/v1/sse?token=token-ann; Ctrl-C ends it.
//
//	go run . -framework gin   # or chi, echo, goframe
//	go run . -framework fiber # Fiber on localhost:8080, the hub beside it on localhost:8081
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ssehub/sse"
)

func main() {
	name := flag.String("framework", "gin", "chi, echo, gin, goframe or fiber")
	addr := flag.String("addr", "localhost:8080", "where to listen")
	flag.Parse()
	if err := run(*name, *addr); err != nil {
		log.Fatal(err)
	}
}

// run serves the hub with the named framework until SIGINT or SIGTERM,
// publishing the time every second, then shuts it down.
func run(name, addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hub, err := newHub(sse.Config{})
	if err != nil {
		return err
	}
	var shutdown func(context.Context) error
	if name == "fiber" {
		shutdown, err = startFiber(hub, addr)
	} else {
		shutdown, err = startNamed(name, hub, addr)
	}
	if err != nil {
		return err
	}
	log.Printf("%s: streaming on %s?token=token-ann", name, ssePath)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case now := <-tick.C:
			_, _ = hub.Broadcast(sse.Event{Type: "clock", Data: []byte(now.Format(time.TimeOnly))})
		case <-ctx.Done():
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return shutdown(stopCtx)
		}
	}
}

// startNamed starts the framework called name on addr.
func startNamed(name string, hub *sse.Hub, addr string) (func(context.Context) error, error) {
	for _, f := range frameworks {
		if f.name == name {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return nil, err
			}
			return f.start(hub, ln)
		}
	}
	return nil, fmt.Errorf("unknown framework %q", name)
}
