package sse

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file checks Last-Event-ID resume against an exact model, over many
// random rounds: the rule a reconnect follows, clause by clause.
//
// Positions are the in-memory broker's "<epoch>-<sequence>", the sequence
// counting every event of every audience from 1. With Config{History: N}
// (and events far too small for HistoryBytes to matter), once the hub has
// published sequence S every event with sequence <= S-N has been evicted.
// A stream is entitled to an event for one of its audiences: broadcasts,
// its topics (fixed at connect), its client ID. A client that reconnects
// with Last-Event-ID L must
//
//   - exact: receive exactly the entitled events after L that it missed, in
//     order, without a duplicate and without a reset, then live events; or
//   - reset: receive one ResetEvent first, which it may ONLY when an
//     entitled event after L had been evicted when it reconnected, and
//     MUST then (never a silent gap).
//
// A fresh or reset stream's start sets the client's resume point to the
// hub's position (a PositionEvent, an id-only block, or the reset's own
// id: whatever the Decoder reports as the last event ID), and a resume
// point never passes an entitled event the client did not receive.

var (
	propSeedFlag   = flag.Uint64("sse.propseed", 0, "seed of TestResumeProperty (0: random; env SSE_PROPSEED also works)")
	propRoundsFlag = flag.Int("sse.proprounds", 0, "rounds of TestResumeProperty (0: 200, 40 with -short)")
)

// propSeed returns the seed to run with: the flag's, the environment's, or
// a random one.
func propSeed(t *testing.T) uint64 {
	if *propSeedFlag != 0 {
		return *propSeedFlag
	}
	if s := os.Getenv("SSE_PROPSEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SSE_PROPSEED=%q: %v", s, err)
		}
		return seed
	}
	return rand.Uint64()
}

// propAudience is whom a model event is for.
type propAudience struct {
	kind TargetKind // ToEveryone, ToTopic or ToClient
	name string
}

func (a propAudience) String() string {
	switch a.kind {
	case ToEveryone:
		return "broadcast"
	case ToTopic:
		return "topic:" + a.name
	}
	return "send:" + a.name
}

// The ways the model expects a stream to start.
const (
	propFresh = iota // no Last-Event-ID
	propExact        // resumes exactly
	propReset        // must be reset
)

var propStartNames = [...]string{"fresh", "exact", "reset"}

// propClient is one client of the model, connected (c != nil) or away.
type propClient struct {
	name   string
	topics map[string]bool
	url    string
	c      *testClient

	// got is the client's resume point as a sequence number: every event
	// it is entitled to up to got it has received, or forfeited by a reset.
	got    uint64
	lastID string // the Last-Event-ID it reconnects with ("" for none)

	// The current stream's start, as the model expects it.
	start    int
	round    int      // when it connected
	sentID   string   // the Last-Event-ID it connected with
	regPos   uint64   // the hub's position when it connected
	missed   []uint64 // entitled events after sentID, up to regPos
	evicted  uint64   // the newest sequence evicted when it connected
	seen     bool     // an event of this stream has been read
	sawReset bool
	prevType string // the type of the stream's last event
	apps     int    // application events the stream delivered
}

// propRun is the model and the counters of one run.
type propRun struct {
	t       *testing.T
	h       *Hub
	r       *rand.Rand
	history int
	round   int
	epoch   string

	events  []propAudience // events[seq-1]
	clients []*propClient

	// Counters.
	resumes, fresh              int // reconnects with and without a Last-Event-ID
	wantExact, wantReset        int // what the model expected of the resumes
	beyond, exactBeyond         int // resumes whose Last-Event-ID had left history; of them, exact
	quietBeyond                 int // of those, resumes that had missed nothing at all
	obsExact, obsReset          int // resumes as observed on the wire
	resetEvicted, resetInHist   int // observed resets whose oldest missed event was evicted / was not
	resetNothing                int // of resetInHist, resets of a client that had missed nothing
	checked, markers, fences    int
	startPoints                 int // streams left with the resume point their start set (marker or reset id)
	waitTimeouts                int // expected resets that never came
	violations                  map[string]int
	prevReplays, prevResets     uint64
	prevObsExact, prevObsResets int
}

// violate records a broken clause; the first few of each are reported in
// full, all are counted.
func (p *propRun) violate(clause, format string, args ...any) {
	p.t.Helper()
	p.violations[clause]++
	if n := p.violations[clause]; n <= 4 {
		p.t.Errorf("[%s] round %d: %s", clause, p.round, fmt.Sprintf(format, args...))
	} else if n == 5 {
		p.t.Errorf("[%s] more violations of this clause are only counted", clause)
	}
}

