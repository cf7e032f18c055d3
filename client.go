package sse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"mime"
	"net/http"
	"strings"
	"time"
)

// Client reads event streams over HTTP the way a browser's EventSource
// does, for Go programs: it asks for text/event-stream, sends Last-Event-ID
// once it has one, honours the server's retry field, and reconnects after
// the stream ends or the network fails, backing off exponentially with
// jitter. It understands a Hub's control events: a PositionEvent only moves
// the resume point, and a ResetEvent is reported as a *ResetError (see
// Client.Connect). Events are parsed by a Decoder.
//
// The zero Client is ready to use. A Client may run any number of streams
// at once; its fields must not change while one runs.
type Client struct {
	// HTTPClient sends the requests. Nil means http.DefaultClient. Its
	// Timeout must be zero (a Timeout cuts every stream short after that
	// long); use Client.IdleTimeout to notice a dead connection.
	HTTPClient *http.Client

	// Method is the request's method: POST or REPORT for a service that
	// opens a stream with a query in the request's body (GraphQL over SSE,
	// many AI streaming APIs). Every connection, reconnections included,
	// uses it. Empty means GET.
	Method string

	// Body, if set, is called for every request, reconnections and
	// redirects included, and what it returns is sent as that request's
	// body: a stream opened with a query sends it again each time, and a
	// function lets the caller build or stream it anew. A *bytes.Reader,
	// *bytes.Buffer or *strings.Reader is sent with its length, any other
	// reader chunked; one that is an io.Closer is closed once sent. An error
	// from Body ends the stream with that error. Body does not choose the
	// method: set Method (usually to POST), and the body's Content-Type in
	// Header. Nil means no body.
	Body func() (io.Reader, error)

	// Header is added to every request, an Authorization header for
	// example. The client's own headers (Accept, Cache-Control,
	// Last-Event-ID) replace any of the same name.
	Header http.Header

	// Prepare, if set, is called with every request just before it is
	// sent, after the headers are set: the place to build a request the
	// fixed Header cannot describe, such as a fresh token for every
	// connection. An error from it ends the stream with that error.
	Prepare func(req *http.Request) error

	// LastEventID, if set, is sent as Last-Event-ID on the first request, as
	// a browser does on a reconnect: a program that kept the id of the last
	// event it handled resumes from there after a restart. Empty means the
	// stream starts fresh.
	LastEventID string

	// MaxEventSize bounds one event's size in bytes (see
	// Decoder.SetMaxEventSize). Zero means DefaultMaxEventSize (1 MiB). A
	// larger event ends the stream with an error wrapping ErrEventTooLarge:
	// reconnecting would only fetch the same event again.
	MaxEventSize int

	// Retry is the reconnection time used until the server sends a retry
	// field, which then replaces it, as in a browser; a server's "retry: 0"
	// sets it to zero: reconnect at once after a healthy connection (failed
	// attempts still back off, from a millisecond). Zero means DefaultRetry
	// (3 s).
	Retry time.Duration

	// MaxBackoff caps the wait between reconnection attempts. The wait
	// starts at the reconnection time after a healthy connection (one that
	// delivered an event, moved the last event ID, or stayed open for the
	// reconnection time and at least a second: a quiet stream, not a
	// refusal that ends at once) and doubles after every attempt that fails
	// to make one, up to MaxBackoff (or the reconnection time, if larger);
	// each wait is then picked at random in its upper half. Zero means
	// DefaultMaxBackoff (30 s).
	MaxBackoff time.Duration

	// MaxRetries ends the stream after that many reconnection attempts in
	// a row that did not give a healthy connection, with an error wrapping
	// both ErrRetriesExhausted and the last failure. Zero means the client
	// never gives up, as a browser.
	MaxRetries int

	// RetryServerErrors, if true, makes answers 429 Too Many Requests and
	// 5xx reconnect, waiting at least as long as their Retry-After header
	// asks (seconds or an HTTP date), instead of ending the stream with a
	// *ResponseError as a browser does. Services usually want this: a
	// deploy or an overloaded proxy answers 502 or 503 for a while.
	RetryServerErrors bool

	// IdleTimeout, if positive, drops a connection on which nothing (not
	// even a heartbeat comment) arrived for that long, and reconnects: a
	// stalled connection through a dead proxy is otherwise noticed only by
	// TCP, if ever. It covers the wait for the answer's status and header
	// too, so a server that accepts a request and never answers costs a
	// failed attempt, not the whole stream. Its clock runs only while the
	// client waits for the network: the time the loop body holds an event
	// does not count, so a slow consumer is never taken for a dead
	// connection. Set it well above the server's heartbeat interval (a
	// Hub's Config.Heartbeat, 15 s by default). Zero means no limit.
	IdleTimeout time.Duration

	// OnComment, if set, is called with the text of every comment line the
	// server sends (see Decoder.SetOnComment): a Hub's heartbeat is an
	// empty one. Comments carry no event, but they prove the connection
	// alive while no event comes, so a caller can watch them (and send to
	// Restart when they stop). It runs on the goroutine that ranges over
	// the events, between them, in stream order, and must not block:
	// nothing is read meanwhile (the IdleTimeout clock does not run either).
	OnComment func(text string)

	// Restart, if set, lets the caller drop the connection and reconnect at
	// once from the same resume point: each value a running stream
	// receives from it ends that stream's connection (or its wait for an
	// answer, or for the next attempt) and opens a new one without a
	// backoff wait, sending the last event ID so far. Use it when something
	// the stream cannot see has changed: a credential that Prepare puts in
	// each request, or a watchdog fed by OnComment that finds the server
	// silent. OnRetry hears of it with an error wrapping ErrRestarted and a
	// zero wait (unless it cut short a wait OnRetry already announced).
	// Restarts do not count against MaxRetries.
	//
	// A restart takes effect as soon as the stream sees it, not always
	// before the loop body's next turn: events already read may still be
	// yielded, in order, and the new request resumes after the last one
	// yielded, so a server that replays (a Hub) neither loses nor repeats
	// an event. A value is received while a range runs, whoever sends it
	// (the loop body, OnRetry, another goroutine); one sent after a range
	// ended waits for the next. To ask without ever blocking, give the
	// channel a buffer of one and send with a select that has a default:
	// requests made before the stream acts on one then make one restart.
	// Each value restarts one stream, so streams that share a Client share
	// its restarts: give each stream its own Client (a copy) to restart it
	// alone. A closed channel restarts nothing. Nil means no restarts.
	Restart <-chan struct{}

	// OnRetry, if set, is called before every wait for a reconnection, with
	// the reason (an error wrapping io.EOF when the server ended the stream)
	// and the wait. It runs on the goroutine that ranges over the events,
	// so it must not block; it is the place to log.
	OnRetry func(err error, wait time.Duration)
}

