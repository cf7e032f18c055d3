package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/ssehub/sse"
)

// The path every framework mounts the hub on, inside its /api/v1 group.
const ssePath = "/api/v1/sse"

// allowedOrigin is the origin the CORS middlewares allow.
const allowedOrigin = "https://app.example.com"

// A framework starts a server that serves hub on ln, under the framework's
// CORS and auth middleware, and returns its graceful shutdown.
type framework struct {
	name  string
	start func(hub *sse.Hub, ln net.Listener) (stop func(context.Context) error, err error)
}

// frameworks are those whose tests and main run the hub. Fiber is not one:
// see fiber.go.
var frameworks = []framework{
	{"chi", startChi},
	{"echo", startEcho},
	{"gin", startGin},
	{"goframe", startGoFrame},
}

// serveHTTP runs handler on an http.Server on ln, as gin and chi do (they
// have no server of their own), and returns its graceful shutdown.
func serveHTTP(hub *sse.Hub, ln net.Listener, handler http.Handler) func(context.Context) error {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second, // the hub clears it for its streams
	}
	go func() { _ = srv.Serve(ln) }() // returns http.ErrServerClosed on Shutdown
	return func(ctx context.Context) error { return shutdown(ctx, hub, srv.Shutdown) }
}

// shutdown ends the hub's streams first, then the server: http.Server's
// Shutdown waits for handlers to return, which a stream's does only when
// the hub ends it, so the other order would wait out ctx. (With
// Config.Hijack the server no longer sees the hub's connections at all.)
func shutdown(ctx context.Context, hub *sse.Hub, server func(context.Context) error) error {
	return errors.Join(hub.Shutdown(ctx), server(ctx))
}
