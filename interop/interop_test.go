package interop

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssehub/sse"
)

// TestInterop runs every scenario against every client: the clients in
// parallel, each client's scenarios one after the other, each scenario on
// a hub of its own. It logs a table of the outcomes, and writes it to
// RESULTS.md when UPDATE_RESULTS is set.
//
// The scenarios state what the hub promises:
//   - quiet-resume: a client whose topics were quiet while it was away
//     resumes exactly even though history moved far past its position.
//   - fresh-drop: a client that received nothing but the start of its
//     stream resumes exactly (the start told it its position).
//   - idle: heartbeats hand nothing to the application; at connect a
//     single-handler client sees at most one "sse-position" event and an
//     EventSource-style client nothing.
//   - real-loss: when an event the client may receive was evicted, the
//     client gets exactly one "sse-reset", then live events.
//   - blocks: not the hub, a handcrafted stream: what the client does with
//     a retry-only block, comments, an id-only block and a named event
//     with empty data (RESULTS.md's paragraphs).
func TestInterop(t *testing.T) {
	res := &results{cells: map[string]map[string]string{}, versions: map[string]string{}, probes: map[string]probeReport{}}
	t.Cleanup(func() { // after every parallel subtest
		md := res.markdown()
		t.Log("\n" + md)
		if os.Getenv("UPDATE_RESULTS") != "" {
			if err := os.WriteFile("RESULTS.md", []byte(md), 0o644); err != nil {
				t.Errorf("writing RESULTS.md: %v", err)
			}
		}
	})
	for _, c := range clients() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			open, version := c.prepare(t)
			if version == "" {
				version = c.version
			}
			res.setVersion(c.name, version)
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					s := newTestServer(t)
					r := &run{t: t, s: s, c: c, open: open, id: c.name + "-" + sc.name, res: res}
					defer r.finish(sc.name)
					sc.fn(r)
				})
			}
		})
	}
}

// scenarios are run in this order for each client.
var scenarios = []struct {
	name string
	fn   func(*run)
}{
	{"quiet-resume", quietResume},
	{"fresh-drop", freshDrop},
	{"idle", idle},
	{"real-loss", realLoss},
	{"blocks", blocks},
}

// run is one scenario for one client.
type run struct {
	t    *testing.T
	s    *testServer
	c    client
	open func(*testing.T, *testServer, string) *recorder
	id   string // the client ID of its stream
	rec  *recorder
	res  *results
	cell string   // what goes in the results table
	errs []string // the scenario's failed assertions, for RESULTS.md
}

// errorf fails the scenario, like t.Errorf, and keeps the message for
// RESULTS.md.
func (r *run) errorf(format string, args ...any) {
	r.t.Helper()
	msg := fmt.Sprintf(format, args...)
	r.errs = append(r.errs, msg)
	r.t.Error(msg)
}

// connect opens the client on the hub's stream with these topics and
// waits until its stream is registered.
func (r *run) connect(topics ...string) {
	r.t.Helper()
	r.rec = r.open(r.t, r.s, r.s.streamURL(r.id, topics...))
	r.s.waitConnected(r.id, 1)
}

// finish records the scenario's outcome in the table.
func (r *run) finish(scenario string) {
	cell := r.cell
	if r.t.Failed() {
		cell = "**FAIL**: " + cell
	} else if r.t.Skipped() {
		cell = "skipped"
	}
	r.res.set(r.c.name, scenario, cell)
	for _, e := range r.errs {
		r.res.addFailure(r.c.name+"/"+scenario, e)
	}
}

// app returns the events the client handed to the application.
func app(recs []record) []record {
	var out []record
	for _, x := range recs {
		if x.isEvent() {
			out = append(out, x)
		}
	}
	return out
}

// ours returns, in order, the data of the events the test published that
// the client handed over.
func (r *run) ours(recs []record) []string {
	var out []string
	for _, x := range app(recs) {
		if r.s.isPublished(x.Data) {
			out = append(out, x.Data)
		}
	}
	return out
}