// ErrRetriesExhausted is wrapped, together with the last failure, by the
// error that ends a stream after Client.MaxRetries reconnection attempts in
// a row failed.
var ErrRetriesExhausted = errors.New("sse: reconnection attempts exhausted")

// ErrRestarted is wrapped by the error that OnRetry receives when a value
// from Client.Restart dropped the connection.
var ErrRestarted = errors.New("sse: Client.Restart asked for a new connection")

// healthyAfter is how long a connection that delivers nothing must stay
// open to count as healthy, if the reconnection time is shorter.
const healthyAfter = time.Second

// errIdle is the cause of a connection dropped by Client.IdleTimeout.
var errIdle = errors.New("idle timeout")

// ResetError is how a Client reports a Hub's ResetEvent: the events since
// the last event ID it sent could not be replayed, so the caller must
// reload its state. It is not the end of the stream: if the caller goes on
// ranging, the events that follow are the snapshot of the server's current
// keyed state, then live events.
type ResetError struct {
	// Reason is the reset's data: "unknown", "expired" or "epoch" from a
	// Hub (see ResetEvent).
	Reason string
	// LastEventID is the id the client sent, which could not be resumed.
	LastEventID string
}

// Error says what happened and what to do.
func (e *ResetError) Error() string {
	return fmt.Sprintf("sse: stream reset (%s): events after %q cannot be replayed; reload your state", e.Reason, e.LastEventID)
}

// ResponseError reports an answer that is not an event stream: a status
// other than 2xx, or a Content-Type other than text/event-stream. It ends
// the stream, but for 429 and 5xx with Client.RetryServerErrors. Test for
// it with errors.As.
type ResponseError struct {
	Method     string      // the request's method, such as GET (empty means GET)
	URL        string      // the stream's URL, as given to Connect
	StatusCode int         // the answer's status, such as 500
	Header     http.Header // the answer's header
	// Body holds the first bytes of the answer's body (up to 512), which
	// often say what went wrong.
	Body []byte
}

// ContentType returns the answer's Content-Type.
func (e *ResponseError) ContentType() string { return e.Header.Get("Content-Type") }