func (p *propRun) seq() uint64 { return uint64(len(p.events)) }

// evictedThrough returns the newest sequence the history has evicted.
func (p *propRun) evictedThrough() uint64 {
	if s := p.seq(); s > uint64(p.history) {
		return s - uint64(p.history)
	}
	return 0
}

func (p *propRun) entitled(pc *propClient, seq uint64) bool {
	a := p.events[seq-1]
	switch a.kind {
	case ToEveryone:
		return true
	case ToTopic:
		return pc.topics[a.name]
	}
	return a.name == pc.name
}

// entitledIn returns the events in (after, upto] that pc is entitled to.
func (p *propRun) entitledIn(pc *propClient, after, upto uint64) []uint64 {
	var out []uint64
	for s := after + 1; s <= upto; s++ {
		if p.entitled(pc, s) {
			out = append(out, s)
		}
	}
	return out
}

// next returns the first event after after that pc is entitled to.
func (p *propRun) next(pc *propClient, after uint64) (uint64, bool) {
	for s := after + 1; s <= p.seq(); s++ {
		if p.entitled(pc, s) {
			return s, true
		}
	}
	return 0, false
}

// lastFor returns the newest event after after that pc is entitled to.
func (p *propRun) lastFor(pc *propClient, after uint64) (uint64, bool) {
	for s := p.seq(); s > after; s-- {
		if p.entitled(pc, s) {
			return s, true
		}
	}
	return 0, false
}

func propData(seq uint64, a propAudience) string { return fmt.Sprintf("%d %s", seq, a) }

// short prints a list of sequences, cut if long.
func propShort(seqs []uint64) string {
	if len(seqs) > 16 {
		return fmt.Sprintf("%v…(%d in all, last %d)", seqs[:16], len(seqs), seqs[len(seqs)-1])
	}
	return fmt.Sprint(seqs)
}

// parse reads a position of the hub, learning its epoch from the first.
func (p *propRun) parse(id string) (uint64, bool) {
	i := strings.LastIndexByte(id, '-')
	if i <= 0 {
		return 0, false
	}
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil {
		return 0, false
	}
	if p.epoch == "" {
		p.epoch = id[:i]
	}
	return seq, id[:i] == p.epoch
}

// publish publishes one event for a, and checks that it was queued to the
// streams of the connected clients entitled to it.
func (p *propRun) publish(a propAudience) uint64 {
	p.t.Helper()
	seq := p.seq() + 1
	p.events = append(p.events, a)
	ev := Event{Data: []byte(propData(seq, a))}
	var n int
	var err error
	switch a.kind {
	case ToEveryone:
		n, err = p.h.Broadcast(ev)
	case ToTopic:
		n, err = p.h.Publish(a.name, ev)
	default:
		n, err = p.h.Send(a.name, ev)
	}
	if err != nil {
		p.t.Fatalf("round %d: publishing %s: %v", p.round, a, err)
	}
	want := 0
	for _, pc := range p.clients {
		if pc.c != nil && p.entitled(pc, seq) {
			want++
		}
	}
	if n != want {
		p.violate("delivery", "event %d (%s) was queued to %d streams, want %d", seq, a, n, want)
	}
	return seq
}

// batch publishes a random batch of up to most events, in a mix drawn for
// the batch: some batches are mostly for nobody, so that clients stay quiet
// while history moves on.
func (p *propRun) batch(most int, topics []string) {
	if most <= 0 {
		return
	}
	r := p.r
	wb, wt, ws, wn := r.IntN(3), r.IntN(10), r.IntN(10), r.IntN(12)
	if wb+wt+ws+wn == 0 {
		wn = 1
	}
	hot := slices.Clone(topics)
	r.Shuffle(len(hot), func(i, j int) { hot[i], hot[j] = hot[j], hot[i] })
	hot = hot[:1+r.IntN(len(hot))]
	for range r.IntN(most + 1) {
		switch x := r.IntN(wb + wt + ws + wn); {
		case x < wb:
			p.publish(propAudience{kind: ToEveryone})
		case x < wb+wt:
			p.publish(propAudience{kind: ToTopic, name: hot[r.IntN(len(hot))]})
		case x < wb+wt+ws:
			p.publish(propAudience{kind: ToClient, name: p.clients[r.IntN(len(p.clients))].name})
		case r.IntN(2) == 0:
			p.publish(propAudience{kind: ToTopic, name: "nobody"})
		default:
			p.publish(propAudience{kind: ToClient, name: "ghost"})
		}
	}
}

