package sse

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// headerID identifies clients by their X-User header, as an application
// would by its session.
func headerID(r *http.Request) (string, error) {
	if u := r.Header.Get("X-User"); u != "" {
		return u, nil
	}
	return "", errors.New("no user")
}

// queryTopics subscribes a stream to every ?topic= value.
func queryTopics(r *http.Request) ([]string, error) { return r.URL.Query()["topic"], nil }

func user(name string) http.Header { return http.Header{"X-User": {name}} }

// Streams are read with GET. HEAD is answered as GET would be, without a
// body and without a stream (RFC 9110); OPTIONS with 204 and Allow, for
// CORS middleware that passes preflights on; anything else with 405.
func TestMethods(t *testing.T) {
	h, srv := newTestHub(t, Config{ClientID: headerID})
	do := func(method string, header http.Header) (*http.Response, string) {
		t.Helper()
		resp, err := http.DefaultClient.Do(mustMethodRequest(t, method, srv.URL, header))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, "BREW"} {
		if resp, _ := do(method, user("ann")); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD, OPTIONS" {
			t.Fatalf("%s: %s, Allow %q", method, resp.Status, resp.Header.Get("Allow"))
		}
	}
	if resp, body := do(http.MethodOptions, nil); resp.StatusCode != http.StatusNoContent || resp.Header.Get("Allow") != "GET, HEAD, OPTIONS" || body != "" {
		t.Fatalf("OPTIONS: %s, Allow %q, body %q", resp.Status, resp.Header.Get("Allow"), body)
	}
	resp, body := do(http.MethodHead, user("ann"))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" ||
		resp.Header.Get("Cache-Control") != "no-cache" || body != "" {
		t.Fatalf("HEAD: %s %q %q, body %q", resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), body)
	}
	if resp, _ := do(http.MethodHead, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("HEAD without a client ID: %s, want what GET gets", resp.Status)
	}
	if st := h.Stats(); st.Streams != 0 || st.Published != 0 {
		t.Fatalf("a method other than GET opened a stream: %+v", st)
	}
}

// mustMethodRequest builds a request with method and header.
func mustMethodRequest(t testing.TB, method, u string, header http.Header) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return req
}

// A stream that middleware compresses is reported, even without a Logger:
// a compressor that buffers holds its events back. (A stream taken over
// with Config.Hijack is never compressed: TestHijackWritesTheResponseItself.)
func TestCompressedStreamIsReported(t *testing.T) {
	var logged syncBuffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	h, err := NewHub(Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip") // what a gzip middleware announces
		h.ServeHTTP(&unwrapper{w}, r)
	}))
	defer srv.Close()
	defer h.Close() // first, so that srv.Close does not wait for the stream
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := dial(t, &http.Client{Transport: tr}, srv.URL, nil)
	// The hub counts the stream once its head is flushed, which the client
	// may see first.
	waitFor(t, "the compressed stream to be counted", func() bool { return h.Stats().Compressed == 1 })
	if !strings.Contains(logged.String(), "Content-Encoding") || !strings.Contains(logged.String(), "level=WARN") {
		t.Fatalf("default log %q", logged.String())
	}
	c.close()
}

