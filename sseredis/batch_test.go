package sseredis

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssehub/sse"
)

// scriptCounter counts a client's calls of the publish script, and holds
// the first until release says so.
type scriptCounter struct {
	calls atomic.Int64
	hold  func() // run before the first call is sent
	once  sync.Once
}

func (h *scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if a := cmd.Args(); len(a) > 1 && (a[0] == "evalsha" || a[0] == "eval") && (a[1] == publishScript.Hash() || a[1] == luaCore+luaPublish) {
			h.calls.Add(1)
			if h.hold != nil {
				h.once.Do(h.hold)
			}
		}
		return next(ctx, cmd)
	}
}

func (h *scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestPublishersShareRoundTrips: 16 goroutines publish at once while the
// first publish is in flight: the other 15 go in one script call, and each
// gets its own position, in the order of the stream.
func TestPublishersShareRoundTrips(t *testing.T) {
	r := startRedis(t)
	b, client := brokerOn(t, r, Options{Logger: testLogger(t)})
	var got []*sse.Message
	var mu sync.Mutex
	if _, err := b.Subscribe(onMessage{t, func(m *sse.Message) { mu.Lock(); got = append(got, m); mu.Unlock() }}); err != nil {
		t.Fatal(err)
	}
	queued := func() int {
		b.pub.mu.Lock()
		defer b.pub.mu.Unlock()
		return len(b.pub.queue)
	}
	started := make(chan struct{})
	h := &scriptCounter{hold: func() {
		close(started)
		for deadline := time.Now().Add(5 * time.Second); queued() < 15; {
			if time.Now().After(deadline) {
				t.Errorf("only %d publishes queued behind the first", queued())
				return
			}
			time.Sleep(time.Millisecond)
		}
	}}
	client.AddHook(h)
	msgs := make([]*sse.Message, 16)
	var wg sync.WaitGroup
	for i := range msgs {
		msgs[i] = &sse.Message{To: sse.Target{Kind: sse.ToEveryone}, Body: fmt.Appendf(nil, "data: %d\n\n", i)}
		wg.Go(func() {
			if err := b.Publish(context.Background(), msgs[i]); err != nil {
				t.Error(err)
			}
		})
		if i == 0 {
			<-started // the first publish is in flight; the others queue
		}
	}
	wg.Wait()
	if n := h.calls.Load(); n != 2 {
		t.Fatalf("16 concurrent publishes took %d script calls, want 2 (the first, then the 15 queued behind it)", n)
	}
	pos := map[string]bool{}
	for _, m := range msgs {
		if pos[m.Pos] || m.Pos == "" {
			t.Fatalf("position %q given twice or not at all", m.Pos)
		}
		pos[m.Pos] = true
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 16 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d of 16", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, m := range got {
		if !pos[m.Pos] {
			t.Fatalf("delivered %s, which no publish was given", m.Pos)
		}
	}
}

// lossyConn drops the reply of the first publish script call sent after
// armed: the request reaches Redis, which runs it, and the client sees the
// connection break (io.EOF), as when a link fails at the wrong moment.
type lossyConn struct {
	net.Conn
	armed   *atomic.Bool
	pending bool
}

func (c *lossyConn) Write(p []byte) (int, error) {
	if c.armed.Load() && slices.Contains([]string{"evalsha", "EVALSHA"}, firstBulk(p)) {
		c.pending = true
	}
	return c.Conn.Write(p)
}

func (c *lossyConn) Read(p []byte) (int, error) {
	if c.pending && c.armed.CompareAndSwap(true, false) {
		time.Sleep(50 * time.Millisecond) // Redis has run it
		c.Conn.Close()
		return 0, io.EOF
	}
	return c.Conn.Read(p)
}

// firstBulk returns the first argument of a RESP command.
func firstBulk(p []byte) string {
	// *N\r\n$L\r\nNAME\r\n
	s := string(p)
	for range 2 {
		i := indexCRLF(s)
		if i < 0 {
			return ""
		}
		s = s[i+2:]
	}
	if i := indexCRLF(s); i >= 0 {
		return s[:i]
	}
	return ""
}

func indexCRLF(s string) int {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '\r' && s[i+1] == '\n' {
			return i
		}
	}
	return -1
}

