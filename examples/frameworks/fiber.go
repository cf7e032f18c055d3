package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"

	"github.com/go-chi/cors"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/ssehub/sse"
)

// Fiber runs on fasthttp, not net/http, and cannot stream the hub.
// adaptor.HTTPHandler(hub) (fasthttpadaptor, in the fasthttp v1.51.0 that
// Fiber v2.52.15 brings) hands the hub a ResponseWriter that writes into
// fasthttp's response buffer, whose Flush does nothing, and sends status,
// headers and body only once the handler has returned: a stream's client
// receives nothing, not even its headers, until the hub ends the stream;
// the request's context does not end when the client leaves, so a stream
// whose client left lives on, buffering, until the hub ends it. The
// adaptor's ResponseWriter has Flush, so the hub cannot tell (see
// TestFiberAdaptorBuffersTheStream). So the hub goes on a net/http
// listener beside Fiber's, as startFiber does.

// startFiber serves the application's other routes with Fiber on addr,
// and the hub on a net/http listener on the next port.
func startFiber(hub *sse.Hub, addr string) (func(context.Context) error, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, err
	}
	appLn, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	sseLn, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p+1)))
	if err != nil {
		appLn.Close()
		return nil, err
	}
	return startFiberBeside(hub, sseLn, appLn)
}

// startFiberBeside serves a Fiber application on appLn and the hub, under
// net/http CORS and auth middleware, on sseLn.
func startFiberBeside(hub *sse.Hub, sseLn, appLn net.Listener) (func(context.Context) error, error) {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/api/v1/hello", func(c *fiber.Ctx) error { return c.SendString("hello from fiber") })
	go func() { _ = app.Listener(appLn) }()

	mux := http.NewServeMux()
	mux.Handle(ssePath, cors.Handler(cors.Options{
		AllowedOrigins: []string{allowedOrigin},
		AllowedHeaders: []string{"Authorization", "Last-Event-ID"},
	})(requireToken(hub)))
	stopSSE := serveHTTP(hub, sseLn, mux)
	return func(ctx context.Context) error {
		return errors.Join(stopSSE(ctx), app.ShutdownWithContext(ctx))
	}, nil
}

// fiberAdaptor is the mount that does not work: the hub inside Fiber
// through its net/http adaptor, behind Fiber's own auth middleware (the
// client ID goes into c.Locals, which the adaptor's request context
// reads).
func fiberAdaptor(hub *sse.Hub) *fiber.App {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	api := app.Group("/api/v1", func(c *fiber.Ctx) error {
		id, ok := tokens[c.Query("token")]
		if !ok {
			return c.Status(http.StatusUnauthorized).SendString(unauthorized)
		}
		c.Locals(clientKey{}, id)
		return c.Next()
	})
	api.Get("/sse", adaptor.HTTPHandler(hub))
	return app
}