func TestClientIDErrors(t *testing.T) {
	var connects int
	var mu sync.Mutex
	h, srv := newTestHub(t, Config{
		ClientID: func(r *http.Request) (string, error) {
			switch r.URL.Query().Get("case") {
			case "forbidden":
				return "", &StatusError{Code: http.StatusForbidden, Err: errors.New("secret detail")}
			case "empty":
				return "", nil
			case "plain":
				return "", errors.New("secret detail")
			}
			return "ok", nil
		},
		Topics: func(r *http.Request) ([]string, error) {
			if r.URL.Query().Get("case") == "badtopics" {
				return nil, errors.New("secret detail")
			}
			if r.URL.Query().Get("case") == "emptytopic" {
				return []string{"a", ""}, nil
			}
			return nil, nil
		},
		OnConnect: func(StreamInfo) { mu.Lock(); connects++; mu.Unlock() },
	})
	for c, want := range map[string]int{"forbidden": 403, "empty": 401, "plain": 401, "badtopics": 400, "emptytopic": 400} {
		resp, err := http.Get(srv.URL + "?case=" + c)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", c, resp.StatusCode, want)
		}
		if strings.Contains(string(body), "secret") {
			t.Errorf("%s: the error text leaked to the client: %q", c, body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if st := h.Stats(); st.Streams != 0 || connects != 0 {
		t.Fatalf("rejected requests registered streams: %+v, %d connects", st, connects)
	}
}

// Headers arrive, flushed, before any event: the browser's onopen fires at
// once.
func TestHeadersFlushedAtConnect(t *testing.T) {
	_, srv := newTestHub(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req) // returns once headers arrive
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for k, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// The first bytes are the retry hint: no BOM (W2), a decimal retry (W6).
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "retry: 3000\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
}

func TestSendReachesEveryTabOfOneClientOnly(t *testing.T) {
	h, srv := newTestHub(t, Config{ClientID: headerID})
	tab1 := dial(t, nil, srv.URL, user("ann"))
	tab2 := dial(t, nil, srv.URL, user("ann"))
	bob := dial(t, nil, srv.URL, user("bob"))
	waitStreams(t, h, 3)

	n, err := h.Send("ann", Event{Data: []byte("for ann")})
	if err != nil || n != 2 {
		t.Fatalf("Send = %d, %v; want 2", n, err)
	}
	for _, c := range []*testClient{tab1, tab2} {
		if ev := c.next(); string(ev.Data) != "for ann" {
			t.Fatalf("got %q", ev.Data)
		}
	}
	// One tab closing leaves the other untouched: no eviction by ID.
	tab1.close()
	waitStreams(t, h, 2)
	if n, _ := h.Send("ann", Event{Data: []byte("again")}); n != 1 {
		t.Fatalf("Send after a tab closed = %d, want 1", n)
	}
	if ev := tab2.next(); string(ev.Data) != "again" {
		t.Fatalf("got %q", ev.Data)
	}
	if n, _ := h.Broadcast(Event{Data: []byte("all")}); n != 2 {
		t.Fatalf("Broadcast = %d, want 2", n)
	}
	// Bob saw only the broadcast.
	if ev := bob.next(); string(ev.Data) != "all" {
		t.Fatalf("bob got %q before the broadcast", ev.Data)
	}
	if n, err := h.Send("nobody", Event{Data: []byte("x")}); n != 0 || err != nil {
		t.Fatalf("Send to an absent client = %d, %v", n, err)
	}
	if _, err := h.Send("", Event{}); err == nil {
		t.Fatal("Send to an empty ID must fail")
	}
}

func TestTopics(t *testing.T) {
	h, srv := newTestHub(t, Config{ClientID: headerID, Topics: queryTopics})
	line3 := dial(t, nil, srv.URL+"?topic=line-3", user("ann"))
	both := dial(t, nil, srv.URL+"?topic=line-3&topic=line-4", user("bob"))
	none := dial(t, nil, srv.URL, user("cat"))
	waitStreams(t, h, 3)
	if st := h.Stats(); st.Topics != 2 || st.Clients != 3 {
		t.Fatalf("stats %+v", st)
	}

	if n, err := h.Publish("line-4", Event{Data: []byte("four")}); n != 1 || err != nil {
		t.Fatalf("Publish line-4 = %d, %v", n, err)
	}
	if n, _ := h.Publish("line-3", Event{Data: []byte("three")}); n != 2 {
		t.Fatalf("Publish line-3 = %d", n)
	}
	if ev := both.next(); string(ev.Data) != "four" {
		t.Fatalf("got %q", ev.Data)
	}
	for _, c := range []*testClient{line3, both} {
		if ev := c.next(); string(ev.Data) != "three" {
			t.Fatalf("got %q", ev.Data)
		}
	}
	// Subscribe at run time, by client ID.
	if n := h.Subscribe("cat", "line-4"); n != 1 {
		t.Fatalf("Subscribe = %d", n)
	}
	if n := h.Unsubscribe("bob", "line-4"); n != 1 {
		t.Fatalf("Unsubscribe = %d", n)
	}
	if n, _ := h.Publish("line-4", Event{Data: []byte("four again")}); n != 1 {
		t.Fatalf("Publish after changes = %d", n)
	}
	if ev := none.next(); string(ev.Data) != "four again" {
		t.Fatalf("got %q", ev.Data)
	}
	if n, _ := h.Publish("nobody-listens", Event{}); n != 0 {
		t.Fatalf("Publish to an empty topic reached %d", n)
	}
	if _, err := h.Publish("", Event{}); err == nil {
		t.Fatal("Publish to an empty topic name must fail")
	}
	// Bob, unsubscribed, gets nothing more; a broadcast proves the stream is alive.
	h.Broadcast(Event{Data: []byte("end")})
	if ev := both.next(); string(ev.Data) != "end" {
		t.Fatalf("bob got %q", ev.Data)
	}
}

// Invalid events and oversized events are refused whole: nothing is queued,
// nothing enters history.
func TestBadEventsAreRefused(t *testing.T) {
	h, srv := newTestHub(t, Config{QueueBytes: 4096})
	c := dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	for _, ev := range []Event{{ID: "a\nb"}, {Type: "x\ry"}, {ID: "\x00"}, {Data: []byte{0xff}}, {Retry: -1}} {
		for _, call := range []func(Event) (int, error){
			h.Broadcast,
			func(e Event) (int, error) { return h.Publish("t", e) },
			func(e Event) (int, error) { return h.Send("id", e) },
		} {
			if n, err := call(ev); n != 0 || !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("%+v: %d, %v", ev, n, err)
			}
		}
	}
	if n, err := h.Broadcast(Event{Data: make([]byte, 5000)}); n != 0 || !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("oversized: %d, %v", n, err)
	}
	// The frame counts an application-set ID whole: this one fits no
	// queue (4,106 bytes) although its body alone would (3,008 bytes).
	long := Event{ID: strings.Repeat("i", 1100), Data: make([]byte, 3000)}
	if n, err := h.Broadcast(long); n != 0 || !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("oversized with its ID: %d, %v", n, err)
	}
	if st := h.Stats(); st.Published != 0 || st.Queued != 0 {
		t.Fatalf("refused events were counted: %+v", st)
	}
	h.Broadcast(Event{Data: []byte("good")})
	if ev := c.next(); string(ev.Data) != "good" {
		t.Fatalf("the first event to arrive was %q", ev.Data)
	}
	// One with a long ID that fits is taken, and delivered.
	fits := Event{ID: strings.Repeat("i", 1000), Data: []byte(strings.Repeat("d", 3000))}
	if n, err := h.Broadcast(fits); n != 1 || err != nil {
		t.Fatalf("a fitting event with a long ID: %d, %v", n, err)
	}
	if ev := c.next(); ev.ID != fits.ID || len(ev.Data) != 3000 {
		t.Fatalf("got id %.10q…, %d bytes", ev.ID, len(ev.Data))
	}
}

