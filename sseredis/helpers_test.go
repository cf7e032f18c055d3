package sseredis

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssehub/sse"
)

const redisBinary = "/usr/bin/redis-server"

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{}) // go-redis logs every failed dial
	os.Exit(m.Run())
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// redisServer is a redis-server the test started, on a loopback port of
// its own, in a temporary directory.
type redisServer struct {
	t    testing.TB
	dir  string
	port int
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// ci reports whether CI is set: then a missing redis-server fails.
func ci() bool {
	v := os.Getenv("CI")
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

// startRedis starts a redis-server without persistence (extra arguments
// may change that) and stops it at cleanup.
func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	bin := redisBinary
	if _, err := os.Stat(bin); err != nil {
		p, lookErr := exec.LookPath("redis-server")
		if lookErr != nil {
			if ci() {
				t.Fatalf("redis-server not found (%v): the tests need Debian's redis-server (apt-get install redis-server)", err)
			}
			t.Skipf("redis-server not found (%v): install Debian's redis-server to run these tests", err)
		}
		bin = p
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	s := &redisServer{t: t, dir: dir, port: port}
	s.args = append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"),
	}, extra...)
	s.args = append([]string{bin}, s.args...)
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// start runs the server and waits until it answers PING.
func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	c := redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redis-server exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server did not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server, as a crash would (without persistence it loses
// everything).
func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// node is a hub with its own Broker and HTTP server on a shared Redis.
type node struct {
	name   string
	client *redis.Client
	broker *Broker
	hub    *sse.Hub
	srv    *httptest.Server
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// newNode starts a node on r. Streams take their client ID from ?client=
// and their topics from ?topic=.
func newNode(t *testing.T, name string, r *redisServer, opts Options) *node {
	t.Helper()
	return newNodeOn(t, name, redis.NewClient(&redis.Options{Addr: r.addr(), DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second}), opts)
}

// newNodeOn starts a node whose broker uses client, which it closes.
func newNodeOn(t *testing.T, name string, client *redis.Client, opts Options) *node {
	t.Helper()
	return newNodeWith(t, name, client, opts, nil)
}

// newNodeWith is newNodeOn with the hub's Config changed by tweak, if set.
func newNodeWith(t *testing.T, name string, client *redis.Client, opts Options, tweak func(*sse.Config)) *node {
	t.Helper()
	if opts.Block == 0 {
		opts.Block = 200 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t).With("node", name)
	}
	b, err := New(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sse.Config{
		Broker:    b,
		Heartbeat: -1,
		Logger:    testLogger(t).With("node", name),
		ClientID: func(r *http.Request) (string, error) {
			if id := r.URL.Query().Get("client"); id != "" {
				return id, nil
			}
			return "anon-" + strconv.FormatInt(time.Now().UnixNano(), 36), nil
		},
		Topics: func(r *http.Request) ([]string, error) { return r.URL.Query()["topic"], nil },
	}
	if tweak != nil {
		tweak(&cfg)
	}
	hub, err := sse.NewHub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, client: client, broker: b, hub: hub, srv: httptest.NewServer(hub)}
	t.Cleanup(n.close)
	return n
}

// broadcast broadcasts on n the events prefix+from up to prefix+to,
// failing the test if one is refused.
func (n *node) broadcast(t *testing.T, prefix string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := n.hub.Broadcast(ev("%s%d", prefix, i)); err != nil {
			t.Fatal(err)
		}
	}
}

func (n *node) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.hub.Shutdown(ctx)
	n.srv.CloseClientConnections()
	n.srv.Close()
	n.client.Close()
}

// sub is a client's stream.
type sub struct {
	t      *testing.T
	name   string
	resp   *http.Response
	events chan sse.Event
	errc   chan error
	last   string // the last event ID, position events included
	resets []string
	cancel context.CancelFunc
	once   sync.Once
}

