package sseredis

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ssehub/sse"
)

// setPages sets the page bounds for one test.
func setPages(t *testing.T, entries, bytes int) {
	oldE, oldB := pageEntries, pageBytes
	pageEntries, pageBytes = entries, bytes
	t.Cleanup(func() { pageEntries, pageBytes = oldE, oldB })
}

// publishMany publishes n messages from 8 goroutines, msg(i) giving each,
// and returns their positions in position order.
func publishMany(t *testing.T, b *Broker, n int, msg func(i int) *sse.Message) []string {
	t.Helper()
	pos := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				m := msg(i)
				if err := b.Publish(context.Background(), m); err != nil {
					errs <- err
					return
				}
				pos[i] = m.Pos
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(pos, func(x, y string) int {
		_, a, _ := parsePos(x)
		_, c, _ := parsePos(y)
		return a.compare(c)
	})
	return pos
}

// heldBy returns how many bytes of heap more than before are in use now,
// after a collection.
func heldBy(before uint64) uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	if m.HeapAlloc < before {
		return 0
	}
	return m.HeapAlloc - before
}

func heapNow() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestLongReplayInPages: with 20 MiB of history (20,000 events of 1 KiB,
// each a state of its own), a Replay or a Snapshot whose fn stops at its
// first message (a stream stalled or cut short) holds a page, not the
// history; and full ones give every message, in position order.
func TestLongReplayInPages(t *testing.T) {
	r := startRedis(t)
	const n = 20_000
	b, _ := brokerOn(t, r, Options{History: n, Keys: n, Logger: testLogger(t)})
	body := []byte("data: " + strings.Repeat("x", 1010) + "\n\n")
	pos := publishMany(t, b, n, func(i int) *sse.Message {
		return &sse.Message{To: sse.Target{Kind: sse.ToEveryone}, Key: fmt.Sprint("k", i), Body: body}
	})
	epoch, _, _ := parsePos(pos[0])
	head, last := epoch+"-0-0", pos[n-1]
	everyone := []sse.Target{{Kind: sse.ToEveryone}}
	ctx := context.Background()

	const bound = 8 << 20 // generous: a page is 256 KiB
	before := heapNow()
	var held uint64
	ok, why, err := b.Replay(ctx, head, last, everyone, func(*sse.Message) bool {
		held = heldBy(before)
		return false
	})
	if !ok || err != nil {
		t.Fatalf("replay: %v %q %v", ok, why, err)
	}
	t.Logf("a replay of 20 MiB stopped at its first message held %d KiB", held>>10)
	if held > bound {
		t.Errorf("that is over the bound of %d KiB", bound>>10)
	}
	before = heapNow()
	held = 0
	if err := b.Snapshot(ctx, last, everyone, func(*sse.Message) bool {
		held = heldBy(before)
		return false
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("a snapshot of 20 MiB stopped at its first message held %d KiB", held>>10)
	if held > bound {
		t.Errorf("that is over the bound of %d KiB", bound>>10)
	}

	var got []string
	if ok, why, err := b.Replay(ctx, head, last, everyone, func(m *sse.Message) bool {
		got = append(got, m.Pos)
		return true
	}); !ok || err != nil {
		t.Fatalf("full replay: %v %q %v", ok, why, err)
	}
	if !slices.Equal(got, pos) {
		t.Fatalf("full replay gave %d messages, want %d in position order", len(got), n)
	}
	got = got[:0]
	if err := b.Snapshot(ctx, last, everyone, func(m *sse.Message) bool {
		got = append(got, m.Pos)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, pos) {
		t.Fatalf("full snapshot gave %d states, want %d in position order", len(got), n)
	}
}

// TestPagesMerge: with pages of every size, from one message or one byte
// up, replays and snapshots of several audiences, with states updated and
// some past until, give exactly what one read of everything would.
func TestPagesMerge(t *testing.T) {
	r := startRedis(t)
	b, _ := brokerOn(t, r, Options{History: 1000, Keys: 1000, Logger: testLogger(t)})
	ctx := context.Background()
	auds := []sse.Target{{Kind: sse.ToEveryone}, {Kind: sse.ToTopic, Name: "news"}, {Kind: sse.ToClient, Name: "ann"}, {Kind: sse.ToTopic, Name: "other"}}
	type state struct {
		to  sse.Target
		key string
	}
	newest := map[state]*sse.Message{}
	var all []*sse.Message
	var until string
	for i := range 300 {
		m := &sse.Message{To: auds[(i*7)%len(auds)], Body: fmt.Appendf(nil, "data: %d\n\n", i)}
		if i%3 != 0 {
			m.Key = fmt.Sprint("k", (i*13)%40) // states updated again and again
		}
		if i%11 == 0 {
			m.ID = fmt.Sprint("app-", i)
		}
		if err := b.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
		if i == 280 {
			until = m.Pos
		}
		if i <= 280 {
			all = append(all, m)
		}
		if m.Key != "" {
			newest[state{m.To, m.Key}] = m // one updated after until is left out
		}
	}
	to := auds[:3] // not "other"
	var wantReplay, wantSnap []string
	show := func(m *sse.Message) string { return m.Pos + " " + m.ID + " " + m.Key + " " + string(m.Body) }
	for _, m := range all {
		wantReplay = append(wantReplay, show(m)) // Replay gives every audience's: the hub filters
		if m.Key != "" && newest[state{m.To, m.Key}] == m && slices.Contains(to, m.To) {
			wantSnap = append(wantSnap, show(m))
		}
	}
	t.Logf("checking %d messages and %d states", len(wantReplay), len(wantSnap))
	if len(wantSnap) < 15 {
		t.Fatalf("only %d states to check", len(wantSnap))
	}
	epoch, _, _ := parsePos(until)
	for _, size := range [][2]int{{256, 256 << 10}, {1, 256 << 10}, {3, 256 << 10}, {256, 1}, {5, 40}} {
		setPages(t, size[0], size[1])
		var got []string
		ok, why, err := b.Replay(ctx, epoch+"-0-0", until, to, func(m *sse.Message) bool { got = append(got, show(m)); return true })
		if !ok || err != nil {
			t.Fatalf("pages of %v: replay %v %q %v", size, ok, why, err)
		}
		if !slices.Equal(got, wantReplay) {
			t.Fatalf("pages of %v: replay gave\n%q\nwant\n%q", size, got, wantReplay)
		}
		got = got[:0]
		if err := b.Snapshot(ctx, until, to, func(m *sse.Message) bool { got = append(got, show(m)); return true }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, wantSnap) {
			t.Fatalf("pages of %v: snapshot gave\n%q\nwant\n%q", size, got, wantSnap)
		}
	}
}

// TestPagesMoveOn: between two pages of a replay, entries the stream is to
// receive may be trimmed, and Redis may lose its data: the replay then
// fails rather than skip them; a trim of other audiences' entries does not
// matter. A snapshot fails when Redis lost its data between two pages.
func TestPagesMoveOn(t *testing.T) {
	r := startRedis(t)
	b, _ := brokerOn(t, r, Options{History: 10, Logger: testLogger(t)})
	setPages(t, 2, 256<<10)
	ctx := context.Background()
	everyone := sse.Target{Kind: sse.ToEveryone}
	quiet := sse.Target{Kind: sse.ToTopic, Name: "quiet"}
	var pos []string
	for i := range 10 {
		m := &sse.Message{To: everyone, Key: fmt.Sprint("k", i), Body: []byte("data: x\n\n")}
		if err := b.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
		pos = append(pos, m.Pos)
	}
	epoch, _, _ := parsePos(pos[0])
	head, until := epoch+"-0-0", pos[9]
	trim := func() {
		for range 10 {
			if err := b.Publish(ctx, &sse.Message{To: everyone, Body: []byte("data: y\n\n")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []string
	ok, _, err := b.Replay(ctx, head, until, []sse.Target{everyone}, func(m *sse.Message) bool {
		if len(got) == 0 {
			trim()
		}
		got = append(got, m.Pos)
		return true
	})
	if !ok || err == nil {
		t.Fatalf("replay across a trim of its entries: %v %v, want an error", ok, err)
	}
	if !slices.Equal(got, pos[:len(got)]) {
		t.Fatalf("replay gave %v, not a beginning of %v", got, pos)
	}
	t.Logf("replay across a trim: %d messages, then %v", len(got), err)

	// A trim of entries of other audiences only does not matter: the
	// replay of a quiet topic goes on.
	noisy := sse.Target{Kind: sse.ToTopic, Name: "noisy"}
	var want []string
	for i := range 10 {
		m := &sse.Message{To: quiet, Body: []byte("data: q\n\n")}
		if i < 4 {
			m.To = noisy
		}
		if err := b.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
		pos = append(pos, m.Pos)
		if i == 1 || i == 2 || i >= 4 {
			want = append(want, m.Pos) // the first page, then the quiet ones
		}
	}
	got = got[:0]
	ok, _, err = b.Replay(ctx, pos[len(pos)-10], pos[len(pos)-1], []sse.Target{quiet}, func(m *sse.Message) bool {
		if len(got) == 0 {
			for range 4 { // trims the noisy ones
				if err := b.Publish(ctx, &sse.Message{To: noisy, Body: []byte("data: n\n\n")}); err != nil {
					t.Fatal(err)
				}
			}
		}
		got = append(got, m.Pos)
		return true
	})
	if !ok || err != nil {
		t.Fatalf("replay of a quiet topic across a trim of other audiences: %v %v", ok, err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("replay of a quiet topic across a trim gave %v, want %v", got, want)
	}

	// Redis loses its data between two pages.
	last := pos[len(pos)-1]
	ok, _, err = b.Replay(ctx, pos[len(pos)-10], last, []sse.Target{everyone}, func(*sse.Message) bool {
		flushAll(t, r)
		return true
	})
	if !ok || err == nil {
		t.Fatalf("replay across a flush: %v %v, want an error", ok, err)
	}
	for i := range 10 {
		m := &sse.Message{To: everyone, Key: fmt.Sprint("k", i), Body: []byte("data: x\n\n")}
		if err := b.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
		last = m.Pos
	}
	setPages(t, 2, 1) // a state a page
	if err := b.Snapshot(ctx, last, []sse.Target{everyone}, func(*sse.Message) bool {
		flushAll(t, r)
		return true
	}); err == nil {
		t.Fatal("snapshot across a flush: no error")
	}
}
