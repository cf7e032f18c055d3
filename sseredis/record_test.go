package sseredis

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
	"github.com/ssehub/sse"
)

var recordCases = []*sse.Message{
	{To: sse.Target{Kind: sse.ToEveryone}, Body: []byte("data: x\n\n")},
	{To: sse.Target{Kind: sse.ToTopic, Name: "a topic\nwith 2 lines"}, ID: "id 7", Key: "point 3", Body: []byte("data: 1\n\n")},
	{To: sse.Target{Kind: sse.ToClient, Name: "user:1 2"}, ID: "x", Body: nil},
	{To: sse.Target{Kind: sse.ToTopic, Name: ""}, Key: "k", Body: []byte(strings.Repeat("é\n", 300))},
}

// TestRecordRoundTrip: a record decodes to the message it was made from,
// whatever bytes its parts hold, and an entry's records decode to all of
// them, each with its own position.
func TestRecordRoundTrip(t *testing.T) {
	var records []byte
	for i, m := range recordCases {
		rec := appendRecord(nil, audience(m.To), m)
		got, rest, err := decodeRecord(string(rec) + "tail")
		if err != nil {
			t.Fatalf("case %d: %v (record %q)", i, err, rec)
		}
		if rest != "tail" {
			t.Errorf("case %d: rest %q, want %q", i, rest, "tail")
		}
		if !sameMessage(got, m) {
			t.Errorf("case %d: decoded %+v, want %+v", i, got, m)
		}
		records = append(records, rec...)
	}
	id := streamID{1700000000000, 9}
	evs, err := decodeRecords(string(records), "abcdefgh", id, len(recordCases))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(recordCases) {
		t.Fatalf("decoded %d events, want %d", len(evs), len(recordCases))
	}
	for i, e := range evs {
		want := fmt.Sprintf("1700000000000-%d", 9-len(recordCases)+1+i)
		if !sameMessage(e.m, recordCases[i]) || e.id.String() != want || e.m.Pos != "abcdefgh-"+want {
			t.Errorf("event %d: %+v at %s, want %s", i, e.m, e.id, want)
		}
	}
	for _, n := range []int{len(recordCases) - 1, len(recordCases) + 1} {
		if _, err := decodeRecords(string(records), "abcdefgh", id, n); err == nil {
			t.Errorf("%d records decoded as %d", len(recordCases), n)
		}
	}
	if _, err := decodeRecords(string(records), "abcdefgh", streamID{1, 2}, len(recordCases)); err == nil {
		t.Errorf("%d events decoded as ending at 1-2", len(recordCases))
	}
}

func sameMessage(a, b *sse.Message) bool {
	return a.To == b.To && a.ID == b.ID && a.Key == b.Key && string(a.Body) == string(b.Body)
}

// TestDecodeRecordRejects: a malformed record is an error, never a
// message with parts cut short.
func TestDecodeRecordRejects(t *testing.T) {
	for _, p := range []string{
		"",
		"2 0 0 1\ne:x",    // no leading space
		" 2 0 0 1e:x",     // no end of header
		" 2 0 0\ne:",      // three lengths
		" 2 0 0 1 0\ne:x", // five
		" 2 0 0 -1\ne:",   // negative
		" 2 0 0 x\ne:x",   // not a number
		" 2 0 0 5\ne:x",   // truncated
		" 2  0 0 1\ne:x",  // empty length
		" 3 0 0 1\nq:ax",  // no such audience kind
		" 1 0 0 1\nex",    // audience without a colon
		" 99999999999999999999 0 0 0\n",
	} {
		if m, _, err := decodeRecord(p); err == nil {
			t.Errorf("decodeRecord(%q) = %+v, want an error", p, m)
		}
	}
}

// FuzzDecodeRecord: decoding never panics, and what it accepts is exactly
// the record of the message it returns.
func FuzzDecodeRecord(f *testing.F) {
	for _, m := range recordCases {
		f.Add(string(appendRecord(nil, audience(m.To), m)))
	}
	f.Add(" 2 0 0 1\ne:x")
	f.Fuzz(func(t *testing.T, p string) {
		m, rest, err := decodeRecord(p)
		if err != nil {
			return
		}
		used := p[:len(p)-len(rest)]
		if again := string(appendRecord(nil, audience(m.To), m)); again != used {
			t.Fatalf("decoded %q as %+v, which encodes as %q", used, m, again)
		}
	})
}

