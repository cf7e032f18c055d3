package main

import (
	"strconv"
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
		c.judgeReset(tt.resume, 0, "expired")
		if got := c.spurious == 1; got != tt.spurious {
			t.Fatalf("reset from %d: spurious %v, want %v", tt.resume, got, tt.spurious)
		}
	}
}
