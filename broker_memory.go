package sse

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base32"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// memoryBroker is the default Broker: one process, a bounded ring of recent
// messages, and positions "<epoch>-<sequence>". Publish delivers
// synchronously, under its order lock, so deliveries are in position order;
// the history's lock is not held while the hub walks its streams, so that
// replays do not wait for a delivery to many streams.
//
// Every operation costs the same however long the history and however many
// keys are remembered, but for the work it hands back: a replay copies the
// messages it replays, a snapshot the states it sends.
type memoryBroker struct {
	epoch string // 8 lowercase base32 characters, random per broker

	order    sync.Mutex      // held by publish from the position's assignment to the end of its delivery
	mu       sync.Mutex      // guards the history
	seq      uint64          // the last assigned sequence number; 0 before the first
	ring     []*envelope     // room for the last len(ring) messages, message seq at ring[seq%len]
	oldest   uint64          // the sequence number of the oldest message kept; seq+1 when none is
	bytes    int             // the size of the messages kept (messageSize)
	maxBytes int             // bound on bytes; the oldest messages go first
	deliver  func(*envelope) // the hub's, called under order

	// evicted holds, per audience, the newest message evicted from
	// history: a resume from before the history is exact when none of the
	// stream's audiences lost a message after it (see Replay). ids maps
	// application-set IDs to their messages, in history and beyond.
	evicted seqIndex[Target]
	ids     seqIndex[string]

	// The newest message of each state, for snapshots. keysMu is a leaf
	// lock: Snapshot takes nothing else, so the hub may call it while it
	// holds deliveries back (Hub.Subscribe), although Publish delivers
	// under order. Snapshots only read: under a storm of reconnects they
	// run side by side, and a keyed publish waits for those running, not
	// for a queue of them.
	keysMu sync.RWMutex
	keys   keyStore
}

// Bounds of the eviction record and of the application-set IDs remembered
// beyond history: past them the broker forgets the least recently updated
// (an audience forgotten counts as having lost its newest forgotten
// message; an ID forgotten is unknown), in at most about 8 MiB.
const (
	maxEvicted      = 65_536
	maxEvictedBytes = 4 << 20
	maxIDs          = 65_536
	maxIDBytes      = 4 << 20
	indexOverhead   = 64 // about what an entry costs beyond its name
)

// messageOverhead is about what a kept message costs beyond its frame: the
// envelope, its strings' headers, the ring or state that holds it.
const messageOverhead = 192

// messageSize is about the memory a kept message holds.
func messageSize(m *envelope) int {
	return len(m.frame) + len(m.ID) + len(m.Key) + len(m.To.Name) + messageOverhead
}

// epochLen is the length of a memory broker's epoch.
const epochLen = 8

var epochEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newMemoryBroker returns a broker that keeps the last history messages
// (within DefaultHistoryBytes) and the newest message of up to maxKeys keys
// per audience (within DefaultKeyBytes); zero keeps none (replay then only
// succeeds when nothing was missed; snapshots are empty).
func newMemoryBroker(history, maxKeys int) *memoryBroker {
	var raw [5]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails (Go 1.24)
	b := &memoryBroker{
		epoch:    epochEncoding.EncodeToString(raw[:]),
		oldest:   1,
		maxBytes: DefaultHistoryBytes,
		evicted:  newSeqIndex(maxEvicted, maxEvictedBytes, func(t Target) int { return len(t.Name) + indexOverhead }),
		ids:      newSeqIndex(maxIDs, maxIDBytes, func(id string) int { return len(id) + indexOverhead }),
		keys:     newKeyStore(maxKeys, DefaultKeyBytes),
	}
	if history > 0 {
		b.ring = make([]*envelope, history)
	}
	return b
}

// Publish is Broker.Publish, for a memory broker used as a Config.Broker
// (tests do): it keeps a copy of m.
func (b *memoryBroker) Publish(_ context.Context, m *Message) error {
	e := &envelope{Message: *m}
	e.Body = bytes.Clone(m.Body)
	b.publish(e)
	m.Pos = e.Pos
	return nil
}

// publish assigns e its position, builds its frame and keeps it in
// history, under mu, and delivers it, all under order, so that deliveries
// are in position order.
func (b *memoryBroker) publish(m *envelope) {
	b.order.Lock()
	defer b.order.Unlock()
	b.mu.Lock()
	b.seq++
	m.Pos = b.pos(b.seq)
	m.build()
	if len(b.ring) > 0 {
		if b.seq-b.oldest >= uint64(len(b.ring)) {
			b.evictOldest() // its slot is m's
		}
		b.ring[b.seq%uint64(len(b.ring))] = m
		b.bytes += messageSize(m)
		for b.bytes > b.maxBytes && b.oldest <= b.seq {
			b.evictOldest()
		}
	} else {
		b.evicted.set(m.To, b.seq) // no history: every message is evicted at once
		b.oldest = b.seq + 1
	}
	if m.ID != "" {
		b.ids.set(m.ID, b.seq)
	}
	if m.Key != "" {
		b.keysMu.Lock()
		b.keys.remember(m, b.seq)
		b.keysMu.Unlock()
	}
	deliver := b.deliver
	b.mu.Unlock()
	if deliver != nil {
		deliver(m)
	}
}

// evictOldest drops the oldest message from history. Callers hold mu.
func (b *memoryBroker) evictOldest() {
	i := b.oldest % uint64(len(b.ring))
	m := b.ring[i]
	b.ring[i] = nil
	b.bytes -= messageSize(m)
	b.evicted.set(m.To, b.oldest)
	b.oldest++
}