// TestEarlierVersionsEntries: a stream written by an earlier version (four
// fields per entry, no trim list, a meta hash without "last" and "len") is
// read as it was written: replayed, caught up with by a follower, and
// trimmed with an exact eviction record (the trim list rebuilt from the
// old entries and the new ones).
func TestEarlierVersionsEntries(t *testing.T) {
	r := startRedis(t)
	ctx := context.Background()
	b, client := brokerOn(t, r, Options{History: 8, Logger: testLogger(t)})
	if err := client.Set(ctx, b.epochKey, "oldepoch 0-0", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var old []*sse.Message
	var oldIDs []string
	for i := range 6 {
		m := &sse.Message{To: sse.Target{Kind: sse.ToTopic, Name: fmt.Sprint("t", i%3)}, ID: fmt.Sprint("old", i), Key: "", Body: []byte(fmt.Sprintf("data: old %d\n\n", i))}
		if i == 4 {
			m.To = sse.Target{Kind: sse.ToClient, Name: "c 1"}
		}
		id, err := client.XAdd(ctx, &redis.XAddArgs{Stream: b.stream, Values: []any{"a", audience(m.To), "i", m.ID, "k", m.Key, "b", m.Body}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		old, oldIDs = append(old, m), append(oldIDs, id)
	}

	got := make(chan *sse.Message, 100)
	pos, err := b.Subscribe(onMessage{t, func(m *sse.Message) { got <- m }})
	if err != nil {
		t.Fatal(err)
	}
	if want := "oldepoch-" + oldIDs[5]; pos != want {
		t.Fatalf("Subscribe at %s, want %s", pos, want)
	}

	// Replay reads them.
	var replayed []*sse.Message
	ok, reason, err := b.Replay(ctx, "oldepoch-0-0", pos, []sse.Target{{Kind: sse.ToEveryone}}, func(m *sse.Message) bool {
		replayed = append(replayed, m)
		return true
	})
	if err != nil || !ok {
		t.Fatalf("Replay: %v %q %v", ok, reason, err)
	}
	if len(replayed) != len(old) {
		t.Fatalf("replayed %d, want %d", len(replayed), len(old))
	}
	for i, m := range replayed {
		if !sameMessage(m, old[i]) || m.Pos != "oldepoch-"+oldIDs[i] {
			t.Errorf("replayed %d: %+v, want %+v at %s", i, m, old[i], oldIDs[i])
		}
	}

	// One more old entry, which no push announces: the follower reads it
	// from the stream when the next push does not follow it.
	m6 := &sse.Message{To: sse.Target{Kind: sse.ToEveryone}, Key: "k", Body: []byte("data: old 6\n\n")}
	id6, err := client.XAdd(ctx, &redis.XAddArgs{Stream: b.stream, Values: []any{"a", audience(m6.To), "i", "", "k", m6.Key, "b", m6.Body}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	var newIDs []string
	publish := func(i int) {
		m := &sse.Message{To: sse.Target{Kind: sse.ToTopic, Name: "t9"}, Body: []byte(fmt.Sprintf("data: new %d\n\n", i))}
		if err := b.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
		_, id, _ := parsePos(m.Pos)
		newIDs = append(newIDs, id.String())
	}
	publish(0)
	for i, want := range []*sse.Message{m6, {To: sse.Target{Kind: sse.ToTopic, Name: "t9"}, Body: []byte("data: new 0\n\n")}} {
		select {
		case m := <-got:
			wantPos := "oldepoch-" + id6
			if i == 1 {
				wantPos = "oldepoch-" + newIDs[0]
			}
			if !sameMessage(m, want) || m.Pos != wantPos {
				t.Fatalf("follower delivered %+v, want %+v at %s", m, want, wantPos)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the follower delivered nothing")
		}
	}

	// More new events: the trims, past 8 entries, rebuild the trim list
	// from the old entries and the new, and record what they trimmed.
	for i := 1; i < 6; i++ {
		publish(i)
	}
	// 13 entries, History 8: the five oldest are gone (t0, t1, t2, t0, c 1).
	want := map[string]string{"t:t0": oldIDs[3], "t:t1": oldIDs[1], "t:t2": oldIDs[2], "c:c 1": oldIDs[4]}
	evicted, err := client.HGetAll(ctx, b.evictedKey).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(evicted, want) {
		t.Fatalf("eviction record %v, want %v", evicted, want)
	}
	if n, _ := client.XLen(ctx, b.stream).Result(); n != 8 {
		t.Fatalf("stream of %d entries, want 8", n)
	}
	for i := 1; i < 6; i++ {
		select {
		case m := <-got:
			if m.Pos != "oldepoch-"+newIDs[i] {
				t.Fatalf("follower delivered %s, want %s", m.Pos, newIDs[i])
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the follower stopped")
		}
	}
}

// TestRecordCopiesOutOfTheBatch: a decoded message shares no memory with
// the batch it was read from, so that keeping its ID, Key or audience
// (as the hub's keyed state does) does not keep the whole batch.
func TestRecordCopiesOutOfTheBatch(t *testing.T) {
	m := &sse.Message{To: sse.Target{Kind: sse.ToTopic, Name: "topic"}, ID: "id-1", Key: "key-1", Body: []byte("body")}
	batch := string(appendRecord(nil, audience(m.To), m)) + strings.Repeat("x", 1<<16)
	got, _, err := decodeRecord(batch)
	if err != nil {
		t.Fatal(err)
	}
	lo := uintptr(unsafe.Pointer(unsafe.StringData(batch)))
	hi := lo + uintptr(len(batch))
	for what, s := range map[string]string{"ID": got.ID, "Key": got.Key, "audience": got.To.Name} {
		if p := uintptr(unsafe.Pointer(unsafe.StringData(s))); p >= lo && p < hi {
			t.Errorf("the decoded %s points into the batch", what)
		}
	}
	if p := uintptr(unsafe.Pointer(unsafe.SliceData(got.Body))); p >= lo && p < hi {
		t.Error("the decoded Body points into the batch")
	}
}