// others returns the events the client handed over that the test did not
// publish.
func (r *run) others(recs []record) []record {
	var out []record
	for _, x := range app(recs) {
		if !r.s.isPublished(x.Data) {
			out = append(out, x)
		}
	}
	return out
}

// resets returns the sse-reset events among recs.
func resets(recs []record) []record {
	var out []record
	for _, x := range app(recs) {
		if x.Type == sse.ResetEvent {
			out = append(out, x)
		}
	}
	return out
}

// sees waits up to timeout for an event with this data and reports
// whether it came.
func (r *run) sees(data string, timeout time.Duration) bool {
	return r.rec.waitFor(timeout, func(recs []record) bool {
		return slices.ContainsFunc(recs, func(x record) bool { return x.isEvent() && x.Data == data })
	})
}

// mustSee is sees, failing the test if the event does not come.
func (r *run) mustSee(data string) {
	r.t.Helper()
	if !r.sees(data, 10*time.Second) {
		r.t.Fatalf("the client did not hand over %q within 10 s; it reported: %v", data, r.rec.all())
	}
}

// since returns the records from index i on.
func (r *run) since(i int) []record { return r.rec.all()[i:] }

// quietResume: the client's topic is quiet while it is away and history
// moves 10×History past its position; it must get exactly the two quiet
// events, no reset, then a live one.
func quietResume(r *run) {
	s := r.s
	r.connect("quiet", "other")
	s.publish("quiet", "quiet-0")
	r.mustSee("quiet-0")
	mark := r.rec.len()
	lastID := s.dropAndHold(r.id)
	s.publishN("busy", "busy", 10*history)
	s.publish("quiet", "quiet-1")
	s.publish("quiet", "quiet-2")
	s.release()
	info := s.waitConnected(r.id, 2)
	r.rec.waitFor(5*time.Second, func(recs []record) bool {
		recs = recs[mark:]
		return slices.Contains(r.ours(recs), "quiet-2") || len(resets(recs)) > 0
	})
	s.publish("quiet", "quiet-3")
	live := r.sees("quiet-3", 5*time.Second)
	got, rs := r.ours(r.since(mark)), resets(r.rec.all())
	r.cell = fmt.Sprintf("resumed from %s as %s; got %s", shownID(lastID), info.Start, strings.Join(got, ", "))
	if len(rs) > 0 {
		r.cell += fmt.Sprintf("; %d sse-reset (%s)", len(rs), rs[0].Data)
	}
	r.cell += r.extras(mark)
	if want := []string{"quiet-1", "quiet-2", "quiet-3"}; !slices.Equal(got, want) {
		r.errorf("after the drop the client handed over %q, want exactly %q (reconnect with Last-Event-ID %s, stream start %s)",
			got, want, shownID(lastID), info.Start)
	}
	if len(rs) > 0 {
		r.errorf("the client got %d sse-reset event(s) (%v), want none: nothing of its topics was evicted", len(rs), rs)
	}
	r.checkNoExtras(mark, false)
	if !live {
		r.errorf("the live event quiet-3 did not arrive within 5 s")
	}
	if st := s.hub.Stats(); st.Resets != 0 || st.Replays != 1 {
		r.errorf("hub stats: Resets %d, Replays %d; want 0 and 1", st.Resets, st.Replays)
	}
}