// Snapshot is Broker.Snapshot (see Publish).
func (b *memoryBroker) Snapshot(ctx context.Context, until string, to []Target, fn func(*Message) bool) error {
	return b.snapshot(ctx, until, to, func(e *envelope) bool { return fn(&e.Message) })
}

// snapshot calls fn with the envelopes of the newest message of each
// state of the audiences in to, up to until, in position order.
func (b *memoryBroker) snapshot(ctx context.Context, until string, to []Target, fn func(*envelope) bool) error {
	end, ok := b.parse(until)
	if !ok {
		return nil
	}
	b.keysMu.RLock()
	out := b.keys.collect(end, to)
	b.keysMu.RUnlock()
	if len(to) > 1 { // each audience's states are in position order: interleave them
		slices.SortFunc(out, func(x, y keyState) int { return cmp.Compare(x.seq, y.seq) })
	}
	for _, k := range out {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !fn(k.m) {
			break
		}
	}
	return nil
}

func (b *memoryBroker) pos(seq uint64) string {
	var buf [epochLen + 1 + 20]byte
	p := append(buf[:0], b.epoch...)
	p = append(p, '-')
	return string(strconv.AppendUint(p, seq, 10))
}

// Subscribe is Broker.Subscribe (see Publish). The broker has no gaps and
// no epochs to report: its history lives and dies with it.
func (b *memoryBroker) Subscribe(h BrokerHandler) (string, error) {
	return b.subscribe(func(e *envelope) { h.HandleMessage(&e.Message) }), nil
}

// subscribe makes deliver the receiver of every message published from now
// on and returns the position before the first: "<epoch>-0" before any.
func (b *memoryBroker) subscribe(deliver func(*envelope)) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deliver = deliver
	return b.pos(b.seq)
}

// Replay resumes from a position older than the history when none of the
// audiences in to lost a message after it: what history holds is then all
// that the stream may have missed.
func (b *memoryBroker) Replay(ctx context.Context, after, until string, to []Target, fn func(*Message) bool) (bool, string, error) {
	return b.replay(ctx, after, until, to, func(e *envelope) bool { return fn(&e.Message) })
}

// replay is Replay, with the envelopes history keeps.
func (b *memoryBroker) replay(ctx context.Context, after, until string, to []Target, fn func(*envelope) bool) (bool, string, error) {
	b.mu.Lock()
	var end uint64 // until as a sequence number; "" is before the first message
	if until != "" {
		var ok bool
		if end, ok = b.parse(until); !ok || end > b.seq {
			b.mu.Unlock()
			return false, "unknown", nil
		}
	}
	start, ok := b.parse(after)
	if !ok && after != "" {
		start, ok = b.ids.get(after) // an application-set ID
	}
	if !ok {
		b.mu.Unlock()
		if isPosition(after) {
			return false, "epoch", nil
		}
		return false, "unknown", nil
	}
	switch {
	case start > b.seq:
		b.mu.Unlock()
		return false, "unknown", nil
	case start > end:
		b.mu.Unlock()
		return false, "ahead", nil
	case start == end:
		b.mu.Unlock()
		return true, "", nil
	case start+1 < b.oldest && b.lost(start, to):
		b.mu.Unlock()
		return false, "expired", nil
	}
	from := max(start+1, b.oldest)
	// Copy the references out so fn, which writes to the network, runs
	// without the lock.
	var out []*envelope
	if from <= end {
		out = make([]*envelope, 0, end+1-from)
	}
	for s := from; s <= end; s++ {
		out = append(out, b.ring[s%uint64(len(b.ring))])
	}
	b.mu.Unlock()
	for _, m := range out {
		if err := ctx.Err(); err != nil {
			return true, "", err
		}
		if !fn(m) {
			break
		}
	}
	return true, "", nil
}

// lost reports whether a message after start for one of the audiences in
// to has left history; with no audiences, whether any has. Callers hold mu.
func (b *memoryBroker) lost(start uint64, to []Target) bool {
	if len(to) == 0 {
		return true
	}
	for _, t := range to {
		if b.evicted.bound(t) > start {
			return true
		}
	}
	return false
}

// ComparePositions orders two positions of this broker's epoch; a may also
// be an application-set ID the broker remembers.
func (b *memoryBroker) ComparePositions(a, c string) (int, bool) {
	x, ok := b.parse(a)
	if !ok {
		b.mu.Lock()
		x, ok = b.ids.get(a)
		b.mu.Unlock()
	}
	y, ok2 := b.parse(c)
	if !ok || !ok2 {
		return 0, false
	}
	return cmp.Compare(x, y), true
}

// EpochOrigin returns "<epoch>-0", the position before the first message,
// for a position of this broker's epoch: its only one.
func (b *memoryBroker) EpochOrigin(pos string) (string, bool) {
	if _, ok := b.parse(pos); !ok {
		return "", false
	}
	return b.pos(0), true
}

// parse reads a position of this broker's epoch.
func (b *memoryBroker) parse(pos string) (uint64, bool) {
	rest, ok := strings.CutPrefix(pos, b.epoch)
	if !ok || len(rest) < 2 || rest[0] != '-' {
		return 0, false
	}
	seq, err := strconv.ParseUint(rest[1:], 10, 64)
	return seq, err == nil
}

// isPosition reports whether s has the shape of a memory broker position,
// of any epoch.
func isPosition(s string) bool {
	epoch, seq, ok := strings.Cut(s, "-")
	if !ok || len(epoch) != epochLen || seq == "" {
		return false
	}
	for _, c := range []byte(epoch) {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	for _, c := range []byte(seq) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (b *memoryBroker) Close() error { return nil }
