package main

import (
	"context"
	"io"
	"net"
	"net/http"

	"github.com/gin-contrib/cors"
	"github.com/gin-gonic/gin"
	"github.com/ssehub/sse"
)

// startGin serves the hub with gin. gin.WrapH hands the hub gin's
// ResponseWriter, which has Unwrap (and Flush and Hijack): the hub
// reaches everything it needs through http.ResponseController.
func startGin(hub *sse.Hub, ln net.Listener) (func(context.Context) error, error) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.LoggerWithWriter(io.Discard), gin.Recovery())
	// On the engine, not the group: gin runs a group's middleware only for
	// the routes it has, and a preflight OPTIONS has none (404).
	r.Use(cors.New(cors.Config{
		AllowOrigins: []string{allowedOrigin},
		AllowHeaders: []string{"Authorization", "Last-Event-ID"},
		AllowMethods: []string{"GET"},
	}))
	api := r.Group("/api/v1")
	api.Use(ginAuth)
	api.GET("/sse", gin.WrapH(hub)) // the one line
	return serveHTTP(hub, ln, r), nil
}

// ginAuth is the auth middleware, gin's way.
func ginAuth(c *gin.Context) {
	id, ok := authenticate(c.Request)
	if !ok {
		c.String(http.StatusUnauthorized, unauthorized)
		c.Abort()
		return
	}
	c.Request = c.Request.WithContext(withClient(c.Request.Context(), id))
	c.Next()
}
