package main

import (
	"context"
	"net"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/ssehub/sse"
)

// startEcho serves the hub with echo, on echo's own server. echo.WrapHandler
// hands the hub echo's *Response, which has Unwrap (and Flush and Hijack).
func startEcho(hub *sse.Hub, ln net.Listener) (func(context.Context) error, error) {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.Recover())
	api := e.Group("/api/v1")
	api.Use(middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins: []string{allowedOrigin},
		AllowHeaders: []string{"Authorization", "Last-Event-ID"},
	}))
	api.Use(echoAuth)
	api.GET("/sse", echo.WrapHandler(hub)) // the one line
	e.Listener = ln
	go func() { _ = e.Start("") }() // serves e.Listener; returns http.ErrServerClosed on Shutdown
	return func(ctx context.Context) error { return shutdown(ctx, hub, e.Shutdown) }, nil
}

// echoAuth is the auth middleware, echo's way.
func echoAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, ok := authenticate(c.Request())
		if !ok {
			return c.String(http.StatusUnauthorized, unauthorized)
		}
		c.SetRequest(c.Request().WithContext(withClient(c.Request().Context(), id)))
		return next(c)
	}
}
