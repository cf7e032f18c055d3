package main

import (
	"strconv"
	"strings"
	"testing"

	sse "github.com/ssehub/sse"
)

// checkRun is a run with one topic, two client IDs and a ledger of events
// published to the given audiences, all certain but those in failed.
func checkRun(t *testing.T, history int, auds []audience, failed map[int]bool) *run {
	t.Helper()
	r := &run{topics: 1, history: history, nclients: 2}
	r.ledger = newLedger(1 + r.topics + r.nclients)
	for _, a := range auds {
		g, _ := r.ledger.add(a)
		r.ledger.settle(g, !failed[g], "")
	}
	return r
}

// event is what a client receives for event g.
func event(r *run, g int) sse.Event {
	r.ledger.mu.RLock()
	e := r.ledger.entries[g-1]
	r.ledger.mu.RUnlock()
	return sse.Event{ID: "e-" + strconv.Itoa(g), Data: eventData(e.aud, e.aseq, g)}
}

// A client's check counts what it skipped as lost, what it saw twice as
// duplicated, and accepts a failed publish at most once.
func TestCheckCountsLossAndDuplicates(t *testing.T) {
	// Audiences: 0 broadcast, 1 the topic, 2 client c0, 3 client c1.
	r := checkRun(t, 100, []audience{0, 1, 2, 3, 0, 2, 0, 1}, map[int]bool{6: true})
	c := &client{r: r, auds: []audience{0, 2}, cur: map[audience]int{}, seenUnc: map[int]bool{}}
	c.baseline(0)
	for _, g := range []int{1, 3, 5, 6, 6, 7} { // all of c0's events; 6 failed to publish, yet arrives twice
		c.check(event(r, g))
	}
	if c.lost != 0 || c.dups != 1 || c.delivered != 5 || c.errs != 0 {
		t.Fatalf("lost %d dups %d delivered %d errs %d, want 0, 1, 5, 0", c.lost, c.dups, c.delivered, c.errs)
	}
	c = &client{r: r, auds: []audience{0, 2}, cur: map[audience]int{}, seenUnc: map[int]bool{}}
	c.baseline(0)
	for _, g := range []int{1, 7, 5} { // skips 3 and 5 (5 arrives late: a duplicate by then)
		c.check(event(r, g))
	}
	c.finish(8)
	if c.lost != 2 || c.dups != 1 {
		t.Fatalf("lost %d dups %d, want 2 (events 3 and 5, 5 counted at event 7) and 1", c.lost, c.dups)
	}
	c = &client{r: r, auds: []audience{0, 2}, cur: map[audience]int{}, seenUnc: map[int]bool{}}
	c.baseline(0)
	c.check(event(r, 4)) // c1's event
	if c.errs != 1 {
		t.Fatalf("an event for another client ID gave %d protocol errors, want 1", c.errs)
	}
}

// A reset is spurious unless an event the client may receive, after its
// resume point, had history events published after it.
func TestCheckJudgesResets(t *testing.T) {
	// Events 1..4 for c0, then 10 for the topic c0 does not follow.
	auds := []audience{2, 2, 2, 2}
	for range 10 {
		auds = append(auds, 1)
	}
	r := checkRun(t, 8, auds, nil)
	for _, tt := range []struct {
		resume   int
		spurious bool
	}{
		{resume: 1, spurious: false}, // event 2 has 12 published after it: evicted
		{resume: 4, spurious: true},  // nothing of c0's after 4: a reset loses nothing
	} {
		c := &client{r: r, auds: []audience{0, 2}, cur: map[audience]int{}, seenUnc: map[int]bool{}}
		c.judgeReset(&session{sent: "e-" + strconv.Itoa(tt.resume), resumeG: tt.resume}, "expired")
		if got := c.spurious == 1; got != tt.spurious {
			t.Fatalf("reset from %d: spurious %v, want %v", tt.resume, got, tt.spurious)
		}
	}
}

// history is a ledger written step by step: publishes, and data losses
// between them. Positions are "<epoch>-<g>", as the in-memory broker's.
type history struct {
	t *testing.T
	r *run
}

func newHistory(t *testing.T) *history {
	r := &run{topics: 1, history: 100, nclients: 2}
	r.ledger = newLedger(1 + r.topics + r.nclients)
	r.ledger.era("e1-0") // the first epoch, seen at the start
	return &history{t, r}
}