func TestLimits(t *testing.T) {
	h, srv := newTestHub(t, Config{ClientID: headerID, MaxStreams: 3, MaxStreamsPerClient: 2, RefuseRetry: 2 * time.Second})
	dial(t, nil, srv.URL, user("ann"))
	dial(t, nil, srv.URL, user("ann"))
	waitStreams(t, h, 2)
	checkRefused := func(who string) {
		t.Helper()
		resp, err := http.DefaultClient.Do(mustRequest(t, srv.URL, user(who)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body) // the stream ends at once
		resp.Body.Close()
		// W9: 200 with a retry hint, never a 5xx (browsers give up on those).
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("%s: %s %q", who, resp.Status, resp.Header.Get("Content-Type"))
		}
		d := NewDecoder(strings.NewReader(string(body)))
		if _, err := d.Decode(); err != io.EOF || d.Retry() < 2*time.Second || d.Retry() > 3*time.Second {
			t.Fatalf("%s: body %q: retry %v (want 2–3 s), %v", who, body, d.Retry(), err)
		}
	}
	checkRefused("ann") // per client
	dial(t, nil, srv.URL, user("bob"))
	waitStreams(t, h, 3)
	checkRefused("cat") // in total
	if st := h.Stats(); st.Refused != 2 || st.Streams != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// MaxStreamsPerAddress bounds the streams of one remote IP, whatever their
// client IDs (the default gives each stream its own): a peer at another
// address is still served.
func TestLimitPerAddress(t *testing.T) {
	h, srv := newTestHub(t, Config{MaxStreamsPerAddress: 2, RefuseRetry: time.Second})
	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	one := from("127.0.0.1")
	dial(t, one, srv.URL, nil)
	dial(t, one, srv.URL, nil)
	waitStreams(t, h, 2)
	resp, err := one.Do(mustRequest(t, srv.URL, nil))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.Contains(string(body), "data:") || !strings.HasPrefix(string(body), "retry: ") {
		t.Fatalf("the third stream from one address: %s %q, want a refusal with a retry hint", resp.Status, body)
	}
	if runtime.GOOS == "linux" { // any 127/8 address is loopback there
		dial(t, from("127.0.0.2"), srv.URL, nil)
		waitStreams(t, h, 3)
	}
	if st := h.Stats(); st.Refused != 1 {
		t.Fatalf("stats %+v, want one refusal", st)
	}
}

// mustRequest builds a GET request with header.
func mustRequest(t testing.TB, u string, header http.Header) *http.Request {
	t.Helper()
	return mustMethodRequest(t, http.MethodGet, u, header)
}

// Each hook runs exactly once per stream, with the reason it ended.
func TestHooksOncePerStream(t *testing.T) {
	var mu sync.Mutex
	connects := map[string]int{}
	disconnects := map[string][]DisconnectReason{}
	h, srv := newTestHub(t, Config{
		ClientID: func(r *http.Request) (string, error) { return r.URL.Query().Get("id"), nil },
		OnConnect: func(s StreamInfo) {
			mu.Lock()
			connects[s.ClientID]++
			mu.Unlock()
		},
		OnDisconnect: func(s StreamInfo, r DisconnectReason) {
			mu.Lock()
			disconnects[s.ClientID] = append(disconnects[s.ClientID], r)
			mu.Unlock()
		},
	})
	gone := dial(t, nil, srv.URL+"?id=gone", nil)
	kicked := dial(t, nil, srv.URL+"?id=kicked", nil)
	dial(t, nil, srv.URL+"?id=shut", nil)
	waitStreams(t, h, 3)
	gone.close()
	waitStreams(t, h, 2)
	if n := h.Disconnect("kicked"); n != 1 {
		t.Fatalf("Disconnect = %d", n)
	}
	if err := kicked.ended(); err != io.EOF {
		t.Fatalf("a disconnected stream should end cleanly, got %v", err)
	}
	h.Close()
	mu.Lock()
	defer mu.Unlock()
	want := map[string]DisconnectReason{"gone": ReasonClientGone, "kicked": ReasonDisconnected, "shut": ReasonShutdown}
	for id, reason := range want {
		if connects[id] != 1 || len(disconnects[id]) != 1 || disconnects[id][0] != reason {
			t.Errorf("%s: %d connects, disconnects %v; want 1 and [%v]", id, connects[id], disconnects[id], reason)
		}
	}
}

// A Send from OnConnect reaches the new stream.
// The hooks may call every method of the hub: none of its locks is held
// while they run (tmaxmax/go-sse#58 deadlocks on exactly this).
func TestHooksMayCallTheHub(t *testing.T) {
	var h *Hub
	disconnected := make(chan int, 1)
	h, srv := newTestHub(t, Config{
		ClientID: headerID,
		OnConnect: func(s StreamInfo) {
			h.Subscribe(s.ClientID, "alarms")
			_ = h.Stats()
		},
		OnDisconnect: func(s StreamInfo, _ DisconnectReason) {
			h.Unsubscribe(s.ClientID, "alarms")
			h.Disconnect(s.ClientID)
			n, _ := h.Publish("alarms", Event{Data: []byte("after")})
			disconnected <- n
		},
	})
	c := dial(t, nil, srv.URL, user("ann"))
	waitStreams(t, h, 1)
	if n, err := h.Publish("alarms", Event{Data: []byte("subscribed in OnConnect")}); n != 1 || err != nil {
		t.Fatalf("Publish: %d, %v", n, err)
	}
	if ev := c.next(); string(ev.Data) != "subscribed in OnConnect" {
		t.Fatalf("got %q", ev.Data)
	}
	if n := h.Disconnect("ann"); n != 1 {
		t.Fatalf("Disconnect ended %d streams, want 1", n)
	}
	select {
	case n := <-disconnected:
		if n != 0 {
			t.Fatalf("a publish from OnDisconnect reached %d streams, want 0", n)
		}
	case <-time.After(testTimeout):
		t.Fatal("OnDisconnect did not return: deadlock?")
	}
}

func TestSendFromOnConnect(t *testing.T) {
	var h *Hub
	h, srv := newTestHub(t, Config{
		ClientID:  headerID,
		OnConnect: func(s StreamInfo) { h.Send(s.ClientID, Event{Type: "welcome", Data: []byte(s.ClientID)}) },
	})
	c := dial(t, nil, srv.URL, user("ann"))
	if ev := c.next(); ev.Type != "welcome" || string(ev.Data) != "ann" {
		t.Fatalf("got %+v", ev)
	}
}

func TestDefaultClientIDsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, err := randomClientID(nil)
		if err != nil || len(id) < 16 || seen[id] {
			t.Fatalf("id %q, %v", id, err)
		}
		seen[id] = true
	}
}