// freshDrop: a client that got nothing but the start of its stream is
// dropped; what was published to it while away must all arrive, in order.
func freshDrop(r *run) {
	s := r.s
	s.publish("busy", "before") // so that the hub has a position to give
	r.connect("fresh")
	// Every other client hands the start's sse-position to the test, to a
	// listener or to its one handler: wait for it rather than for a time,
	// so it is neither counted as extra nor missed by the drop. One that
	// keeps it to itself cannot count it as extra: once the hub has
	// written it, the client reads it before the drop's end of stream.
	if r.c.hidesPosition {
		s.waitUntil(5*time.Second, "the start of the stream to be written", func() bool {
			return slices.ContainsFunc(s.wire, func(c wireChunk) bool {
				return c.ClientID == r.id && strings.Contains(string(c.Bytes), sse.PositionEvent)
			})
		})
	} else if !r.rec.waitFor(5*time.Second, func(recs []record) bool {
		return slices.ContainsFunc(recs, func(x record) bool { return x.Type == "sse-position" })
	}) {
		r.errorf("the client did not report the start's sse-position within 5 s")
	}
	mark := r.rec.len()
	lastID := s.dropAndHold(r.id)
	s.publishN("fresh", "fresh", 3)
	s.send(r.id, "direct")
	s.release()
	info := s.waitConnected(r.id, 2)
	want := []string{"fresh-0", "fresh-1", "fresh-2", "direct"}
	r.rec.waitFor(5*time.Second, func(recs []record) bool {
		return len(r.ours(recs[mark:])) >= len(want) || len(resets(recs[mark:])) > 0
	})
	time.Sleep(100 * time.Millisecond) // anything extra arrives too
	got, rs := r.ours(r.since(mark)), resets(r.rec.all())
	r.cell = fmt.Sprintf("resumed from %s as %s; got %d of 4", shownID(lastID), info.Start, len(got))
	if len(rs) > 0 {
		r.cell += fmt.Sprintf("; %d sse-reset (%s)", len(rs), rs[0].Data)
	}
	r.cell += r.extras(mark)
	if !slices.Equal(got, want) {
		r.errorf("after the drop the client handed over %q, want exactly %q (reconnect with Last-Event-ID %s, stream start %s)",
			got, want, shownID(lastID), info.Start)
	}
	if len(rs) > 0 {
		r.errorf("the client got %d sse-reset event(s) (%v), want none", len(rs), rs)
	}
	r.checkNoExtras(mark, false)
}

// idle: connect and stay idle for 10 heartbeat intervals. Count what
// reached the application's handler that the test did not publish (for
// EventSource-style clients onmessage; for the others their one handler),
// at connect (before the first heartbeat was written) and during
// heartbeats. Named listeners of EventSource-style clients are noted, not
// counted: the page asked for those events.
func idle(r *run) {
	t, s := r.t, r.s
	s.publish("busy", "before") // so that the hub has a position to give
	r.connect("idle")
	time.Sleep(10 * heartbeat)
	wire := s.wireOf(r.id)
	var firstBeat time.Time
	beats := 0
	for _, c := range wire {
		if hasComment(c.Bytes) {
			if beats == 0 {
				firstBeat = c.At
			}
			beats++
		}
	}
	if beats == 0 {
		t.Fatalf("the hub wrote no heartbeat in %v; it wrote %q", 10*heartbeat, chunks(wire))
	}
	var atConnect, during, named []record
	for _, x := range r.others(r.rec.all()) {
		switch {
		case x.Kind == "named":
			named = append(named, x)
		case x.TS < firstBeat.UnixMilli():
			atConnect = append(atConnect, x)
		default:
			during = append(during, x)
		}
	}
	t.Logf("the hub wrote %q before its first heartbeat, then %d heartbeat writes such as %q",
		chunks(before(wire, firstBeat)), beats, heartbeatSample(wire))
	t.Logf("the application's handler got at connect: %v; during heartbeats: %v; named listeners: %v", atConnect, during, named)
	r.cell = fmt.Sprintf("at connect: %s; heartbeats: %s", summarize(atConnect), summarize(during))
	if len(named) > 0 {
		r.cell += fmt.Sprintf("; named listeners: %s", summarize(named))
	}
	if len(during) > 0 {
		r.errorf("heartbeats made the client hand %d event(s) to the application, want none: %v", len(during), during)
	}
	if r.c.single {
		bad := len(atConnect) > 1
		for _, x := range atConnect {
			bad = bad || x.Type != "sse-position"
		}
		if bad {
			hint := ""
			if r.retryBlockAlone() {
				hint = "; its first is the hub's retry field, written as a block of its own (\"retry: ...\\n\\n\"), which this client dispatches"
			}
			r.errorf("at connect the client handed over %v, want at most one event, of type sse-position%s", atConnect, hint)
		}
	} else if len(atConnect) > 0 {
		r.errorf("at connect the client handed %d event(s) to onmessage, want none: %v", len(atConnect), atConnect)
	}
}

