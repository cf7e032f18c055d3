package main

import (
	"context"
	"io"
	"log"
	"net"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/cors"
	"github.com/ssehub/sse"
)

// startChi serves the hub with chi: chi is net/http, so the hub mounts as
// it is. chi's access log (middleware.Logger, here writing nowhere) wraps
// the ResponseWriter in middleware.WrapResponseWriter, which has Unwrap:
// the hub still reaches Flush, write deadlines and Hijack.
func startChi(hub *sse.Hub, ln net.Listener) (func(context.Context) error, error) {
	r := chi.NewRouter()
	r.Use(middleware.RequestLogger(&middleware.DefaultLogFormatter{Logger: log.New(io.Discard, "", 0)}))
	r.Use(middleware.Recoverer)
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(cors.Handler(cors.Options{
			AllowedOrigins: []string{allowedOrigin},
			AllowedHeaders: []string{"Authorization", "Last-Event-ID"},
		}))
		r.Use(requireToken)
		r.Method("GET", "/sse", hub) // the one line
	})
	return serveHTTP(hub, ln, r), nil
}
