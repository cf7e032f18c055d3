package main

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/ssehub/sse"
)

// The auth pattern every framework here follows, as in the GoFrame
// application this library comes from: the framework's own middleware
// checks the request's token and puts the client ID it stands for into
// the request's context; the hub's Config.ClientID reads it from there.
// A request without a valid token is answered 401 by the middleware and
// never reaches the hub.

// clientKey is the context key under which the auth middleware stores the
// client ID.
type clientKey struct{}

// tokens maps a token to the client ID it authenticates. A real
// application checks a JWT or a session here.
var tokens = map[string]string{
	"token-ann": "ann",
	"token-bob": "bob",
}

// unauthorized is the body the auth middlewares answer 401 with, so that
// tests can tell their answer from the hub's.
const unauthorized = "missing or unknown token"

// authenticate returns the client ID of r's token: the token query
// parameter (EventSource cannot set headers) or an Authorization: Bearer
// header.
func authenticate(r *http.Request) (string, bool) {
	token := r.URL.Query().Get("token")
	if token == "" {
		token, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	id, ok := tokens[token]
	return id, ok
}

// withClient returns ctx carrying the client ID id.
func withClient(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, clientKey{}, id)
}

// clientFromContext is the hub's Config.ClientID: the ID the auth
// middleware stored. Its error means the hub was mounted outside the
// authenticated group; the hub answers it 401.
func clientFromContext(r *http.Request) (string, error) {
	id, _ := r.Context().Value(clientKey{}).(string)
	if id == "" {
		return "", errors.New("no client ID in the request context: is the hub mounted behind the auth middleware?")
	}
	return id, nil
}

// newHub returns a hub whose client IDs come from the auth middleware.
func newHub(cfg sse.Config) (*sse.Hub, error) {
	cfg.ClientID = clientFromContext
	return sse.NewHub(cfg)
}

// requireToken is the auth middleware for net/http routers (chi, and the
// listener beside Fiber).
func requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := authenticate(r)
		if !ok {
			http.Error(w, unauthorized, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(withClient(r.Context(), id)))
	})
}
