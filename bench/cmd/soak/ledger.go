package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// An audience is an index: 0 is the broadcast, 1..topics the topics, and
// the rest one client ID each.
type audience = int

// Publish outcomes of a ledger entry.
const (
	pending   = iota // Publish has not returned
	certain          // Publish returned nil: the event must reach its audience
	uncertain        // Publish failed: the event may or may not have been kept
)

// entry is one published event. Its global number g is its index plus one.
type entry struct {
	aud   audience
	aseq  int // its number within its audience, from 1
	state uint8
	loss  int // the data loss (1, 2, ...) in which Redis lost it; 0: none did
}

// loss is one fault in which Redis lost data (a FLUSHALL, a failover to a
// replica that missed writes), as the soak recorded it before anyone could
// see it: the entries the stream held before and does not hold after.
type loss struct {
	what string
	at   int // events settled when it happened: every later one is of a new lineage
	gone int // events Redis had kept (Publish returned nil) that it lost
}

// ledger is the soak's truth: every event the publisher tried to publish,
// in the order it did, the positions they were given, and what Redis lost.
// Publishes are serialised (run.pubMu); every client reads.
type ledger struct {
	mu      sync.RWMutex
	entries []entry
	byAud   [][]int // per audience, the g of each of its events, in order
	settled int     // entries whose Publish returned
	pos     map[string]int
	ids     map[string]int // a position's part after its epoch: the newest event it stood for
	losses  []loss
	epochs  map[string]int // each epoch seen: how many losses had been recorded then
}

func newLedger(audiences int) *ledger {
	return &ledger{byAud: make([][]int, audiences), pos: make(map[string]int),
		ids: make(map[string]int), epochs: make(map[string]int)}
}

// splitPos cuts a position at its first '-': the epoch, and the rest (a
// Redis stream id, or the in-memory broker's sequence).
func splitPos(pos string) (epoch, rest string) {
	epoch, rest, _ = strings.Cut(pos, "-")
	return epoch, rest
}

// seeEpoch records when the epoch of pos was first seen. Call with mu held.
func (l *ledger) seeEpoch(pos string) int {
	e, _ := splitPos(pos)
	era, ok := l.epochs[e]
	if !ok {
		era = len(l.losses)
		l.epochs[e] = era
	}
	return era
}

// era returns how many data losses had been recorded when the epoch of pos
// was first seen (recording it now, if it was not): the events Redis lost
// in those are not of pos's lineage.
func (l *ledger) era(pos string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seeEpoch(pos)
}

// recordLoss records a data loss: every event published so far that kept
// does not hold is not of the new lineage (what the stream had trimmed
// too: a client that had not received it is reset, or had a silent gap).
// Those numbered from on that Redis had acknowledged are what Redis lost
// (the figure: what it held, or had acknowledged since, and lost). It
// returns how many those are. Call it with publishes held (run.pubMu),
// before anything can see the loss: the epochs seen afterwards are of the
// new lineage.
func (l *ledger) recordLoss(what string, from int, kept map[int]bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := len(l.losses) + 1
	n := 0
	for g := l.settled; g > 0; g-- {
		e := &l.entries[g-1]
		if kept[g] || e.loss != 0 {
			continue
		}
		e.loss = k
		if g >= from && e.state == certain {
			n++
		}
	}
	l.losses = append(l.losses, loss{what: what, at: l.settled, gone: n})
	return n
}

// lossCount returns how many data losses were recorded.
func (l *ledger) lossCount() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.losses)
}

// lost returns how many acknowledged events Redis lost, in all.
func (l *ledger) lost() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := 0
	for _, x := range l.losses {
		n += x.gone
	}
	return n
}

// add records the event about to be published to a and returns its g and
// its number within a: the data it carries.
func (l *ledger) add(a audience) (g, aseq int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	aseq = len(l.byAud[a]) + 1
	l.entries = append(l.entries, entry{aud: a, aseq: aseq})
	g = len(l.entries)
	l.byAud[a] = append(l.byAud[a], g)
	return g, aseq
}