// describe says how a client's stream started, for failure messages.
func (p *propRun) describe(pc *propClient) string {
	s := fmt.Sprintf("client %s (stream of round %d, %s start", pc.name, pc.round, propStartNames[pc.start])
	if pc.start != propFresh {
		s += fmt.Sprintf(", Last-Event-ID %q, hub at %d, evicted through %d, missed %s",
			pc.sentID, pc.regPos, pc.evicted, propShort(pc.missed))
	}
	return s + ")"
}

// observe checks one event a client read against the model.
func (p *propRun) observe(pc *propClient, ev Event) {
	p.t.Helper()
	first := !pc.seen
	pc.seen = true
	prev := pc.prevType
	pc.prevType = ev.Type
	switch ev.Type {
	case ResetEvent:
		if pc.start == propFresh || !first {
			p.violate("reset-first", "%s: a reset (%q) that is not the first event of a resumed stream (after %d application events)", p.describe(pc), ev.Data, pc.apps)
		}
		if first && pc.start != propFresh {
			p.obsReset++
			if len(pc.missed) > 0 && pc.missed[0] <= pc.evicted {
				p.resetEvicted++
			} else {
				p.resetInHist++
				if len(pc.missed) == 0 {
					p.resetNothing++
				}
			}
		}
		if pc.start == propExact && first {
			what := "it missed nothing"
			if len(pc.missed) > 0 {
				what = fmt.Sprintf("its oldest missed event %d is still in history", pc.missed[0])
			}
			p.violate("reset-only-if-evicted", "%s: got a reset (%q), but %s", p.describe(pc), ev.Data, what)
		}
		if pc.start == propReset && first && string(ev.Data) != "expired" {
			p.violate("reset-reason", "%s: reset %q, want \"expired\"", p.describe(pc), ev.Data)
		}
		if ev.ID != pc.sentID { // else a position marker must follow (see leave)
			if s, ok := p.parse(ev.ID); !ok || s != pc.regPos {
				p.violate("marker", "%s: the reset carries id %q, want the hub's position %d", p.describe(pc), ev.ID, pc.regPos)
			}
		}
		pc.sawReset = true
		pc.got = max(pc.got, pc.regPos) // what it was entitled to up to the reset is forfeited
		return
	case PositionEvent:
		p.markers++
		if first && pc.start == propExact {
			p.obsExact++
		}
		if !(first && pc.start == propFresh) && prev != ResetEvent {
			p.violate("marker", "%s: a position marker %q that does not start a fresh stream or follow a reset", p.describe(pc), ev.ID)
		}
		s, ok := p.parse(ev.ID)
		if !ok || s != pc.regPos || len(ev.Data) != 0 {
			p.violate("marker", "%s: position marker id %q data %q, want the hub's position %d and no data", p.describe(pc), ev.ID, ev.Data, pc.regPos)
		}
		if ok {
			// The client's resume point moves there: it must not pass an
			// entitled event it has not received.
			if want, more := p.next(pc, pc.got); more && s >= want {
				p.violate("resume-point", "%s: a position marker %q passes event %d, which the client is entitled to and has not received", p.describe(pc), ev.ID, want)
			}
			pc.got = max(pc.got, s)
		}
		return
	}
	p.checked++
	pc.apps++
	if first && pc.start != propFresh {
		p.obsExact++
	}
	q, ok := p.parse(ev.ID)
	if !ok || q == 0 || q > p.seq() {
		p.violate("id", "%s: an event with id %q data %q, not a position of this hub's events", p.describe(pc), ev.ID, ev.Data)
		return
	}
	if want := propData(q, p.events[q-1]); string(ev.Data) != want || ev.Type != "" {
		p.violate("id", "%s: event %q has type %q data %q, want data %q", p.describe(pc), ev.ID, ev.Type, ev.Data, want)
	}
	if pc.start == propReset && !pc.sawReset {
		p.violate("must-reset", "%s: its first event is %d (%s), not a reset: the evicted events %s are a silent gap",
			p.describe(pc), q, p.events[q-1], propShort(slices.DeleteFunc(slices.Clone(pc.missed), func(s uint64) bool { return s > pc.evicted })))
		pc.sawReset = true // once per stream; resynchronize on what came
		pc.got = max(pc.got, q)
		return
	}
	want, more := p.next(pc, pc.got)
	switch {
	case q <= pc.got:
		p.violate("exact", "%s: got event %d again or out of order, after %d", p.describe(pc), q, pc.got)
	case !p.entitled(pc, q):
		p.violate("exact", "%s: got event %d (%s), which it is not entitled to; want %d", p.describe(pc), q, p.events[q-1], want)
	case !more || q != want:
		p.violate("exact", "%s: got event %d after %d, skipping %s", p.describe(pc), q, pc.got, propShort(p.entitledIn(pc, pc.got, q-1)))
	}
	pc.got = max(pc.got, q)
}