// A wrapper that hides http.Flusher but offers Unwrap, as most middleware
// does, still streams: the hub reaches Flush through http.ResponseController.
type unwrapper struct{ w http.ResponseWriter }

func (u *unwrapper) Header() http.Header         { return u.w.Header() }
func (u *unwrapper) Write(p []byte) (int, error) { return u.w.Write(p) }
func (u *unwrapper) WriteHeader(code int)        { u.w.WriteHeader(code) }
func (u *unwrapper) Unwrap() http.ResponseWriter { return u.w }

// opaque hides everything and cannot be unwrapped.
type opaque struct{ w http.ResponseWriter }

func (o *opaque) Header() http.Header         { return o.w.Header() }
func (o *opaque) Write(p []byte) (int, error) { return o.w.Write(p) }
func (o *opaque) WriteHeader(code int)        { o.w.WriteHeader(code) }

func TestThroughMiddleware(t *testing.T) {
	if _, ok := any(&unwrapper{}).(http.Flusher); ok {
		t.Fatal("the test wrapper must hide http.Flusher")
	}
	h, err := NewHub(testConfig(Config{}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&unwrapper{w}, r)
	}))
	defer srv.Close()
	defer h.Close()
	c := dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	h.Broadcast(Event{Data: []byte("through")})
	if ev := c.next(); string(ev.Data) != "through" {
		t.Fatalf("got %q", ev.Data)
	}
}