func (h *history) publish(auds ...audience) {
	for _, a := range auds {
		g, _ := h.r.ledger.add(a)
		h.r.ledger.settle(g, true, "")
	}
}

// loss records that Redis lost everything but kept.
func (h *history) loss(kept ...int) {
	m := make(map[int]bool)
	for _, g := range kept {
		m[g] = true
	}
	h.r.ledger.recordLoss("test", 1, m)
}

// client returns c0 (the broadcast and its own ID), its check not yet
// started.
func (h *history) client() *client {
	return &client{r: h.r, id: "c0", auds: []audience{0, 2}, cur: map[audience]int{}, seenUnc: map[int]bool{}}
}

// feed gives c the events of one connection: "<epoch>-<g>" for event g
// with that position, "pos <epoch>-<g>" for a position marker, "reset
// <reason>" for a reset without a position. It opens the connection from
// the client's resume point, as a reconnect does.
func (h *history) feed(c *client, evs ...string) *session {
	h.t.Helper()
	cn := c.dial()
	for _, s := range evs {
		var ev sse.Event
		switch kind, arg, _ := strings.Cut(s, " "); kind {
		case "pos":
			ev = sse.Event{ID: arg, Type: sse.PositionEvent}
		case "reset":
			ev = sse.Event{ID: c.lastID, Type: sse.ResetEvent, Data: []byte(arg)}
		default:
			_, n := splitPos(s)
			g, err := strconv.Atoi(n)
			if err != nil {
				h.t.Fatal(err)
			}
			ev = event(h.r, g)
			ev.ID = s
		}
		c.lastID = ev.ID
		if !c.take(cn, ev) {
			h.t.Fatalf("%s ended the connection (%d protocol errors)", s, c.errs)
		}
	}
	return cn
}

// A client that skips an event Redis lost without being told (no reset
// into the new lineage) has a silent gap; one reset into the new lineage
// is owed nothing of what was lost, though everything Redis kept, and one
// that starts in the new lineage was never owed it.
func TestCheckCountsSilentGaps(t *testing.T) {
	h := newHistory(t)
	h.publish(0, 0, 0, 0) // events 1 to 4, broadcasts
	h.loss(1, 2)          // a failover to a replica that had 1 and 2
	h.publish(0, 2)       // 5 and 6, in the new lineage "e2"

	// The planted bug: the hub carries on in the new epoch without a
	// reset.
	c := h.client()
	h.feed(c, "pos e1-0", "e1-1", "e1-2", "e2-5", "e2-6")
	if c.silent != 2 || c.lost != 0 || c.errs != 0 {
		t.Fatalf("skipping 3 and 4 without a reset: silent %d lost %d errs %d, want 2, 0, 0", c.silent, c.lost, c.errs)
	}

	// The same, and it also skips 2, which Redis kept: lost, not silent.
	c = h.client()
	h.feed(c, "pos e1-0", "e1-1", "e2-5")
	if c.silent != 2 || c.lost != 1 {
		t.Fatalf("skipping 2 to 4: silent %d lost %d, want 2, 1", c.silent, c.lost)
	}

	// Told: its stream ends, it resumes with an id of the old epoch and is
	// reset into the new lineage, at the event the new one goes on from
	// (2), below what it had received (4): nothing is owed, nothing
	// repeated.
	c = h.client()
	h.feed(c, "pos e1-0", "e1-1", "e1-2", "e1-3", "e1-4")
	h.feed(c, "reset epoch", "pos e2-2", "e2-5", "e2-6")
	if c.silent != 0 || c.lost != 0 || c.dups != 0 || c.spurious != 0 || c.lossResets != 1 || c.errs != 0 {
		t.Fatalf("reset into the new lineage: silent %d lost %d dups %d spurious %d loss resets %d errs %d, want 0, 0, 0, 0, 1, 0",
			c.silent, c.lost, c.dups, c.spurious, c.lossResets, c.errs)
	}

	// Reset, then the events of the new epoch before the position marker
	// (a replay from the epoch's start): the reset told it; what Redis
	// kept after the marker is still owed.
	c = h.client()
	h.feed(c, "pos e1-0", "e1-1")
	h.feed(c, "reset epoch", "e2-2", "e2-5", "pos e2-5")
	c.finish(6)
	if c.silent != 0 || c.lost != 1 || c.errs != 0 {
		t.Fatalf("reset, replay of the new epoch, then nothing: silent %d lost %d errs %d, want 0, 1 (event 6), 0", c.silent, c.lost, c.errs)
	}

	// A fresh start in the new lineage was never owed what was lost.
	c = h.client()
	h.feed(c, "pos e2-2", "e2-5", "e2-6")
	if c.silent != 0 || c.lost != 0 {
		t.Fatalf("fresh start in the new lineage: silent %d lost %d, want 0, 0", c.silent, c.lost)
	}

	// Never told, and never receiving anything again: the end counts it.
	c = h.client()
	h.feed(c, "pos e1-0", "e1-1", "e1-2")
	c.finish(6)
	if c.silent != 2 || c.lost != 2 {
		t.Fatalf("stuck at 2 until the end: silent %d lost %d, want 2 (3, 4), 2 (5, 6)", c.silent, c.lost)
	}
}