// TestRetriedBatchAddsNothingTwice: a batch whose reply is lost is resent
// by go-redis; Redis answers the resend from the batch it ran, so the
// events are in the stream once and the publishes get their positions.
// Sending a batch number again, as a retry does, likewise.
func TestRetriedBatchAddsNothingTwice(t *testing.T) {
	r := startRedis(t)
	var armed atomic.Bool
	client := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: 3,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &lossyConn{Conn: c, armed: &armed}, nil
		}})
	defer client.Close()
	b, err := New(client, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	m := &sse.Message{To: sse.Target{Kind: sse.ToEveryone}, Body: []byte("data: once\n\n")}
	armed.Store(true)
	if err := b.Publish(ctx, m); err != nil {
		t.Fatal(err)
	}
	if armed.Load() {
		t.Fatal("no reply was lost")
	}
	if evs := streamEvents(t, b); len(evs) != 1 || evs[0].m.Pos != m.Pos {
		t.Fatalf("the publish was given %s; the stream holds %v", m.Pos, evs)
	}

	// The same batch number again: answered, not added.
	batch := func() []*sse.Message {
		return []*sse.Message{
			{To: sse.Target{Kind: sse.ToTopic, Name: "t"}, Key: "k", ID: "app-1", Body: []byte("data: a\n\n")},
			{To: sse.Target{Kind: sse.ToClient, Name: "c"}, Body: []byte("data: b\n\n")},
		}
	}
	first, again := batch(), batch()
	if err := b.publishBatch(ctx, 1000, first); err != nil {
		t.Fatal(err)
	}
	if err := b.publishBatch(ctx, 1000, again); err != nil {
		t.Fatal(err)
	}
	for i := range first {
		if first[i].Pos != again[i].Pos {
			t.Fatalf("a resent batch was given %s, the first %s", again[i].Pos, first[i].Pos)
		}
	}
	if evs := streamEvents(t, b); len(evs) != 3 || evs[1].m.Pos != first[0].Pos || evs[2].m.Pos != first[1].Pos {
		t.Fatalf("the stream holds %v, want 3 events, the last two at %s and %s", evs, first[0].Pos, first[1].Pos)
	}
	if err := b.publishBatch(ctx, 1001, batch()); err != nil {
		t.Fatal(err)
	}
	if n := len(streamEvents(t, b)); n != 5 {
		t.Fatalf("the stream holds %d events after a new batch, want 5", n)
	}
}