// before returns the chunks written before t.
func before(cs []wireChunk, t time.Time) []wireChunk {
	var out []wireChunk
	for _, c := range cs {
		if c.At.Before(t) {
			out = append(out, c)
		}
	}
	return out
}

// realLoss: an event of the client's topic is evicted while it is away;
// it must get exactly one sse-reset, then live events.
func realLoss(r *run) {
	s := r.s
	r.connect("quiet")
	s.publish("quiet", "quiet-0")
	r.mustSee("quiet-0")
	mark := r.rec.len()
	lastID := s.dropAndHold(r.id)
	s.publish("quiet", "quiet-lost")
	s.publishN("busy", "busy", 10*history)
	s.release()
	info := s.waitConnected(r.id, 2)
	r.rec.waitFor(5*time.Second, func(recs []record) bool { return len(resets(recs[mark:])) > 0 })
	s.publish("quiet", "quiet-1")
	live := r.sees("quiet-1", 5*time.Second)
	rs := resets(r.since(mark))
	got := r.ours(r.since(mark))
	r.cell = fmt.Sprintf("resumed from %s as %s; %d sse-reset", shownID(lastID), info.Start, len(rs))
	if len(rs) > 0 {
		r.cell += fmt.Sprintf(" (data %s)", quote(rs[0].Data))
	}
	r.cell += r.extras(mark)
	if len(rs) != 1 {
		r.errorf("the client got %d sse-reset events after the loss, want exactly 1; it handed over: %v", len(rs), app(r.since(mark)))
	} else if rs[0].Data != "expired" {
		r.errorf("the sse-reset's data is %q, want \"expired\"", rs[0].Data)
	}
	if !live {
		r.errorf("the live event quiet-1 did not arrive within 5 s after the reset")
	}
	if want := []string{"quiet-1"}; !slices.Equal(got, want) {
		r.errorf("after the drop the client handed over %q, want %q", got, want)
	}
	r.checkNoExtras(mark, true)
	if st := s.hub.Stats(); st.Resets != 1 {
		r.errorf("hub stats: Resets %d, want 1", st.Resets)
	}
}

// blocks runs the client against probe_test.go's handcrafted stream and
// records what it hands over for each kind of block and which
// Last-Event-ID it sends next.
func blocks(r *run) {
	t, s := r.t, r.s
	r.rec = r.open(t, s, s.probeURL(r.id))
	s.waitUntil(15*time.Second, "the client to make every probe request", func() bool {
		n := 0
		for _, q := range s.requests {
			if q.ClientID == r.id {
				n++
			}
		}
		return n > len(probeRounds)
	})
	time.Sleep(100 * time.Millisecond)
	p := analyseProbe(r.rec.all(), s.requestsOf(r.id))
	r.res.setProbe(r.c.name, p)
	r.cell = "see below"
	t.Logf("retry-only block: %s", describe(p.Retry, r.c.single))
	t.Logf("bare comment lines: %s", describe(p.BareComments, r.c.single))
	t.Logf("comment-only block: %s", describe(p.CommentBlock, r.c.single))
	t.Logf("id-only block: %s", describe(p.IDOnly, r.c.single))
	t.Logf("named empty event: %s", describe(p.Named, r.c.single))
	t.Logf("named empty event with a retry line: %s", describe(p.RetryNamed, r.c.single))
	t.Logf("Last-Event-ID of each reconnect: %q", p.LastIDs)
}

