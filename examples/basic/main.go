// Command basic serves a page that shows live events from an sse.Hub: the
// server's clock every second, and messages typed by any visitor.
//
//	go run ./examples/basic            # then open http://localhost:8080
//	go run ./examples/basic -addr :9000 # every interface, port 9000
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ssehub/sse"
)

//go:embed index.html
var page []byte

func main() {
	addr := flag.String("addr", "localhost:8080", "listen address")
	flag.Parse()

	hub, err := sse.NewHub(sse.Config{})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /sse", hub)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page)
	})
	mux.HandleFunc("POST /say", func(w http.ResponseWriter, r *http.Request) {
		msg := r.FormValue("message")
		if msg == "" || len(msg) > 500 {
			http.Error(w, "message must be 1 to 500 bytes", http.StatusBadRequest)
			return
		}
		if _, err := hub.Broadcast(sse.Event{Type: "chat", Data: []byte(msg)}); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				// Key: a client that falls behind gets the newest time only.
				hub.Broadcast(sse.Event{Type: "clock", Key: "clock", Data: now.AppendFormat(nil, time.TimeOnly)})
			}
		}
	}()

	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(hub.Close) // end the streams, or Shutdown waits for them
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	url := "http://" + *addr
	if strings.HasPrefix(*addr, ":") {
		url = "http://localhost" + *addr
	}
	log.Printf("open %s", url)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