// RetryAfter returns how long the answer's Retry-After header asks to wait,
// measured from now, or 0 without a valid one.
func (e *ResponseError) RetryAfter() time.Duration { return retryAfter(e.Header, time.Now()) }

// Error describes the answer.
func (e *ResponseError) Error() string {
	status := fmt.Sprintf("%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	method := e.Method
	if method == "" {
		method = http.MethodGet
	}
	var msg string
	if e.StatusCode >= 200 && e.StatusCode < 300 {
		msg = fmt.Sprintf("sse: %s %s: %s with Content-Type %q, not text/event-stream", method, e.URL, status, e.ContentType())
	} else {
		msg = fmt.Sprintf("sse: %s %s: %s", method, e.URL, status)
	}
	if body := strings.TrimSpace(strings.ToValidUTF8(string(e.Body), "\uFFFD")); body != "" {
		msg += ": " + body
	}
	return msg
}

// Connect returns the events of the stream at url, read with the zero
// Client: see Client.Connect.
func Connect(ctx context.Context, url string) iter.Seq2[Event, error] {
	return (&Client{}).Connect(ctx, url)
}

// Connect returns the events of the stream at url. Nothing is sent until
// the sequence is ranged over; each range opens the stream anew (from
// Client.LastEventID) and reconnects for as long as the loop goes on, with
// the resume point carried across reconnects, so the events of one range
// arrive in order and a server that keeps history (a Hub) replays what a
// reconnect missed. Every event's ID is the last event ID at its
// dispatch: what to keep to resume after the program restarts. (A Hub's
// PositionEvent moves the resume point without an event, so a kept ID may
// be a little older than the client's; resuming from it replays the
// difference.)
//
// Each value is an event with a nil error, or an error:
//   - a *ResetError (errors.As) reports a Hub's ResetEvent: events were
//     lost. Reload your state and keep ranging (the snapshot follows), or
//     stop. It is the one error after which the sequence goes on.
//   - any other error is the last value: a *ResponseError (errors.As); an
//     error wrapping ErrEventTooLarge; one wrapping ErrRetriesExhausted and
//     the last failure; an error from Client.Body, Client.Prepare or from
//     building the request; or ctx.Err() once ctx is done, which ends
//     everything at once, a read or a wait included.
//
// A server that answers 204 No Content asks the client to stop for good:
// the sequence then ends without an error. Control events (ResetEvent,
// PositionEvent) are never yielded as events. Breaking out of the loop
// closes the connection.
//
// No goroutine the client starts outlives the range. As after any net/http
// request, an answer that was read to its end (a 204, an error status) may
// leave its connection in the HTTP client's pool of idle keep-alive
// connections, with the transport's goroutines, for the next request to
// reuse: the transport's CloseIdleConnections, or its IdleConnTimeout, ends
// them.
func (c *Client) Connect(ctx context.Context, url string) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		s := &clientStream{c: c, ctx: ctx, method: c.Method, url: url, lastID: c.LastEventID, retry: c.Retry, restart: c.Restart}
		if s.method == "" {
			s.method = http.MethodGet
		}
		if s.retry <= 0 {
			s.retry = DefaultRetry
		}
		s.run(yield)
	}
}

// clientStream is the state of one range over Client.Connect: what carries
// across its connections.
type clientStream struct {
	c      *Client
	ctx    context.Context
	method string // Client.Method, GET if empty
	url    string
	lastID string        // the last event ID string
	retry  time.Duration // the reconnection time

	// restart is Client.Restart, nil once it is closed. restarted is set
	// when a value from it ended the last connection.
	restart   <-chan struct{}
	restarted bool
}

// attempt is how one connection ended.
type attempt struct {
	stop    bool          // the sequence is over: err, if set, was not yet yielded
	err     error         // why it ended
	healthy bool          // it delivered an event, moved the last event ID or stayed open a while (healthyAfter)
	wait    time.Duration // the least wait before the next attempt (Retry-After)
}