// extraRecords returns what else the client handed over from record i
// on: events the test did not publish, other than sse-reset.
func (r *run) extraRecords(i int) []record {
	var out []record
	for _, x := range r.others(r.since(i)) {
		if x.Type != sse.ResetEvent {
			out = append(out, x)
		}
	}
	return out
}

// extras describes extraRecords for the table.
func (r *run) extras(i int) string {
	out := r.extraRecords(i)
	if len(out) == 0 {
		return ""
	}
	return "; also " + summarize(out)
}

// checkNoExtras fails the test if the client handed over, from record i
// on, anything the test did not publish other than sse-reset and, when
// positionOK, one sse-position. When the cause is visible on the wire (the
// hub's retry field written as a block of its own, which this client
// dispatches as an empty message) the message says so.
func (r *run) checkNoExtras(i int, positionOK bool) {
	r.t.Helper()
	out := r.extraRecords(i)
	var bad []record
	positions := 0
	for _, x := range out {
		if positionOK && x.Type == "sse-position" && positions == 0 {
			positions++
			continue
		}
		bad = append(bad, x)
	}
	if len(bad) == 0 {
		return
	}
	hint := ""
	if r.retryBlockAlone() && slices.ContainsFunc(bad, func(x record) bool { return x.Type == "message" && x.Data == "" }) {
		hint = " (the hub writes its retry field as a block of its own, \"retry: ...\\n\\n\", which this client dispatches as an empty message)"
	}
	r.errorf("the client also handed the application %d event(s) the test did not publish: %v%s", len(bad), bad, hint)
}

// retryBlockAlone says whether the hub started the client's last stream
// with a block holding nothing but the retry field.
func (r *run) retryBlockAlone() bool {
	var last []byte
	for _, c := range r.s.wireOf(r.id) {
		if bytes.HasPrefix(c.Bytes, []byte("retry:")) {
			last = c.Bytes
		}
	}
	if last == nil {
		return false
	}
	block, _, _ := bytes.Cut(last, []byte("\n\n"))
	return !bytes.Contains(block, []byte("\n"))
}

// shownID renders a Last-Event-ID for messages: quoted, or "none".
func shownID(id string) string {
	if id == "" {
		return "none"
	}
	return quote(id)
}

// summarize renders unsolicited events for the table: "0", or their count
// and kinds.
func summarize(recs []record) string {
	if len(recs) == 0 {
		return "0"
	}
	var parts []string
	for _, x := range recs {
		d := "empty data"
		if x.Data != "" {
			d = "data " + quote(x.Data)
		}
		to := ""
		if x.Kind == "named" {
			to = " to its listener"
		}
		parts = append(parts, fmt.Sprintf("%s %s%s", x.Type, d, to))
	}
	return fmt.Sprintf("%d (%s)", len(recs), strings.Join(parts, ", "))
}

// chunks renders wire chunks as strings.
func chunks(cs []wireChunk) []string {
	var out []string
	for _, c := range cs {
		out = append(out, string(c.Bytes))
	}
	return out
}

// heartbeatSample returns the first heartbeat write, as a string.
func heartbeatSample(cs []wireChunk) string {
	for _, c := range cs {
		if hasComment(c.Bytes) {
			return string(c.Bytes)
		}
	}
	return ""
}

// results collects the outcomes of every client's scenarios.
type results struct {
	mu       sync.Mutex
	cells    map[string]map[string]string // client → scenario → cell
	versions map[string]string
	probes   map[string]probeReport
	failures []string // "client/scenario: message"
}

// set records the table cell of one client's scenario.
func (r *results) set(clientName, scenario, cell string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cells[clientName] == nil {
		r.cells[clientName] = map[string]string{}
	}
	r.cells[clientName][scenario] = cell
}