// connect opens a stream on n with query (e.g. "client=a&topic=x") and
// lastID as Last-Event-ID, and waits for its start: the PositionEvent of a
// fresh or reset stream, or nothing for a resumed one (wait then comes
// from the caller's next).
func connect(t *testing.T, n *node, query, lastID string) *sub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", n.srv.URL+"/?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		t.Fatalf("status %d", resp.StatusCode)
	}
	s := &sub{t: t, name: query + "@" + n.name, resp: resp, events: make(chan sse.Event, 4096), errc: make(chan error, 1), last: lastID, cancel: cancel}
	go func() {
		dec := sse.NewDecoder(bufio.NewReader(resp.Body))
		if lastID != "" {
			dec.SetLastEventID(lastID)
		}
		for {
			ev, err := dec.Decode()
			if err != nil {
				s.errc <- err
				close(s.events)
				return
			}
			s.events <- ev
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *sub) close() {
	s.once.Do(func() {
		s.cancel()
		s.resp.Body.Close()
	})
}

// raw returns the next event of any type.
func (s *sub) raw(timeout time.Duration) (sse.Event, bool) {
	select {
	case ev, ok := <-s.events:
		if !ok {
			return sse.Event{}, false
		}
		s.last = ev.ID
		if ev.Type == sse.ResetEvent {
			s.resets = append(s.resets, string(ev.Data))
		}
		return ev, true
	case <-time.After(timeout):
		return sse.Event{}, false
	}
}

// next returns the next application event, skipping position events as
// an application does (resets are recorded and skipped too).
func (s *sub) next(timeout time.Duration) (sse.Event, bool) {
	deadline := time.Now().Add(timeout)
	for {
		ev, ok := s.raw(time.Until(deadline))
		if !ok {
			return ev, false
		}
		if ev.Type == sse.PositionEvent || ev.Type == sse.ResetEvent {
			continue
		}
		return ev, true
	}
}

// resuming reads count application events from s, and when its stream
// ends reconnects to n with query and the last id it got, as a client
// does, carrying on with the new stream. It returns the stream it ended
// on, whose resets are all those the reconnections brought.
func (s *sub) resuming(n *node, query string, count int) (*sub, []string) {
	s.t.Helper()
	cur := s
	var out []string
	deadline := time.Now().Add(20 * time.Second)
	for len(out) < count {
		ev, ok := cur.next(time.Until(deadline))
		if ok {
			out = append(out, string(ev.Data))
			continue
		}
		select {
		case <-cur.errc:
		default:
			s.t.Fatalf("%s: got %d events of %d: %v", cur.name, len(out), count, out)
		}
		resets := cur.resets
		cur = connect(s.t, n, query, cur.last)
		cur.resets = resets
	}
	return cur, out
}

// waitStart waits for the position event that ends a stream's start.
func (s *sub) waitStart() { s.t.Helper(); s.waitType(sse.PositionEvent, "start") }

// waitReset waits for a reset event, which ends the start of a stream
// reset with an empty snapshot.
func (s *sub) waitReset() { s.t.Helper(); s.waitType(sse.ResetEvent, "reset") }

// waitType reads events until one of type typ, failing the test (saying
// "no what") if none comes within 5 s.
func (s *sub) waitType(typ, what string) {
	s.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ev, ok := s.raw(time.Until(deadline))
		if !ok {
			s.t.Fatalf("%s: no %s", s.name, what)
		}
		if ev.Type == typ {
			return
		}
	}
}

// expect reads application events and checks their data.
func (s *sub) expect(want ...string) {
	s.t.Helper()
	for _, w := range want {
		ev, ok := s.next(5 * time.Second)
		if !ok {
			s.t.Fatalf("%s: wanted %q, got nothing", s.name, w)
		}
		if string(ev.Data) != w {
			s.t.Fatalf("%s: wanted %q, got %q (type %q, id %q)", s.name, w, ev.Data, ev.Type, ev.ID)
		}
	}
}

// quiet checks that no application event arrives for d.
func (s *sub) quiet(d time.Duration) {
	s.t.Helper()
	if ev, ok := s.next(d); ok {
		s.t.Fatalf("%s: unexpected event %q (type %q)", s.name, ev.Data, ev.Type)
	}
}

func ev(format string, a ...any) sse.Event { return sse.Event{Data: fmt.Appendf(nil, format, a...)} }

func seq(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// onMessage is a BrokerHandler that passes messages to fn and logs gaps
// and epochs.
type onMessage struct {
	t  *testing.T
	fn func(*sse.Message)
}

func (h onMessage) HandleMessage(m *sse.Message) { h.fn(m) }
func (h onMessage) HandleGap(pos string)         { h.t.Logf("gap at %s", pos) }
func (h onMessage) HandleEpoch(pos string)       { h.t.Logf("epoch at %s", pos) }
func (h onMessage) HandleDisconnect(id string)   { h.t.Logf("disconnect %s", id) }

// brokerGoroutines returns the stacks of the goroutines running a method
// of b.
func brokerGoroutines(b *Broker) []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	mine := regexp.MustCompile(`sseredis\.\(\*Broker\)\.\w+\(` + fmt.Sprintf("%p", b) + `[,)]`)
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if mine.MatchString(g) {
			found = append(found, g)
		}
	}
	return found
}

// noBrokerGoroutines fails the test if goroutines of b are still running a
// moment after Close returned (one that has just called wg.Done may still
// be returning; none may stay).
func noBrokerGoroutines(t *testing.T, b *Broker) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		g := brokerGoroutines(b)
		if len(g) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines outlived Close:\n%s", strings.Join(g, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// brokerOn makes a Broker on its own client of r with opts; both are
// closed at the test's cleanup (before r stops).
func brokerOn(t testing.TB, r *redisServer, opts Options) (*Broker, *redis.Client) {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: r.addr()})
	t.Cleanup(func() { client.Close() })
	b, err := New(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, client
}