func (s *clientStream) run(yield func(Event, error) bool) {
	failures := 0 // reconnection attempts in a row without a healthy connection
	for {
		a := s.connect(yield)
		if a.stop {
			if a.err != nil {
				yield(Event{}, a.err)
			}
			return
		}
		if a.healthy {
			failures = 0
		}
		if s.restarted {
			// The caller asked: reconnect at once, and count nothing.
			s.restarted = false
			if s.c.OnRetry != nil {
				s.c.OnRetry(a.err, 0)
			}
			continue
		}
		if !a.healthy && s.c.MaxRetries > 0 && failures >= s.c.MaxRetries {
			yield(Event{}, fmt.Errorf("%w after %d retries: %w", ErrRetriesExhausted, failures, a.err))
			return
		}
		limit := s.c.MaxBackoff
		if limit <= 0 {
			limit = DefaultMaxBackoff
		}
		wait := max(backoff(s.retry, limit, failures, rand.Float64()), a.wait)
		failures++
		if s.c.OnRetry != nil {
			s.c.OnRetry(a.err, wait)
		}
		if !s.sleep(wait) {
			yield(Event{}, s.ctx.Err())
			return
		}
	}
}

// sleep waits for d, or until a value from Client.Restart cuts the wait
// short, and reports whether it did; it returns false once ctx is done.
func (s *clientStream) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case _, ok := <-s.restart:
			if !ok {
				s.restart = nil // closed: wait on
				continue
			}
			return true
		case <-s.ctx.Done():
			return false
		}
	}
}

// watchRestart ends the connection whose context is ctx when a value
// arrives from ch, until ctx is done; it closes done when it returns. It
// reports what it saw in s.restarted, or by setting s.restart to nil when
// ch is closed, which the caller may read once done is closed.
func (s *clientStream) watchRestart(ctx context.Context, cancel context.CancelCauseFunc, ch <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	select {
	case _, ok := <-ch:
		if !ok {
			s.restart = nil
			return
		}
		s.restarted = true
		cancel(ErrRestarted)
	case <-ctx.Done():
	}
}

// connect makes one connection and yields its events until it ends.
func (s *clientStream) connect(yield func(Event, error) bool) attempt {
	if err := s.ctx.Err(); err != nil {
		return attempt{stop: true, err: err}
	}
	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(nil)
	if s.restart != nil {
		watched := make(chan struct{})
		go s.watchRestart(ctx, cancel, s.restart, watched)
		defer func() {
			cancel(nil)
			<-watched // so that no goroutine outlives the range, nor takes a restart meant for the next connection
		}()
	}
	var idle *time.Timer // cancels ctx with errIdle
	if s.c.IdleTimeout > 0 {
		idle = time.AfterFunc(time.Hour, func() { cancel(errIdle) })
		idle.Stop() // started once the request is built
		defer idle.Stop()
	}
	resp, a, ok := s.open(ctx, idle)
	if !ok {
		return a
	}
	defer resp.Body.Close()

	var body io.Reader = resp.Body
	if idle != nil {
		idle.Stop() // until the first read
		body = &idleReader{r: resp.Body, d: s.c.IdleTimeout, t: idle}
	}
	d := NewDecoder(body)
	d.SetLastEventID(s.lastID)
	d.SetMaxEventSize(s.c.MaxEventSize)
	d.SetOnComment(s.c.OnComment)
	sent := s.lastID
	healthy := false
	opened := time.Now()
	for {
		// A connection ended while the loop body ran (a restart, the
		// caller's context) yields nothing more, not even what the decoder
		// has read already.
		err := context.Cause(ctx)
		var ev Event
		if err == nil {
			ev, err = d.Decode()
			if d.LastEventID() != s.lastID {
				s.lastID = d.LastEventID()
				healthy = true
			}
			if r, ok := d.LookupRetry(); ok {
				s.retry = r // "retry: 0" too: backoff still grows it after failures
			}
		}
		if err != nil {
			if ctxErr := s.ctx.Err(); ctxErr != nil {
				return attempt{stop: true, err: ctxErr}
			}
			if errors.Is(err, ErrEventTooLarge) {
				return attempt{stop: true, err: fmt.Errorf("sse: %s %s: %w", s.method, s.url, err)}
			}
			if cause := context.Cause(ctx); cause == errIdle {
				err = fmt.Errorf("sse: %s %s: nothing received for %v", s.method, s.url, s.c.IdleTimeout)
			} else if cause == ErrRestarted {
				err = fmt.Errorf("sse: %s %s: connection dropped: %w", s.method, s.url, ErrRestarted)
			} else if err == io.EOF {
				err = fmt.Errorf("sse: %s %s: the server ended the stream: %w", s.method, s.url, err)
			} else {
				err = fmt.Errorf("sse: %s %s: %w", s.method, s.url, err)
			}
			// A stream that stayed open a while was healthy even if it
			// had nothing to say (a resumed stream with heartbeats only):
			// unlike a refusal, which ends at once.
			healthy = healthy || time.Since(opened) >= max(s.retry, healthyAfter)
			return attempt{err: err, healthy: healthy}
		}
		healthy = true
		switch ev.Type {
		case PositionEvent:
			continue // its id moved the resume point; nothing to tell
		case ResetEvent:
			if !yield(Event{}, &ResetError{Reason: string(ev.Data), LastEventID: sent}) {
				return attempt{stop: true}
			}
			continue
		}
		if !yield(ev, nil) {
			return attempt{stop: true}
		}
	}
}