// A reset "epoch" is due only when its resume point's epoch was seen
// before a data loss; any reset from such a point is due; a data loss
// recorded after the dial makes it ambiguous.
func TestCheckJudgesEpochResets(t *testing.T) {
	h := newHistory(t)
	h.publish(0, 0, 0)
	judge := func(c *client, cn *session, why string) (spurious, due, ambiguous bool) {
		c.judgeReset(cn, why)
		return c.spurious == 1, c.lossResets == 1, c.ambiguous == 1
	}

	// The planted bug: an epoch reset with nothing lost, though an
	// "expired" would be due (event 2 left a history of 1).
	h.r.history = 1
	c := h.client()
	h.feed(c, "pos e1-0", "e1-1")
	if s, _, _ := judge(c, c.dial(), "expired"); s {
		t.Fatal("an expired reset after an eviction is spurious")
	}
	c = h.client()
	h.feed(c, "pos e1-0", "e1-1")
	if s, _, _ := judge(c, c.dial(), "epoch"); !s {
		t.Fatal("an epoch reset with nothing lost is not spurious")
	}
	h.r.history = 100

	cBefore := h.client()
	h.feed(cBefore, "pos e1-0", "e1-1", "e1-2")
	cnBefore := cBefore.dial() // dialled before the loss
	h.loss(1, 2, 3)            // lost nothing that was published, but the epoch
	h.publish(0, 0)            // 4 and 5, in "e2"

	c = h.client()
	h.feed(c, "pos e1-0", "e1-1", "e1-2")
	if s, d, _ := judge(c, c.dial(), "epoch"); s || !d {
		t.Fatal("an epoch reset from before a data loss is not due")
	}
	c = h.client()
	h.feed(c, "pos e1-0", "e1-1", "e1-2", "e1-3")
	if s, d, _ := judge(c, c.dial(), "unknown"); s || !d {
		t.Fatal("an unknown reset from before a data loss (nothing evicted) is not due")
	}
	if s, d, a := judge(cBefore, cnBefore, "epoch"); s || d || !a {
		t.Fatal("an epoch reset of a connection dialled before the loss is not ambiguous")
	}
	c = h.client()
	h.feed(c, "pos e2-3", "e2-4")
	if s, _, _ := judge(c, c.dial(), "epoch"); !s {
		t.Fatal("an epoch reset from the new lineage, with nothing lost since, is not spurious")
	}
}

// Redis positions the ledger never learned are placed: a follower's new
// epoch goes on from an entry of the old one, and "<epoch>-0-0" of an
// epoch first seen after a data loss stands after everything before it.
func TestLedgerPlacesPositions(t *testing.T) {
	l := newLedger(1)
	if g, ok := l.g("aaaaaaaa-0-0"); !ok || g != 0 {
		t.Fatalf("the first epoch's 0-0: %d, %v", g, ok)
	}
	for g := 1; g <= 3; g++ {
		l.add(0)
		l.settle(g, true, "")
		l.learn("aaaaaaaa-100-"+strconv.Itoa(g), g)
	}
	l.recordLoss("flushall", 1, nil)
	if g, ok := l.g("bbbbbbbb-100-2"); !ok || g != 2 {
		t.Fatalf("an entry of the old epoch in the new one: %d, %v", g, ok)
	}
	if g, ok := l.g("cccccccc-0-0"); !ok || g != 3 {
		t.Fatalf("0-0 of an epoch born after the loss: %d, %v, want 3", g, ok)
	}
	if _, ok := l.g("cccccccc-100-9"); ok {
		t.Fatal("an id nobody learned was placed")
	}
}