// readTo reads pc's stream until its resume point reaches target.
func (p *propRun) readTo(pc *propClient, target uint64) {
	p.t.Helper()
	giveUp := time.NewTimer(testTimeout)
	defer giveUp.Stop()
	for pc.got < target {
		select {
		case ev, ok := <-pc.c.events:
			if !ok {
				p.t.Fatalf("round %d: %s: the stream ended (%v) while the client waited for event %d, at %d",
					p.round, p.describe(pc), <-pc.c.errc, target, pc.got)
			}
			p.observe(pc, ev)
		case <-giveUp.C:
			p.t.Fatalf("round %d: %s: event %d did not come within %v; the client is at %d",
				p.round, p.describe(pc), target, testTimeout, pc.got)
		}
	}
}

// sync brings every connected client's reading up to the hub's position,
// and makes sure every resumed stream's start has been seen: either by a
// broadcast fence, or by waiting for each client's newest entitled event,
// with a Send as a fence for a client whose new stream has nothing to read
// yet (a fence for everyone would keep every client's resume point
// recent). Some fresh streams are left unread, and some resets are waited
// for without a fence, so that clients also leave with nothing but the
// resume point their start set.
func (p *propRun) sync(broadcast bool) {
	p.t.Helper()
	if broadcast {
		p.publish(propAudience{kind: ToEveryone})
		p.fences++
	} else {
		for _, pc := range p.clients {
			if pc.c == nil || pc.seen {
				continue
			}
			base := pc.got
			if pc.start == propReset {
				base = pc.regPos
			}
			if _, ok := p.lastFor(pc, base); ok {
				continue
			}
			switch {
			case pc.start == propFresh && p.r.IntN(2) == 0:
				continue // nothing to check before it leaves but its resume point
			case pc.start == propReset && p.waitTimeouts < 2 && p.r.IntN(2) == 0 && p.awaitReset(pc):
				continue
			}
			p.publish(propAudience{kind: ToClient, name: pc.name})
			p.fences++
		}
	}
	for _, pc := range p.clients {
		if pc.c == nil {
			continue
		}
		base := pc.got
		if pc.start == propReset && !pc.sawReset {
			base = pc.regPos
		}
		if last, ok := p.lastFor(pc, base); ok {
			p.readTo(pc, last)
		}
		if !pc.seen && pc.start != propFresh {
			p.t.Fatalf("round %d: %s: nothing read from the stream after the fence", p.round, p.describe(pc))
		}
	}
	// Every start has been seen: the hub's counters must say the same.
	st := p.h.Stats()
	dr, ds := st.Replays-p.prevReplays, st.Resets-p.prevResets
	do, dx := p.obsExact-p.prevObsExact, p.obsReset-p.prevObsResets
	if dr != uint64(do) || ds != uint64(dx) {
		p.violate("stats", "Stats counted %d replays and %d resets since the last round; the streams showed %d exact resumes and %d resets", dr, ds, do, dx)
	}
	p.prevReplays, p.prevResets, p.prevObsExact, p.prevObsResets = st.Replays, st.Resets, p.obsExact, p.obsReset
	if st.Published != p.seq() {
		p.t.Fatalf("round %d: Stats.Published %d, the model published %d", p.round, st.Published, p.seq())
	}
}

// awaitReset reads the first event of a stream that must start with a
// reset and has nothing else to read, without a fence. It reports false if
// none came in a while: a hub that resumed instead sends nothing.
func (p *propRun) awaitReset(pc *propClient) bool {
	p.t.Helper()
	giveUp := time.NewTimer(testTimeout / 4)
	defer giveUp.Stop()
	select {
	case ev, ok := <-pc.c.events:
		if !ok {
			p.t.Fatalf("round %d: %s: the stream ended (%v) before its reset", p.round, p.describe(pc), <-pc.c.errc)
		}
		p.observe(pc, ev)
		return true
	case <-giveUp.C:
		p.waitTimeouts++
		p.violate("must-reset", "%s: no reset came within %v: the evicted events are a silent gap", p.describe(pc), testTimeout/4)
		return false
	}
}

