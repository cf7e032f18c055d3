package sse

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// tokens is an Authenticate for tests: the X-Token header names a token,
// which maps to a client ID and an expiry.
type tokens struct {
	mu     sync.Mutex
	byName map[string]Credential
}

func (tk *tokens) set(token, client string, expires time.Time) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	if tk.byName == nil {
		tk.byName = make(map[string]Credential)
	}
	tk.byName[token] = Credential{ClientID: client, Expires: expires}
}

func (tk *tokens) authenticate(r *http.Request) (Credential, error) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	c, ok := tk.byName[r.Header.Get("X-Token")]
	if !ok {
		return Credential{}, errors.New("no such token")
	}
	return c, nil
}

func token(name string) http.Header { return http.Header{"X-Token": {name}} }

// A stream lives no longer than its credential: it ends at the expiry,
// after what was queued to it, with its own reason and counter; a
// reconnect with the expired credential is refused and registers nothing;
// one with a refreshed credential resumes.
func TestStreamEndsWhenItsCredentialExpires(t *testing.T) {
	var tk tokens
	reasons := make(chan DisconnectReason, 4)
	h, srv := newTestHub(t, Config{Authenticate: tk.authenticate, Heartbeat: -1,
		OnDisconnect: func(_ StreamInfo, r DisconnectReason) { reasons <- r }})
	expires := time.Now().Add(300 * time.Millisecond)
	tk.set("old", "ann", expires)
	c := dial(t, nil, srv.URL, token("old"))
	waitStreams(t, h, 1)
	h.Send("ann", data("before"))
	rest, err := c.drain()
	if err == nil || len(rest) != 1 || string(rest[0].Data) != "before" {
		t.Fatalf("the stream got %v, then %v; want what was queued, then its end", rest, err)
	}
	if late := time.Since(expires); late > time.Second { // a liveness bound
		t.Fatalf("the stream ended %v after its credential expired", late)
	}
	if r := <-reasons; r != ReasonExpired {
		t.Fatalf("ended as %v, want %v", r, ReasonExpired)
	}
	if st := h.Stats(); st.Expired != 1 || st.Streams != 0 {
		t.Fatalf("stats %+v", st)
	}
	resp, err := http.DefaultClient.Do(mustRequest(t, srv.URL, withHeader(token("old"), lastEventID(c.dec.LastEventID()))))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || h.Stats().Streams != 0 {
		t.Fatalf("a reconnect with the expired credential: %s, %d streams", resp.Status, h.Stats().Streams)
	}
	h.Send("ann", data("while away"))
	tk.set("new", "ann", time.Now().Add(time.Hour))
	c = dial(t, nil, srv.URL, withHeader(token("new"), lastEventID(c.dec.LastEventID())))
	if ev := c.next(); string(ev.Data) != "while away" {
		t.Fatalf("the refreshed stream got %q, want the replay of what it missed", ev.Data)
	}
}

// MaxLifetime ends every stream after between 80 and 100 % of it, at
// random, with its own reason and counter.
func TestMaxLifetime(t *testing.T) {
	const life = 400 * time.Millisecond
	var mu sync.Mutex
	var lived []time.Duration
	began := time.Now()
	h, srv := newTestHub(t, Config{MaxLifetime: life, Heartbeat: -1, OnDisconnect: func(s StreamInfo, r DisconnectReason) {
		mu.Lock()
		defer mu.Unlock()
		if r != ReasonLifetime {
			t.Errorf("ended as %v, want %v", r, ReasonLifetime)
		}
		lived = append(lived, time.Since(began))
	}})
	const n = 8
	for range n {
		dial(t, nil, srv.URL, nil)
	}
	waitFor(t, "every stream to end", func() bool { return h.Stats().LifetimeEnds == n })
	mu.Lock()
	defer mu.Unlock()
	for _, d := range lived {
		if d < life*8/10 {
			t.Fatalf("a stream lived %v, under 80 %% of MaxLifetime %v", d, life)
		}
	}
}

// The zero Config is unchanged; ClientID and Authenticate together, or a
// negative MaxLifetime, are refused.
func TestLifetimeConfig(t *testing.T) {
	_, err := NewHub(Config{ClientID: headerID, Authenticate: (&tokens{}).authenticate, MaxLifetime: -time.Second})
	if err == nil || !strings.Contains(err.Error(), "Authenticate") || !strings.Contains(err.Error(), "MaxLifetime") {
		t.Fatalf("NewHub: %v, want both problems named", err)
	}
}

// Streams that end before their appointed end take it back: the hub's
// heap of ends holds open streams only, and its goroutine stops with them.
func TestEndsHoldOnlyOpenStreams(t *testing.T) {
	h, srv := newTestHub(t, Config{MaxLifetime: time.Hour, Heartbeat: -1})
	var cs []*testClient
	for range 20 {
		cs = append(cs, dial(t, nil, srv.URL, nil))
	}
	waitStreams(t, h, 20)
	for _, c := range cs {
		c.close()
	}
	waitStreams(t, h, 0)
	waitFor(t, "the heap of ends to empty and its goroutine to stop", func() bool {
		h.ends.mu.Lock()
		defer h.ends.mu.Unlock()
		return len(h.ends.due) == 0 && !h.ends.running
	})
}

// With Config.LastEventIDParam, a new EventSource (a new token in its URL)
// resumes from the id its page puts in the query; the header, which a
// browser's own reconnections send, wins when both are there.
func TestLastEventIDParam(t *testing.T) {
	h, srv := newTestHub(t, Config{LastEventIDParam: "lastEventID", Heartbeat: -1})
	c := dial(t, nil, srv.URL, nil)
	waitStreams(t, h, 1)
	h.Broadcast(data("one"))
	first := c.next().ID
	h.Broadcast(data("two"))
	second := c.next().ID
	c.close()
	waitStreams(t, h, 0)
	h.Broadcast(data("three"))
	c = dial(t, nil, srv.URL+"/?lastEventID="+first, nil)
	if ev := c.next(); string(ev.Data) != "two" {
		t.Fatalf("a resume from the query got %q, want %q", ev.Data, "two")
	}
	c.close()
	c = dial(t, nil, srv.URL+"/?lastEventID="+first, lastEventID(second))
	if ev := c.next(); string(ev.Data) != "three" {
		t.Fatalf("with both, the resume got %q, want %q (from the header)", ev.Data, "three")
	}
}
