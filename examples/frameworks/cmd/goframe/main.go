// Command goframe serves a hub from GoFrame: the stream on /sse, each
// stream keyed by its client's login, and on SIGINT or SIGTERM the hub shut
// down first, then GoFrame.
//
//	go run ./cmd/goframe   # then: curl -N 'localhost:8080/sse?token=token-ann'
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gogf/gf/v2/net/ghttp"
	"github.com/ssehub/sse"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "where to listen")
	flag.Parse()

	hub, err := sse.NewHub(sse.Config{
		ClientID: func(r *http.Request) (string, error) {
			login, _ := r.Context().Value(loginKey{}).(string)
			if login == "" {
				return "", errors.New("no login: is the hub behind the auth middleware?")
			}
			return login, nil // every tab of one login is one client
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for now := range time.Tick(time.Second) {
			hub.Broadcast(sse.Event{Type: "clock", Data: []byte(now.Format(time.TimeOnly))})
		}
	}()

	s := ghttp.GetServer()
	s.SetAddr(*addr)
	s.Group("/", func(group *ghttp.RouterGroup) {
		group.Middleware(auth)
		group.GET("/sse", goframeHandler(hub))
	})
	// Start, not Run: Run handles SIGTERM itself and returns as soon as
	// GoFrame stops listening, with the hub's streams still open, so a
	// main that ends there cuts them instead of shutting the hub down.
	if err := s.Start(); err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	timeout, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hub.Shutdown(timeout); err != nil { // the streams end
		log.Print(err)
	}
	if err := s.Shutdown(); err != nil { // then GoFrame, with no stream to wait for
		log.Print(err)
	}
}

type loginKey struct{}

// logins maps a token to a login: a real application checks its session
// or a JWT here.
var logins = map[string]string{"token-ann": "ann", "token-bob": "bob"}

// auth answers 401 to a request without a known token, and puts the login
// into the context of the others, where Config.ClientID reads it.
func auth(r *ghttp.Request) {
	login, ok := logins[r.GetQuery("token").String()] // EventSource cannot set headers
	if !ok {
		r.Response.WriteStatusExit(http.StatusUnauthorized)
	}
	r.SetCtx(context.WithValue(r.Context(), loginKey{}, login))
	r.Middleware.Next()
}

// goframeHandler serves the hub with GoFrame's unbuffered writer, given
// the Unwrap method it lacks, so that the hub reaches the connection's
// flush and write deadlines (ghttp.WrapH would hide the deadlines).
func goframeHandler(hub *sse.Hub) ghttp.HandlerFunc {
	return func(r *ghttp.Request) {
		gf := r.Response.Writer
		hub.ServeHTTP(goframeWriter{gf, gf.ResponseWriter}, r.Request)
	}
}

type goframeWriter struct {
	http.ResponseWriter                     // r.Response.Writer
	raw                 http.ResponseWriter // r.Response.Writer.ResponseWriter
}

func (w goframeWriter) Unwrap() http.ResponseWriter { return w.raw }

// Hijack goes through GoFrame's writer, which then knows the hub took the
// connection over (Config.Hijack).
func (w goframeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.ResponseWriter.(http.Hijacker).Hijack()
}
