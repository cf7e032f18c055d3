package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/gogf/gf/v2/net/ghttp"
	"github.com/ssehub/sse"
)

// startGoFrame serves the hub with GoFrame (ghttp), the framework of the
// application this library comes from.
//
// ghttp buffers what a handler writes to r.Response until the handler
// returns, and none of its writers has an Unwrap method. ghttp.WrapH(hub)
// streams anyway, because the buffer's Flush writes through; but the hub
// then cannot reach write deadlines (a client that stops reading holds
// its stream until TCP gives up, and the server's WriteTimeout cuts every
// stream), so goframeHandler hands the hub a writer that unwraps to the
// connection's own.
func startGoFrame(hub *sse.Hub, ln net.Listener) (func(context.Context) error, error) {
	s := ghttp.GetServer(fmt.Sprintf("sse-%d", goframeServers.Add(1)))
	s.SetDumpRouterMap(false)
	s.SetAccessLogEnabled(false)
	s.SetLogStdout(false)
	s.Logger().SetStdoutPrint(false)
	// How long Shutdown waits for open requests, in seconds: GoFrame v2.9.0
	// reads GracefulTimeout for it, not GracefulShutdownTimeout. The hub's
	// streams have ended by then.
	s.SetGracefulTimeout(5)
	if err := s.SetListener(ln); err != nil {
		return nil, err
	}
	s.Group("/api/v1", func(group *ghttp.RouterGroup) {
		group.Middleware(goframeCORS, goframeAuth)
		group.GET("/sse", goframeHandler(hub)) // the one line
	})
	if err := s.Start(); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		return shutdown(ctx, hub, func(context.Context) error { return s.Shutdown() })
	}, nil
}

// goframeServers numbers the ghttp servers, which GoFrame keeps by name.
var goframeServers atomic.Int64

// goframeCORS is GoFrame's CORS middleware (ghttp.MiddlewareCORS) with the
// allowed origin set.
func goframeCORS(r *ghttp.Request) {
	opts := r.Response.DefaultCORSOptions()
	opts.AllowOrigin = allowedOrigin
	opts.AllowHeaders = "Authorization,Last-Event-ID"
	r.Response.CORS(opts)
	r.Middleware.Next()
}

// goframeAuth is the auth middleware, GoFrame's way: the client ID goes
// into the request's context with r.SetCtx, which the hub's
// Config.ClientID reads from r.Context().
func goframeAuth(r *ghttp.Request) {
	id, ok := authenticate(r.Request)
	if !ok {
		r.Response.WriteStatusExit(http.StatusUnauthorized, unauthorized)
	}
	r.SetCtx(withClient(r.Context(), id))
	r.Middleware.Next()
}

// goframeHandler serves the hub with the writer underneath GoFrame's
// buffer (r.Response.Writer, which counts bytes and knows the header is
// out), given an Unwrap method to the connection's net/http writer, so
// that the hub reaches write deadlines and flushes; and a Hijack that goes
// through GoFrame's, so that GoFrame knows it no longer owns a connection
// the hub took over (Config.Hijack).
func goframeHandler(hub *sse.Hub) ghttp.HandlerFunc {
	return func(r *ghttp.Request) {
		gf := r.Response.Writer
		hub.ServeHTTP(goframeWriter{ResponseWriter: gf, raw: gf.ResponseWriter}, r.Request)
	}
}

// goframeWriter is GoFrame's unbuffered writer with the Unwrap method it
// lacks.
type goframeWriter struct {
	http.ResponseWriter                     // GoFrame's: r.Response.Writer
	raw                 http.ResponseWriter // the net/http writer GoFrame wraps
}

// Unwrap returns the net/http writer that GoFrame wraps.
func (w goframeWriter) Unwrap() http.ResponseWriter { return w.raw }

// Hijack takes the connection over through GoFrame, which marks it taken.
func (w goframeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.ResponseWriter.(http.Hijacker).Hijack()
}