// http.Server.WriteTimeout would cut a stream after it elapses; the hub
// clears it for its streams.
func TestServerWriteTimeoutDoesNotCutStreams(t *testing.T) {
	h, err := NewHub(testConfig(Config{Heartbeat: -1}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.WriteTimeout = 100 * time.Millisecond
	srv.Start()
	defer srv.Close()
	defer h.Close()
	c := dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	time.Sleep(400 * time.Millisecond) // four write timeouts
	if n, _ := h.Broadcast(Event{Data: []byte("still here")}); n != 1 {
		t.Fatalf("Broadcast = %d", n)
	}
	if ev := c.next(); string(ev.Data) != "still here" {
		t.Fatalf("got %q", ev.Data)
	}
}

// A panicking OnConnect (net/http recovers handler panics) still
// unregisters its stream and pairs with OnDisconnect.
func TestPanickingHookLeavesNothingBehind(t *testing.T) {
	disconnects := make(chan DisconnectReason, 1)
	h, srv := newTestHub(t, Config{
		OnConnect:    func(StreamInfo) { panic("application bug") },
		OnDisconnect: func(_ StreamInfo, r DisconnectReason) { disconnects <- r },
		Logger:       slog.New(slog.DiscardHandler),
	})
	srv.Config.ErrorLog = quietLog() // keep the recovered panic out of the test output
	if resp, err := http.Get(srv.URL); err == nil {
		resp.Body.Close()
	}
	select {
	case <-disconnects:
	case <-time.After(testTimeout):
		t.Fatal("OnDisconnect was not called")
	}
	waitStreams(t, h, 0)
}

// panickyBroker is the in-memory broker whose Replay and Snapshot panic.
type panickyBroker struct{ *memoryBroker }

func (panickyBroker) Replay(context.Context, string, string, []Target, func(*Message) bool) (bool, string, error) {
	panic("broker bug in Replay")
}

func (panickyBroker) Snapshot(context.Context, string, []Target, func(*Message) bool) error {
	panic("broker bug in Snapshot")
}

// A Broker that panics while a stream starts leaves nothing registered,
// and the hooks stay paired: no OnDisconnect without its OnConnect.
func TestPanickingBrokerLeavesTheHooksPaired(t *testing.T) {
	var mu sync.Mutex
	connects, disconnects := 0, 0
	h, srv := newTestHub(t, Config{
		Broker:       panickyBroker{newMemoryBroker(16, 16)},
		OnConnect:    func(StreamInfo) { mu.Lock(); connects++; mu.Unlock() },
		OnDisconnect: func(StreamInfo, DisconnectReason) { mu.Lock(); disconnects++; mu.Unlock() },
	})
	srv.Config.ErrorLog = quietLog()                              // net/http logs the recovered panics
	for _, header := range []http.Header{nil, lastEventID("x")} { // Snapshot, then Replay
		if resp, err := http.DefaultClient.Do(mustRequest(t, srv.URL, header)); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	waitStreams(t, h, 0)
	mu.Lock()
	defer mu.Unlock()
	if connects != 0 || disconnects != 0 {
		t.Fatalf("%d OnConnect, %d OnDisconnect calls; want none", connects, disconnects)
	}
}
