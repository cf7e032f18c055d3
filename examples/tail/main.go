// Command tail prints the events of a Server-Sent Events stream as they
// arrive, following it across reconnects with sse.Client.
//
//	go run ./examples/tail http://localhost:8080/events
//	go run ./examples/tail -H 'Authorization: Bearer t0k3n' -last-event-id 7f3a-41 URL
//
// Events are printed as they came, in the event stream format (id, event and
// data lines, then a blank line), so the output can be read by anything that
// reads SSE. An id or event type holding NUL, which a decoder keeps but an
// event stream cannot carry, is printed with each NUL written as \x00, and
// a warning. Resets, reconnections and the error that ends the stream go to
// standard error, each failure with a hint when its cause is a known one.
//
// tail gives up after -max-retries failed attempts in a row (5 by default,
// a minute or so with the default backoff; 0 never gives up), and at once
// on an error no retry can mend: an https URL whose server speaks plain
// HTTP, or a certificate that is not trusted. It exits with 0 when
// interrupted or when the server answers 204 No Content, with 1 when the
// stream ends with an error or tail gives up, and with 2 on bad arguments.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ssehub/sse"
)

// defaultMaxRetries is how many failed attempts in a row tail makes before
// it gives up, unless -max-retries says otherwise: enough to ride out a
// server's restart, few enough that a wrong URL does not retry for ever.
const defaultMaxRetries = 5

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
	maxRetries := fs.Int("max-retries", defaultMaxRetries, "give up after this many failed reconnections in a row (0: never)")
	retry := fs.Duration("retry", sse.DefaultRetry, "the first wait before reconnecting, until the server's retry: field replaces it")
	idle := fs.Duration("idle", time.Minute, "reconnect when nothing, not even a heartbeat, arrives for this long (0: never)")
	strict := fs.Bool("strict", false, "stop on 5xx and 429 answers, as a browser does, instead of retrying them")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	target := fs.Arg(0)
	if u, err := url.Parse(target); err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		fmt.Fprintf(stderr, "tail: %q is not an http:// or https:// URL\n", target)
		return 2
	}

	// giveUp ends the stream from OnRetry, with the reason as the cause.
	ctx, giveUp := context.WithCancelCause(ctx)
	defer giveUp(nil)
	client := &sse.Client{
		Header:            http.Header(hdr),
		LastEventID:       *lastID,
		MaxRetries:        *maxRetries,
		Retry:             *retry,
		IdleTimeout:       *idle,
		RetryServerErrors: !*strict,
		OnRetry: func(err error, wait time.Duration) {
			msg, futile := explain(err)
			if futile {
				fmt.Fprintf(stderr, "tail: %s; giving up: retrying cannot mend this\n", msg)
				giveUp(errFutile)
				return
			}
			fmt.Fprintf(stderr, "tail: %s; reconnecting in %v\n", msg, wait.Round(time.Millisecond))
		},
	}
	var frame []byte
	for ev, err := range client.Connect(ctx, target) {
		var reset *sse.ResetError
		switch {
		case errors.As(err, &reset):
			fmt.Fprintf(stderr, "tail: %v\n", reset)
			continue
		case context.Cause(ctx) == errFutile:
			return 1 // said so in OnRetry
		case ctx.Err() != nil:
			return 0 // interrupted
		case errors.Is(err, sse.ErrRetriesExhausted):
			msg, _ := explain(err)
			fmt.Fprintf(stderr, "tail: %s; giving up (-max-retries 0 retries for ever)\n", msg)
			return 1
		case err != nil:
			fmt.Fprintf(stderr, "tail: %v\n", err)
			return 1
		}
		ev.Retry = 0 // the server's advice to this client, not part of the event
		frame, err = sse.AppendEvent(frame[:0], ev)
		if err != nil {
			// A decoded event can still hold what a stream cannot carry:
			// the decoder keeps NUL in an event type, as browsers do.
			safe := ev
			safe.ID, safe.Type = escapeNUL(ev.ID), escapeNUL(ev.Type)
			fmt.Fprintf(stderr, "tail: event id %q, event type %q: %v; printed with NUL as \\x00\n", ev.ID, ev.Type, err)
			if frame, err = sse.AppendEvent(frame[:0], safe); err != nil {
				fmt.Fprintf(stderr, "tail: event skipped: %v\n", err)
				continue
			}
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

// errFutile is the cause of a stream that tail ended because no retry could
// mend its failure.
var errFutile = errors.New("no retry can mend this")

// escapeNUL writes each NUL in s as the four characters \x00.
func escapeNUL(s string) string { return strings.ReplaceAll(s, "\x00", `\x00`) }

// explain returns err's message with a hint when its cause is a known one,
// and whether retrying is futile.
func explain(err error) (msg string, futile bool) {
	msg = err.Error()
	var certErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	var opErr *net.OpError
	switch {
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return msg + " (the server speaks plain HTTP: use an http:// URL)", true
	case errors.As(err, &recordErr):
		return msg + " (the server does not speak TLS: use an http:// URL?)", true
	case errors.As(err, &certErr):
		return msg + " (the server's certificate is not trusted here)", true
	case errors.Is(err, syscall.ECONNREFUSED) && errors.As(err, &opErr) && opErr.Addr != nil:
		return msg + fmt.Sprintf(" (nothing listens at %v: is the server running, and is the port right?)", opErr.Addr), false
	}
	return msg, false
}
