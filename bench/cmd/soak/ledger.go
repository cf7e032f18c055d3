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
}

// ledger is the soak's truth: every event the publisher tried to publish,
// in the order it did, and the positions they were given. One publisher
// goroutine appends; every client reads.
type ledger struct {
	mu      sync.RWMutex
	entries []entry
	byAud   [][]int // per audience, the g of each of its events, in order
	settled int     // entries whose Publish returned
	pos     map[string]int
}

func newLedger(audiences int) *ledger {
	return &ledger{byAud: make([][]int, audiences), pos: make(map[string]int)}
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

// learn records a position a client saw on event g.
func (l *ledger) learn(pos string, g int) {
	l.mu.Lock()
	if _, ok := l.pos[pos]; !ok {
		l.pos[pos] = g
	}
	l.mu.Unlock()
}

// g returns the event number a position stands for.
func (l *ledger) g(pos string) (int, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	g, ok := l.pos[pos]
	return g, ok
}

// published returns how many events have been settled.
func (l *ledger) published() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.settled
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
// (exclusive both): what a client that jumps from from to to lost.
func (l *ledger) missed(a audience, from, to int) int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	n := 0
	list := l.byAud[a]
	for s := from + 1; s < to && s <= len(list); s++ {
		if l.entries[list[s-1]-1].state != uncertain {
			n++
		}
	}
	return n
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