// leave ends pc's stream, from the client's side or with Hub.Disconnect,
// and checks the resume point its Decoder ends with.
func (p *propRun) leave(pc *propClient, byHub bool) {
	p.t.Helper()
	if pc.apps == 0 && pc.start != propExact {
		// Nothing but its start sets the client's resume point, and a
		// client that closes may do so before the start has reached it:
		// the hub ends the stream after writing what it has, start
		// included.
		byHub = true
	}
	var rest []Event
	var last string
	if byHub {
		if n := p.h.Disconnect(pc.name); n != 1 {
			p.t.Fatalf("round %d: Disconnect(%s) ended %d streams, want 1", p.round, pc.name, n)
		}
		rest, _ = pc.c.drain()
		last = pc.c.dec.LastEventID() // the decoder has returned: no race
		pc.c.close()
	} else {
		last, rest = pc.c.stopDrain()
	}
	for _, ev := range rest {
		p.observe(pc, ev)
	}
	pc.c = nil
	how := map[bool]string{true: "Hub.Disconnect", false: "the client closing"}[byHub]
	if last == "" {
		p.violate("marker", "%s, ended by %s: the client has no resume point (no event, no start marker)", p.describe(pc), how)
		pc.lastID = ""
		return
	}
	l, ok := p.parse(last)
	switch {
	case !ok || l > p.seq():
		p.violate("resume-point", "%s, ended by %s: last event ID %q is no position of this hub", p.describe(pc), how, last)
		pc.lastID = ""
		return
	case l < pc.got:
		p.violate("marker", "%s, ended by %s: last event ID %q is behind %d, the start's position or the last event received", p.describe(pc), how, last, pc.got)
	default:
		if want, more := p.next(pc, pc.got); more && l >= want {
			p.violate("resume-point", "%s, ended by %s: last event ID %q passes event %d, which the client is entitled to and did not receive", p.describe(pc), how, last, want)
		}
		if pc.apps == 0 && (pc.start == propFresh || pc.sawReset) && l == pc.regPos {
			p.startPoints++
		}
	}
	pc.got, pc.lastID = l, last
}

// join connects pc, resuming from its last event ID unless fresh.
func (p *propRun) join(pc *propClient, fresh bool) {
	p.t.Helper()
	header := user(pc.name)
	s := p.seq()
	pc.round, pc.regPos, pc.evicted = p.round, s, p.evictedThrough()
	pc.seen, pc.sawReset, pc.prevType, pc.missed, pc.sentID, pc.apps = false, false, "", nil, "", 0
	if fresh || pc.lastID == "" {
		p.fresh++
		pc.start, pc.got = propFresh, s
	} else {
		p.resumes++
		pc.sentID = pc.lastID
		header = withHeader(header, lastEventID(pc.lastID))
		pc.missed = p.entitledIn(pc, pc.got, s)
		gone := pc.evicted > 0 && pc.got <= pc.evicted // the Last-Event-ID's own event has left history
		if gone {
			p.beyond++
		}
		if len(pc.missed) > 0 && pc.missed[0] <= pc.evicted {
			pc.start = propReset
			p.wantReset++
		} else {
			pc.start = propExact
			p.wantExact++
			if gone {
				p.exactBeyond++
				if len(pc.missed) == 0 {
					p.quietBeyond++
				}
			}
		}
	}
	// The request returns once the headers are in: the stream is
	// registered and its start decided, at position s (nothing is
	// published meanwhile). The decoder starts from the Last-Event-ID, as
	// a browser's does.
	c, resp := tryDial(p.t, nil, pc.url, header)
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("round %d: %s: %s", p.round, p.describe(pc), resp.Status)
	}
	c.start(pc.sentID)
	pc.c = c
}