// TestEvictionRecordUnderBatches: publishers on two brokers, batching
// concurrently, with a small history: the eviction record holds, for each
// audience, exactly the newest of its entries that left the stream, and
// the meta hash the newest trimmed id and the stream's length.
func TestEvictionRecordUnderBatches(t *testing.T) {
	r := startRedis(t)
	const history = 48 // trims when 51 are held
	var brokers []*Broker
	for range 2 {
		client := redis.NewClient(&redis.Options{Addr: r.addr()})
		defer client.Close()
		b, err := New(client, Options{History: history, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		brokers = append(brokers, b)
	}
	type pub struct {
		id  streamID
		aud string
	}
	var mu sync.Mutex
	var all []pub
	var wg sync.WaitGroup
	for w := range 16 {
		b := brokers[w%2]
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range 60 {
				to := sse.Target{Kind: sse.ToTopic, Name: fmt.Sprint("t", rng.IntN(12))}
				switch rng.IntN(4) {
				case 0:
					to = sse.Target{Kind: sse.ToEveryone}
				case 1:
					to = sse.Target{Kind: sse.ToClient, Name: fmt.Sprint("c", rng.IntN(5))}
				}
				m := &sse.Message{To: to, Body: []byte("data: x\n\n")}
				if err := b.Publish(context.Background(), m); err != nil {
					t.Error(err)
					return
				}
				_, id, _ := parsePos(m.Pos)
				mu.Lock()
				all = append(all, pub{id, audience(to)})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	ctx := context.Background()
	c := brokers[0].client
	entries := streamEvents(t, brokers[0])
	if len(entries) < history || len(entries) > history+history/16+maxBatch {
		t.Fatalf("the stream holds %d events, want %d to %d", len(entries), history, history+history/16+maxBatch)
	}
	first := entries[0].id
	want := map[string]string{}
	var newest streamID
	for _, p := range all {
		if p.id.compare(first) < 0 {
			if old, ok := want[p.aud]; !ok || mustID(old).compare(p.id) < 0 {
				want[p.aud] = p.id.String()
			}
			if p.id.compare(newest) > 0 {
				newest = p.id
			}
		}
	}
	got, err := c.HGetAll(ctx, brokers[0].evictedKey).Result()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("eviction record\n%v\nwant\n%v", got, want)
	}
	meta, _ := c.HMGet(ctx, brokers[0].metaKey, "trimmed", "len", "seq").Result()
	if meta[0] != newest.String() || meta[1] != fmt.Sprint(len(entries)) || meta[2] != fmt.Sprint(len(all)) {
		t.Fatalf("meta trimmed, len, seq = %v; want %s, %d, %d", meta, newest, len(entries), len(all))
	}
	t.Logf("%d events published, %d trimmed: the eviction record has %d audiences", len(all), len(all)-len(entries), len(want))
}

func mustID(s string) streamID { id, _ := parseID(s); return id }

// streamEvents returns the events b's stream holds, in order, their
// positions in b's epoch.
func streamEvents(t *testing.T, b *Broker) []event {
	t.Helper()
	ctx := context.Background()
	epoch, err := b.client.Get(ctx, b.epochKey).Result()
	if err != nil {
		t.Fatal(err)
	}
	epoch, _, _ = strings.Cut(epoch, " ")
	res, err := b.client.Do(ctx, "XRANGE", b.stream, "-", "+").Slice()
	if err != nil {
		t.Fatal(err)
	}
	var all []event
	for _, e := range res {
		_, evs, err := decodeEntry(e, epoch)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
	}
	return all
}

// TestTrimListRebuilt: a trim list that does not match the stream (lost,
// or written by an earlier version) is rebuilt from the stream at the next
// trim, and the eviction record stays exact.
func TestTrimListRebuilt(t *testing.T) {
	r := startRedis(t)
	b, client := brokerOn(t, r, Options{History: 16, Logger: testLogger(t)})
	ctx := context.Background()
	var pos []string
	publish := func(topic string) {
		m := &sse.Message{To: sse.Target{Kind: sse.ToTopic, Name: topic}, Body: []byte("data: x\n\n")}
		if err := b.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
		_, id, _ := parsePos(m.Pos)
		pos = append(pos, id.String())
	}
	for i := range 16 {
		publish(fmt.Sprint("t", i%2))
	}
	if err := client.Del(ctx, b.trimKey).Err(); err != nil {
		t.Fatal(err)
	}
	publish("t0") // 17 entries: 16 + 16/16, no trim yet
	publish("t2") // 18: entries 0 and 1 are trimmed, by a rebuilt list
	publish("t2")
	got, err := client.HGetAll(ctx, b.evictedKey).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"t:t0": pos[0], "t:t1": pos[1]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("eviction record %v, want %v", got, want)
	}
	if n, _ := client.LLen(ctx, b.trimKey).Result(); n != 17 {
		t.Fatalf("trim list of %d, want 17 (the stream's length)", n)
	}
}

// TestPublishCancelled: a publish whose context ended before its batch was
// sent is not sent, and one caller's context does not decide the fate of
// the other events of its batch.
func TestPublishCancelled(t *testing.T) {
	r := startRedis(t)
	b, client := brokerOn(t, r, Options{Logger: testLogger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := &sse.Message{To: sse.Target{Kind: sse.ToEveryone}, Body: []byte("data: x\n\n")}
	if err := b.Publish(ctx, m); err == nil || m.Pos != "" {
		t.Fatalf("a publish with a cancelled context: %v, position %q", err, m.Pos)
	}
	if n, _ := client.XLen(context.Background(), b.stream).Result(); n != 0 {
		t.Fatalf("stream length %d, want 0", n)
	}
	// The batch's sender is cancelled once its call is on the way: the
	// batch, its event and the others', still goes.
	var sent atomic.Bool
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	client.AddHook(&scriptCounter{hold: func() { cancel2(); sent.Store(true) }})
	m2 := &sse.Message{To: sse.Target{Kind: sse.ToEveryone}, Body: []byte("data: y\n\n")}
	if err := b.Publish(ctx2, m2); err != nil || !sent.Load() {
		t.Fatalf("a publish whose context ended while its batch was sent: %v (sent %v)", err, sent.Load())
	}
	if n, _ := client.XLen(context.Background(), b.stream).Result(); n != 1 {
		t.Fatalf("stream length %d, want 1", n)
	}
}