// settle records how the Publish of g ended, and the position it got.
func (l *ledger) settle(g int, ok bool, pos string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ok {
		l.entries[g-1].state = certain
		if pos != "" {
			l.pos[pos] = g
		}
	} else {
		l.entries[g-1].state = uncertain
	}
	l.settled = g
}

// learn records a position a client or a broker saw on event g.
func (l *ledger) learn(pos string, g int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.pos[pos]; !ok {
		l.pos[pos] = g
	}
	l.seeEpoch(pos)
	_, id := splitPos(pos)
	if g > l.ids[id] {
		l.ids[id] = g
	}
}

// g returns the event number a Redis position stands for. One never
// learned can still be placed: a follower that moves to a new epoch goes
// on from an entry it had (a position of the new epoch with the stream id
// of an entry of the old one: the same event, as Redis kept it), and
// "<epoch>-0-0" stands before an empty stream (the first epoch's, or one
// that a data loss emptied: after every event published before it).
func (l *ledger) g(pos string) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if g, ok := l.pos[pos]; ok {
		return g, true
	}
	era := l.seeEpoch(pos)
	_, id := splitPos(pos)
	if id == "0-0" {
		if era == 0 {
			return 0, true
		}
		return l.losses[era-1].at, true
	}
	g, ok := l.ids[id]
	return g, ok
}

// published returns how many events have been settled.
func (l *ledger) published() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.settled
}

// lastCertain returns the newest event whose Publish returned nil.
func (l *ledger) lastCertain() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for g := l.settled; g > 0; g-- {
		if l.entries[g-1].state == certain {
			return g
		}
	}
	return 0
}

// added returns how many events the publisher started to publish: those
// settled, and the one being published, if any.
func (l *ledger) added() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.entries)
}

// counts returns the certain and uncertain publishes.
func (l *ledger) counts() (ok, failed int) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, e := range l.entries {
		switch e.state {
		case certain:
			ok++
		case uncertain:
			failed++
		}
	}
	return ok, failed
}

// upTo returns how many events of a have a g at or below g.
func (l *ledger) upTo(a audience, g int) int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	list := l.byAud[a]
	return sort.SearchInts(list, g+1)
}

// missed counts the certain events of a numbered after from and before to
// (exclusive both) that a client of lineage era (see ledger.era) skips:
// lost, those Redis kept; silent, those Redis lost in a data loss its
// lineage is from before, so that nothing told the client. Those lost in
// a data loss its lineage is from after were never its to receive.
func (l *ledger) missed(a audience, from, to, era int) (lost, silent int) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	list := l.byAud[a]
	for s := from + 1; s < to && s <= len(list); s++ {
		switch e := l.entries[list[s-1]-1]; {
		case e.state == uncertain:
		case e.loss == 0:
			lost++
		case e.loss > era:
			silent++
		}
	}
	return lost, silent
}

// isUncertain reports whether the Publish of g failed.
func (l *ledger) isUncertain(g int) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.entries[g-1].state == uncertain
}

// firstAfter returns the g of the first event of any of auds after g, or 0
// if there is none. It counts failed publishes too, since Redis may have
// kept them: a reset is judged spurious only when nothing could have been
// evicted.
func (l *ledger) firstAfter(auds []audience, g int) int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	first := 0
	for _, a := range auds {
		list := l.byAud[a]
		if i := sort.SearchInts(list, g+1); i < len(list) && (first == 0 || list[i] < first) {
			first = list[i]
		}
	}
	return first
}

// eventData is the data of event g: its audience, its number within it
// and g.
func eventData(a audience, aseq, g int) []byte {
	return []byte(strconv.Itoa(a) + " " + strconv.Itoa(aseq) + " " + strconv.Itoa(g))
}

// parseData reads eventData.
func parseData(b []byte) (a audience, aseq, g int, err error) {
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return 0, 0, 0, fmt.Errorf("event data %q is not the soak's", b)
	}
	n := [3]int{}
	for i, s := range f {
		if n[i], err = strconv.Atoi(s); err != nil {
			return 0, 0, 0, fmt.Errorf("event data %q: %v", b, err)
		}
	}
	return n[0], n[1], n[2], nil
}
