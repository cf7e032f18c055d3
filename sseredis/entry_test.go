package sseredis

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssehub/sse"
)

var (
	toA   = sse.Target{Kind: sse.ToTopic, Name: "a"}
	toB   = sse.Target{Kind: sse.ToTopic, Name: "b"}
	toC   = sse.Target{Kind: sse.ToTopic, Name: "c"}
	toAll = sse.Target{Kind: sse.ToEveryone}
)

func msg(to sse.Target, id, key, body string) *sse.Message {
	return &sse.Message{To: to, ID: id, Key: key, Body: []byte("data: " + body + "\n\n")}
}

// replayed returns the bodies Replay gives after after up to until for to,
// or the reason it gives none.
func replayed(t *testing.T, b *Broker, after, until string, to ...sse.Target) string {
	t.Helper()
	var got []string
	ok, reason, err := b.Replay(context.Background(), after, until, to, func(m *sse.Message) bool {
		got = append(got, strings.TrimSpace(strings.TrimPrefix(string(m.Body), "data: "))+"@"+m.Pos)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return reason
	}
	return strings.Join(got, " ")
}

func at(ms []*sse.Message, bodies ...int) string {
	var s []string
	for _, i := range bodies {
		s = append(s, strings.TrimSpace(strings.TrimPrefix(string(ms[i].Body), "data: "))+"@"+ms[i].Pos)
	}
	return strings.Join(s, " ")
}

// TestBatchIsOneEntry: a batch is one stream entry, and each of its events
// has a position of its own, consecutive, the last the entry's id. A
// replay may start and end inside an entry, by position or by
// application-set ID, and gives exactly the events in between; a snapshot
// gives a batched event's state at its own position; a follower that reads
// the stream, from inside an entry too, delivers each event once.
func TestBatchIsOneEntry(t *testing.T) {
	r := startRedis(t)
	b, client := brokerOn(t, r, Options{Logger: testLogger(t)})
	ctx := context.Background()
	ms := []*sse.Message{
		msg(toA, "", "", "0"),
		msg(toB, "app-1", "", "1"),
		msg(toA, "", "k", "2"),
		msg(toAll, "app-3", "k2", "3"),
		msg(toA, "", "", "4"),
	}
	if err := b.publishBatch(ctx, 1, ms); err != nil {
		t.Fatal(err)
	}
	if n, _ := client.XLen(ctx, b.stream).Result(); n != 1 {
		t.Fatalf("a batch of 5 made %d entries, want 1", n)
	}
	evs := streamEvents(t, b)
	if len(evs) != 5 {
		t.Fatalf("the entry holds %d events, want 5", len(evs))
	}
	for i, e := range evs {
		if e.m.Pos != ms[i].Pos || !sameMessage(e.m, ms[i]) {
			t.Fatalf("event %d: %+v, published %+v", i, e.m, ms[i])
		}
		if i > 0 && (e.id.ms != evs[0].id.ms || e.id.seq != evs[i-1].id.seq+1) {
			t.Fatalf("event ids %s then %s: not consecutive", evs[i-1].id, e.id)
		}
	}
	entry, _ := client.XRange(ctx, b.stream, "-", "+").Result()
	if entry[0].ID != evs[4].id.String() {
		t.Fatalf("entry id %s, want the last event's, %s", entry[0].ID, evs[4].id)
	}
	epoch, _, _ := parsePos(ms[0].Pos)
	origin := epoch + "-0-0"
	all := []sse.Target{toA, toB, toAll}

	for _, c := range []struct {
		after, until string
		to           []sse.Target
		want         string
	}{
		{origin, ms[4].Pos, all, at(ms, 0, 1, 2, 3, 4)},
		{ms[1].Pos, ms[3].Pos, all, at(ms, 2, 3)},
		{ms[2].Pos, ms[2].Pos, all, ""},
		{ms[0].Pos, ms[0].Pos, all, ""},
		{"app-1", ms[4].Pos, all, at(ms, 2, 3, 4)},
		{"app-3", ms[4].Pos, all, at(ms, 4)},
		{ms[3].Pos, ms[1].Pos, all, "ahead"},
	} {
		if got := replayed(t, b, c.after, c.until, c.to...); got != c.want {
			t.Errorf("Replay after %s until %s: %q, want %q", c.after, c.until, got, c.want)
		}
	}

	var states []string
	if err := b.Snapshot(ctx, ms[4].Pos, all, func(m *sse.Message) bool {
		states = append(states, m.Key+"@"+m.Pos)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"k@" + ms[2].Pos, "k2@" + ms[3].Pos}; !reflect.DeepEqual(states, want) {
		t.Errorf("snapshot %v, want %v", states, want)
	}

	// The follower's catch-up (not subscribed: it reads on the broker's
	// client), from the stream's start and from inside the entry.
	b.reader = client
	for _, from := range []int{-1, 1} {
		var got []string
		h := onMessage{t, func(m *sse.Message) { got = append(got, m.Pos) }}
		st := &followState{epoch: epoch}
		if from >= 0 {
			st.last = evs[from].id
		}
		if err := b.catchUp(h, st); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, m := range ms[from+1:] {
			want = append(want, m.Pos)
		}
		if !reflect.DeepEqual(got, want) || st.last != evs[4].id {
			t.Errorf("catch-up after %d: %v, last %s; want %v, last %s", from, got, st.last, want, evs[4].id)
		}
	}
}

// TestBatchesTrimWhole: the stream keeps at least History events and
// trims whole entries; the eviction record holds, for each audience, its
// newest trimmed event's own id (not its entry's), so a resume is exact
// for the audiences that lost nothing, and expired for those that did.
func TestBatchesTrimWhole(t *testing.T) {
	r := startRedis(t)
	b, client := brokerOn(t, r, Options{History: 4, Logger: testLogger(t)})
	ctx := context.Background()
	b1 := []*sse.Message{msg(toA, "", "", "0"), msg(toB, "", "", "1"), msg(toA, "", "", "2")}
	b2 := []*sse.Message{msg(toAll, "", "", "3"), msg(toAll, "", "", "4"), msg(toC, "", "", "5")}
	b3 := []*sse.Message{msg(toAll, "", "", "6"), msg(toC, "", "", "7")}
	for i, batch := range [][]*sse.Message{b1, b2, b3} {
		if err := b.publishBatch(ctx, uint64(i+1), batch); err != nil {
			t.Fatal(err)
		}
	}
	// 8 events > 4 + 4/16: the first entry goes (5 remain); the second
	// stays (2 would).
	evs := streamEvents(t, b)
	if len(evs) != 5 || evs[0].m.Pos != b2[0].Pos {
		t.Fatalf("the stream holds %d events from %s, want 5 from %s", len(evs), evs[0].m.Pos, b2[0].Pos)
	}
	got, _ := client.HGetAll(ctx, b.evictedKey).Result()
	_, a2, _ := parsePos(b1[2].Pos)
	_, b1id, _ := parsePos(b1[1].Pos)
	if want := map[string]string{"t:a": a2.String(), "t:b": b1id.String()}; !reflect.DeepEqual(got, want) {
		t.Fatalf("eviction record %v, want %v", got, want)
	}
	meta, _ := client.HMGet(ctx, b.metaKey, "len", "trimmed").Result()
	_, last1, _ := parsePos(b1[2].Pos)
	if fmt.Sprint(meta) != fmt.Sprint([]any{"5", last1.String()}) {
		t.Fatalf("meta len, trimmed = %v; want 5, %s", meta, last1)
	}
	if n, _ := client.LLen(ctx, b.trimKey).Result(); n != 2 {
		t.Fatalf("trim list of %d, want 2 (the stream's entries)", n)
	}
	until := b3[1].Pos
	all5 := at(b2, 0, 1, 2) + " " + at(b3, 0, 1) // Replay leaves the audiences to the hub
	for _, c := range []struct {
		after string
		to    []sse.Target
		want  string
	}{
		{b1[0].Pos, []sse.Target{toC, toAll}, all5},      // lost nothing of theirs
		{b1[1].Pos, []sse.Target{toB}, all5},             // b's last was delivered
		{b1[0].Pos, []sse.Target{toB}, "expired"},        // b's event 1 is gone
		{b1[1].Pos, []sse.Target{toA, toAll}, "expired"}, // a's event 2 is gone
		{b1[2].Pos, []sse.Target{toA, toAll}, all5},
	} {
		if got := replayed(t, b, c.after, until, c.to...); got != c.want {
			t.Errorf("Replay after %s for %v: %q, want %q", c.after, c.to, got, c.want)
		}
	}
}

// TestDeletedEntriesStartAnEpoch: entries that leave the stream by no trim
// (XDEL of the newest or of one before it, as a restore or a failover that
// lost writes might do) make the next publish start a new epoch, based on
// the newest entry left before it, with the trim list and the stream's
// length read anew; a lost trim list alone is rebuilt, and starts none.
func TestDeletedEntriesStartAnEpoch(t *testing.T) {
	r := startRedis(t)
	b, client := brokerOn(t, r, Options{History: 64, Logger: testLogger(t)})
	ctx := context.Background()
	no := uint64(0)
	publish := func(n int) []*sse.Message {
		t.Helper()
		var ms []*sse.Message
		for i := range n {
			ms = append(ms, msg(toAll, "", "", fmt.Sprint(i)))
		}
		no++
		if err := b.publishBatch(ctx, no, ms); err != nil {
			t.Fatal(err)
		}
		return ms
	}
	epochOf := func(m *sse.Message) string { e, _, _ := parsePos(m.Pos); return e }
	entryOf := func(m *sse.Message) string {
		t.Helper()
		_, id, _ := parsePos(m.Pos)
		e, err := client.XRangeN(ctx, b.stream, id.String(), "+", 1).Result()
		if err != nil || len(e) != 1 {
			t.Fatalf("no entry holds %s (%v)", m.Pos, err)
		}
		return e[0].ID
	}
	check := func(what string, last *sse.Message, newEpoch bool, base string) {
		t.Helper()
		m := publish(2)
		if changed := epochOf(m[0]) != epochOf(last); changed != newEpoch {
			t.Fatalf("%s: the next publish is in epoch %s after %s: new epoch %v, want %v", what, epochOf(m[0]), epochOf(last), changed, newEpoch)
		}
		if newEpoch {
			if e, _ := client.Get(ctx, b.epochKey).Result(); e != epochOf(m[0])+" "+base {
				t.Fatalf("%s: epoch key %q, want %q", what, e, epochOf(m[0])+" "+base)
			}
		}
		xlen, _ := client.XLen(ctx, b.stream).Result()
		llen, _ := client.LLen(ctx, b.trimKey).Result()
		mlen, _ := client.HGet(ctx, b.metaKey, "len").Result()
		if llen != xlen || mlen != fmt.Sprint(len(streamEvents(t, b))) {
			t.Fatalf("%s: trim list %d for %d entries; meta len %s for %d events", what, llen, xlen, mlen, len(streamEvents(t, b)))
		}
	}

	publish(3)
	second := publish(3)
	check("nothing lost", second[2], false, "")

	newest := publish(3)
	if err := client.XDel(ctx, b.stream, entryOf(newest[0])).Err(); err != nil {
		t.Fatal(err)
	}
	// The newest left is the entry the check published.
	left, _ := client.XRevRangeN(ctx, b.stream, "+", "-", 1).Result()
	check("the newest entry deleted", newest[2], true, left[0].ID)

	mid := publish(3)
	last := publish(1)
	if err := client.XDel(ctx, b.stream, entryOf(mid[1])).Err(); err != nil {
		t.Fatal(err)
	}
	check("an older entry deleted", last[0], true, entryOf(last[0]))

	last = publish(1)
	if err := client.Del(ctx, b.trimKey).Err(); err != nil {
		t.Fatal(err)
	}
	check("the trim list lost", last[0], false, "")
}

// TestDeletedEntryIsNoSilentGap: an entry deleted from the stream (XDEL),
// then a publish; a client that had not received the deleted events
// resumes on the other node with a reset, not with the events around the
// hole; and a client that was connected when its node learnt of the new
// epoch resumes with a reset and every event published since.
func TestDeletedEntryIsNoSilentGap(t *testing.T) {
	r := startRedis(t)
	a := newNode(t, "A", r, Options{})
	b := newNode(t, "B", r, Options{})
	x := connect(t, a, "client=x", "")
	x.waitStart()
	y := connect(t, b, "client=y", "")
	y.waitStart()
	a.broadcast(t, "e", 0, 2)
	x.expect("e0", "e1")
	y.expect("e0", "e1")
	y.close()
	a.broadcast(t, "e", 2, 5)
	x.expect("e2", "e3", "e4")
	_, id, _ := parsePos(x.last)
	// e3's entry: the newest but one.
	gone, err := a.client.XRevRangeN(context.Background(), "sse:events", "+", "-", 2).Result()
	if err != nil || len(gone) != 2 || gone[0].ID != id.String() {
		t.Fatalf("the stream's newest entries %v (%v), want e4's (%s) first", gone, err, id)
	}
	if err := a.client.XDel(context.Background(), "sse:events", gone[1].ID).Err(); err != nil {
		t.Fatal(err)
	}
	a.broadcast(t, "e", 5, 6)

	y2, got := connect(t, b, "client=y", y.last).resuming(b, "client=y", 1)
	if len(y2.resets) == 0 || got[0] != "e5" {
		t.Fatalf("resumed after e1 with resets %v and %v; want a reset, then e5", y2.resets, got)
	}
	// x's stream on A ends when A's follower reads the new epoch; x resumes
	// with a reset and e5 (the new epoch from its start).
	x2, got := x.resuming(a, "client=x", 1)
	if len(x2.resets) == 0 || got[0] != "e5" {
		t.Fatalf("x resumed with resets %v and %v; want a reset, then e5", x2.resets, got)
	}
}

// TestBatchPlacedAfterTheNewestGeneratedID: when the stream has generated
// ids past the meta hash's newest (an entry added and deleted by someone
// else, with a clock ahead), a batch is placed after the stream's newest
// generated id, not refused, and its events' positions follow it.
func TestBatchPlacedAfterTheNewestGeneratedID(t *testing.T) {
	r := startRedis(t)
	b, client := brokerOn(t, r, Options{Logger: testLogger(t)})
	ctx := context.Background()
	if err := b.publishBatch(ctx, 1, []*sse.Message{msg(toAll, "", "", "0"), msg(toAll, "", "", "1")}); err != nil {
		t.Fatal(err)
	}
	future := fmt.Sprintf("%d-5", time.Now().Add(time.Hour).UnixMilli())
	if err := client.XAdd(ctx, &redis.XAddArgs{Stream: b.stream, ID: future, Values: []any{"d", " 2 0 0 1\ne:x"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.XDel(ctx, b.stream, future).Err(); err != nil {
		t.Fatal(err)
	}
	ms := []*sse.Message{msg(toAll, "", "", "2"), msg(toAll, "", "", "3"), msg(toAll, "", "", "4")}
	if err := b.publishBatch(ctx, 2, ms); err != nil {
		t.Fatalf("a batch after a deleted newer entry: %v", err)
	}
	f := mustID(future)
	for i, m := range ms {
		_, id, _ := parsePos(m.Pos)
		if want := (streamID{f.ms, f.seq + 1 + uint64(i)}); id != want {
			t.Errorf("event %d at %s, want %s", i, id, want)
		}
	}
	if evs := streamEvents(t, b); len(evs) != 5 || evs[4].m.Pos != ms[2].Pos {
		t.Fatalf("the stream holds %d events, the last at %s; want 5, the last at %s", len(evs), evs[len(evs)-1].m.Pos, ms[2].Pos)
	}
}