// TestResumeProperty runs rounds of: publish with every connected client
// live and read up to a fence; disconnect a random subset (client side or
// Hub.Disconnect); publish while they are away; reconnect some of them
// with their Last-Event-ID; the next round's reading checks their starts.
func TestResumeProperty(t *testing.T) {
	seed := propSeed(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d: rerun with go test -race -run TestResumeProperty -sse.propseed=%d (or SSE_PROPSEED=%d)", seed, seed, seed)
		}
	})
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	rounds := 200
	if testing.Short() {
		rounds = 40
	}
	if *propRoundsFlag > 0 {
		rounds = *propRoundsFlag
	}
	history := 8 + r.IntN(25)
	const nClients = 8
	topics := []string{"t0", "t1", "t2", "t3", "t4", "t5"}
	h, srv := newTestHub(t, Config{ClientID: headerID, Topics: queryTopics, History: history, Heartbeat: -1})
	p := &propRun{t: t, h: h, r: r, history: history, violations: make(map[string]int)}
	for i := range nClients {
		pc := &propClient{name: fmt.Sprintf("c%d", i), topics: make(map[string]bool)}
		var q []string
		for _, k := range r.Perm(len(topics))[:1+r.IntN(3)] {
			pc.topics[topics[k]] = true
			q = append(q, "topic="+topics[k])
		}
		slices.Sort(q)
		pc.url = srv.URL + "/?" + strings.Join(q, "&")
		p.clients = append(p.clients, pc)
	}
	t.Logf("seed %d, history %d, %d rounds", seed, history, rounds)
	for _, pc := range p.clients {
		p.join(pc, true)
	}
	waitStreams(t, h, nClients)
	start := time.Now()
	for p.round = 1; p.round <= rounds; p.round++ {
		// (1) Everyone connected is live: publish, then read up to a fence.
		p.batch(history, topics)
		p.sync(r.IntN(3) == 0)
		// (2) Some leave.
		connected := 0
		for _, pc := range p.clients {
			if pc.c != nil && r.IntN(100) < 35 {
				p.leave(pc, r.IntN(2) == 0)
			}
			if pc.c != nil {
				connected++
			}
		}
		waitStreams(t, h, connected) // nothing published from here reaches them
		// (3) Publish while they are away.
		p.batch(3*history, topics)
		// (4) Some come back.
		for _, pc := range p.clients {
			if pc.c == nil && r.IntN(100) < 75 {
				p.join(pc, r.IntN(10) == 0)
				connected++
			}
		}
		waitStreams(t, h, connected)
	}
	p.round = rounds + 1
	p.sync(true) // the last reconnects' starts
	st := h.Stats()
	t.Logf("%d rounds in %v: %d events published (%d fences), %d resumes, %d fresh starts",
		rounds, time.Since(start).Round(time.Millisecond), p.seq(), p.fences, p.resumes, p.fresh)
	t.Logf("model: %d exact, %d resets; %d resumes from a Last-Event-ID no longer in history, %d of them exact (%d had missed nothing)",
		p.wantExact, p.wantReset, p.beyond, p.exactBeyond, p.quietBeyond)
	t.Logf("observed: %d exact resumes, %d resets (%d with the oldest missed event evicted, %d with it in history, %d of a client that missed nothing); %d events checked",
		p.obsExact, p.obsReset, p.resetEvicted, p.resetInHist, p.resetNothing, p.checked)
	t.Logf("position markers passed on as events: %d (the test client skips PositionEvents); streams left with only their start's resume point: %d",
		p.markers, p.startPoints)
	t.Logf("Stats: %d replays, %d resets (%+v)", st.Replays, st.Resets, st.ResetsBy)
	if st.Replays != uint64(p.obsExact) || st.Resets != uint64(p.obsReset) || st.ResetsBy.Expired != st.Resets {
		p.violate("stats", "Stats: %d replays, %d resets (%+v); the streams showed %d exact resumes and %d resets, all expired",
			st.Replays, st.Resets, st.ResetsBy, p.obsExact, p.obsReset)
	}
	if p.obsExact+p.obsReset != p.resumes {
		p.violate("stats", "%d resumes, but %d exact and %d resets observed", p.resumes, p.obsExact, p.obsReset)
	}
	// The run must have exercised every branch of the rule.
	if rounds >= 100 && (p.wantReset == 0 || p.exactBeyond == 0 || p.wantExact-p.exactBeyond == 0 || p.startPoints == 0) {
		t.Errorf("the run exercised too little: %d resets, %d exact resumes from beyond history, %d within it, %d start-only resume points",
			p.wantReset, p.exactBeyond, p.wantExact-p.exactBeyond, p.startPoints)
	}
	if len(p.violations) > 0 {
		t.Errorf("violations by clause: %v", p.violations)
	}
}
