// Command tail prints the events of a Server-Sent Events stream as they
// arrive, following it across reconnects with sse.Client.
//
//	go run ./examples/tail http://localhost:8080/events
//	go run ./examples/tail -H 'Authorization: Bearer t0k3n' -last-event-id 7f3a-41 URL
//
// Events are printed as they came, in the event stream format (id, event and
// data lines, then a blank line), so the output can be read by anything that
// reads SSE. Resets, reconnections and the error that ends the stream go to
// standard error. It exits with 0 when interrupted or when the server
// answers 204 No Content, and with 1 when the stream ends with an error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ssehub/sse"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// headers is a repeatable -H flag.
type headers http.Header

func (h headers) String() string { return "" }

func (h headers) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("%q is not \"Name: value\"", v)
	}
	http.Header(h).Add(strings.TrimSpace(name), strings.TrimSpace(value))
	return nil
}

// run is the command: it parses args, follows the stream until ctx ends or
// the stream does, and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tail [flags] URL")
		fs.PrintDefaults()
	}
	hdr := headers{}
	fs.Var(hdr, "H", "a request header, `Name: value` (repeatable)")
	lastID := fs.String("last-event-id", "", "resume after this event id")
	maxRetries := fs.Int("max-retries", 0, "give up after this many failed reconnections in a row (0: never)")
	idle := fs.Duration("idle", time.Minute, "reconnect when nothing, not even a heartbeat, arrives for this long (0: never)")
	strict := fs.Bool("strict", false, "stop on 5xx and 429 answers, as a browser does, instead of retrying them")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	url := fs.Arg(0)

	client := &sse.Client{
		Header:            http.Header(hdr),
		LastEventID:       *lastID,
		MaxRetries:        *maxRetries,
		IdleTimeout:       *idle,
		RetryServerErrors: !*strict,
		OnRetry: func(err error, wait time.Duration) {
			fmt.Fprintf(stderr, "tail: %v; reconnecting in %v\n", err, wait.Round(time.Millisecond))
		},
	}
	var frame []byte
	for ev, err := range client.Connect(ctx, url) {
		var reset *sse.ResetError
		switch {
		case errors.As(err, &reset):
			fmt.Fprintf(stderr, "tail: %v\n", reset)
			continue
		case ctx.Err() != nil:
			return 0 // interrupted
		case err != nil:
			fmt.Fprintf(stderr, "tail: %v\n", err)
			return 1
		}
		ev.Retry = 0 // the server's advice to this client, not part of the event
		frame, err = sse.AppendEvent(frame[:0], ev)
		if err != nil { // cannot happen for a decoded event: report it all the same
			fmt.Fprintf(stderr, "tail: %v\n", err)
			return 1
		}
		if _, err := stdout.Write(frame); err != nil {
			fmt.Fprintf(stderr, "tail: %v\n", err)
			return 1
		}
	}
	if ctx.Err() == nil {
		fmt.Fprintln(stderr, "tail: the server ended the stream for good (204 No Content)")
	}
	return 0
}
