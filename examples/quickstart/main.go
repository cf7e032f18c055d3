package main

import (
	"context"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ssehub/sse"
)

func main() {
	hub, err := sse.NewHub(sse.Config{}) // the zero Config is valid
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for now := range time.Tick(time.Second) {
			hub.Broadcast(sse.Event{Type: "clock", Data: []byte(now.Format(time.TimeOnly))})
		}
	}()
	http.Handle("/sse", hub)
	srv := &http.Server{Addr: "localhost:8080", ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed := make(chan error, 1)
	go func() { failed <- srv.ListenAndServe() }()
	select {
	case err := <-failed:
		log.Fatal(err) // the port is taken, say
	case <-ctx.Done(): // Ctrl-C or SIGTERM
	}
	timeout, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The hub first: its streams are requests that end only when it ends
	// them, so srv.Shutdown alone would wait out its whole timeout.
	if err := hub.Shutdown(timeout); err != nil {
		log.Print(err)
	}
	if err := srv.Shutdown(timeout); err != nil {
		log.Print(err)
	}
}