// addFailure records a failed assertion of a client's scenario.
func (r *results) addFailure(name, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, name+": "+msg)
}

// setVersion records the version a client reported or was pinned at.
func (r *results) setVersion(clientName, v string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.versions[clientName] = v
}

// setProbe records what a client did in the blocks scenario.
func (r *results) setProbe(clientName string, p probeReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.probes[clientName] = p
}

// markdown renders the results: a table of the hub scenarios, then what
// each client did with the probe's blocks.
func (r *results) markdown() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	b.WriteString("# Interop results\n\n")
	fmt.Fprintf(&b, "Written by `UPDATE_RESULTS=1 go test -run TestInterop .` in interop/ on %s. ", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	b.WriteString("Hub settings: History 16, Heartbeat 200 ms, Retry 100 ms; HTTP/1.1 on loopback. " +
		"A cell starts with **FAIL** when the scenario's assertions failed; " +
		"\"resumed from\" is the Last-Event-ID of the reconnect, then how the hub started that stream.\n\n")
	b.WriteString("| client | version | a. quiet-resume | b. fresh-drop | c. idle: what the app's handler saw that the test did not publish | d. real-loss |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, c := range clients() {
		cells := r.cells[c.name]
		if cells == nil {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", c.name, r.versions[c.name],
			cell(cells["quiet-resume"]), cell(cells["fresh-drop"]), cell(cells["idle"]), cell(cells["real-loss"]))
	}
	b.WriteString("\nHow each client is driven:\n\n")
	for _, c := range clients() {
		if _, ok := r.cells[c.name]; ok && c.note != "" {
			fmt.Fprintf(&b, "- %s: %s\n", c.name, c.note)
		}
	}
	b.WriteString("\n## What each client does with id-only blocks, comments and named empty events\n\n")
	b.WriteString("Observed on a handcrafted stream (the `blocks` subtest, not the hub), one kind of block per " +
		"connection, each connection then ended by the server: (1) `retry: 100` alone in a block; (2) bare `:` lines " +
		"(the hub's heartbeat) followed by an event, no blank line of their own; (3) `: keep-alive` then a blank line " +
		"(a comment-only block); (4) `id: p-4` alone in a block; (5) `id: p-5`, `event: sse-position`, `data:` (a named " +
		"event with empty data); (6) the same with `retry: 100` as the first line of its block. Rounds 1–3 end with an event of their own (`end-1` …), not counted below. " +
		"\"Last-Event-ID\" lists the header of the requests after rounds 1–6 (`-` for none), which shows whether a " +
		"round moved the client's resume point.\n\n")
	for _, c := range clients() {
		p, ok := r.probes[c.name]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "**%s** (%s). Retry-only block: %s. Bare comment lines: %s. Comment-only block: %s. "+
			"Id-only block: %s; %s. Named empty event: %s; %s. Named empty event with a retry line: %s. "+
			"(Last-Event-ID after rounds 1–6: %s.)",
			c.name, r.versions[c.name], describe(p.Retry, c.single), describe(p.BareComments, c.single),
			describe(p.CommentBlock, c.single), describe(p.IDOnly, c.single), p.moved(3, "p-4"),
			describe(p.Named, c.single), p.moved(4, "p-5"), describe(p.RetryNamed, c.single), strings.Join(p.LastIDs, ", "))
		if !p.Completed {
			b.WriteString(" It did not make every request.")
		}
		b.WriteString("\n\n")
	}
	if len(r.failures) > 0 {
		b.WriteString("## Failed assertions\n\n")
		slices.Sort(r.failures)
		for _, f := range r.failures {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(f, "\n", " "))
		}
	}
	return b.String()
}

// cell escapes a table cell.
func cell(s string) string {
	if s == "" {
		return "not run"
	}
	return strings.ReplaceAll(s, "|", "\\|")
}