// open sends the request and checks the answer. ok is false when there is
// no stream to read; a then says what to do. idle, if not nil, is started
// as the request is sent, so that Client.IdleTimeout covers the wait for
// the answer; it is left running.
func (s *clientStream) open(ctx context.Context, idle *time.Timer) (resp *http.Response, a attempt, ok bool) {
	req, err := s.newRequest(ctx)
	if err != nil {
		return nil, attempt{stop: true, err: err}, false
	}
	for k, vs := range s.c.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if s.lastID != "" {
		req.Header.Set("Last-Event-ID", s.lastID)
	} else {
		req.Header.Del("Last-Event-ID")
	}
	if s.c.Prepare != nil {
		if err := s.c.Prepare(req); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, attempt{stop: true, err: fmt.Errorf("sse: %s %s: Prepare: %w", s.method, s.url, err)}, false
		}
	}
	hc := s.c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	if idle != nil {
		idle.Reset(s.c.IdleTimeout)
	}
	resp, err = hc.Do(req)
	if err != nil {
		if ctxErr := s.ctx.Err(); ctxErr != nil {
			return nil, attempt{stop: true, err: ctxErr}, false
		}
		switch context.Cause(ctx) {
		case errIdle:
			return nil, attempt{err: fmt.Errorf("sse: %s %s: no answer for %v", s.method, s.url, s.c.IdleTimeout)}, false
		case ErrRestarted:
			return nil, attempt{err: fmt.Errorf("sse: %s %s: request dropped: %w", s.method, s.url, ErrRestarted)}, false
		}
		return nil, attempt{err: err}, false // a *url.Error naming the request
	}
	if resp.StatusCode == http.StatusNoContent {
		resp.Body.Close()
		return nil, attempt{stop: true}, false
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 && isEventStream(resp.Header.Get("Content-Type")) {
		return resp, attempt{}, true
	}
	rerr := &ResponseError{Method: s.method, URL: s.url, StatusCode: resp.StatusCode, Header: resp.Header}
	rerr.Body, _ = io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if s.c.RetryServerErrors && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 && resp.StatusCode <= 599) {
		return nil, attempt{err: rerr, wait: retryAfter(resp.Header, time.Now())}, false
	}
	return nil, attempt{stop: true, err: rerr}, false
}

// newRequest builds a request with Client.Method and a fresh Client.Body,
// which it also asks for again to follow a redirect that keeps the body.
func (s *clientStream) newRequest(ctx context.Context) (*http.Request, error) {
	var body io.Reader
	if s.c.Body != nil {
		var err error
		if body, err = s.c.Body(); err != nil {
			return nil, fmt.Errorf("sse: %s %s: Body: %w", s.method, s.url, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, s.method, s.url, body)
	if err != nil {
		if c, ok := body.(io.Closer); ok {
			c.Close()
		}
		return nil, fmt.Errorf("sse: %w", err)
	}
	if s.c.Body != nil {
		req.GetBody = func() (io.ReadCloser, error) {
			b, err := s.c.Body()
			switch {
			case err != nil:
				return nil, err
			case b == nil:
				return http.NoBody, nil
			}
			if rc, ok := b.(io.ReadCloser); ok {
				return rc, nil
			}
			return io.NopCloser(b), nil
		}
	}
	return req, nil
}

// isEventStream reports whether a Content-Type is text/event-stream,
// whatever its parameters.
func isEventStream(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "text/event-stream"
}

// idleReader runs a timer for d during each read, and only then: the
// connection is dropped when one read waits d for the network, however long
// the decoder and the caller's loop body take between reads.
type idleReader struct {
	r io.Reader
	d time.Duration
	t *time.Timer
}

func (ir *idleReader) Read(p []byte) (int, error) {
	ir.t.Reset(ir.d)
	n, err := ir.r.Read(p)
	ir.t.Stop()
	return n, err
}
