package sse

import (
	"cmp"
	"container/list"
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
// synchronously, under its lock, so deliveries are in position order.
type memoryBroker struct {
	epoch string // 8 lowercase base32 characters, random per broker

	mu      sync.Mutex
	seq     uint64     // the last assigned sequence number; 0 before the first
	ring    []*Message // the last len(ring) messages, message seq at ring[seq%len]
	deliver func(*Message)

	// The newest message of each key, for snapshots: keys indexes the
	// elements of byAge, a list of *keyState from least to most recently
	// updated, bounded by maxKeys.
	keys    map[keyID]*list.Element
	byAge   list.List
	maxKeys int
}

// keyState is the newest message of one key.
type keyState struct {
	id  keyID
	seq uint64
	m   *Message
}

// epochLen is the length of a memory broker's epoch.
const epochLen = 8

var epochEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newMemoryBroker returns a broker that keeps the last history messages
// and the newest message of up to maxKeys keys; zero keeps none (replay
// then only succeeds when nothing was missed; snapshots are empty).
func newMemoryBroker(history, maxKeys int) *memoryBroker {
	var raw [5]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails (Go 1.24)
	b := &memoryBroker{
		epoch:   epochEncoding.EncodeToString(raw[:]),
		keys:    make(map[keyID]*list.Element),
		maxKeys: maxKeys,
	}
	if history > 0 {
		b.ring = make([]*Message, history)
	}
	return b
}

func (b *memoryBroker) Publish(_ context.Context, m *Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	m.Pos = b.pos(b.seq)
	m.buildFrame()
	if len(b.ring) > 0 {
		b.ring[b.seq%uint64(len(b.ring))] = m
	}
	if m.Key != "" && b.maxKeys > 0 {
		b.remember(m)
	}
	if b.deliver != nil {
		b.deliver(m)
	}
	return nil
}

// remember makes m the newest message of its key, forgetting the least
// recently updated key when there are too many. Callers hold mu.
func (b *memoryBroker) remember(m *Message) {
	id := m.state()
	if e, ok := b.keys[id]; ok {
		k := e.Value.(*keyState)
		k.seq, k.m = b.seq, m
		b.byAge.MoveToBack(e)
		return
	}
	b.keys[id] = b.byAge.PushBack(&keyState{id: id, seq: b.seq, m: m})
	if b.byAge.Len() > b.maxKeys {
		oldest := b.byAge.Front()
		delete(b.keys, oldest.Value.(*keyState).id)
		b.byAge.Remove(oldest)
	}
}

func (b *memoryBroker) Snapshot(ctx context.Context, until string, fn func(*Message) bool) error {
	b.mu.Lock()
	end, ok := b.parse(until)
	if !ok || b.byAge.Len() == 0 {
		b.mu.Unlock()
		return nil
	}
	out := make([]keyState, 0, b.byAge.Len())
	for e := b.byAge.Front(); e != nil; e = e.Next() {
		if k := e.Value.(*keyState); k.seq <= end {
			out = append(out, *k)
		}
	}
	b.mu.Unlock()
	slices.SortFunc(out, func(x, y keyState) int { return cmp.Compare(x.seq, y.seq) })
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

func (b *memoryBroker) Subscribe(deliver func(*Message)) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deliver = deliver
	return b.pos(b.seq), nil // "<epoch>-0" before the first message
}

func (b *memoryBroker) Replay(ctx context.Context, after, until string, fn func(*Message) bool) (bool, string, error) {
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
	if !ok {
		start, ok = b.findID(after)
	}
	if !ok {
		b.mu.Unlock()
		if isPosition(after) {
			return false, "epoch", nil
		}
		return false, "unknown", nil
	}
	if start > b.seq {
		b.mu.Unlock()
		return false, "unknown", nil
	}
	if start >= end {
		b.mu.Unlock()
		return true, "", nil
	}
	if oldest := b.oldest(); start+1 < oldest {
		b.mu.Unlock()
		return false, "expired", nil
	}
	// Copy the references out so fn, which writes to the network, runs
	// without the lock.
	out := make([]*Message, 0, end-start)
	for s := start + 1; s <= end; s++ {
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

// oldest returns the sequence number of the oldest message in history, or
// seq+1 when the history is empty. Callers hold mu.
func (b *memoryBroker) oldest() uint64 {
	n := uint64(len(b.ring))
	if b.seq < n {
		return 1
	}
	return b.seq - n + 1
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

// findID looks for a message with the application-chosen id, newest first.
// Callers hold mu.
func (b *memoryBroker) findID(id string) (uint64, bool) {
	if id == "" {
		return 0, false
	}
	for s := b.seq; s >= b.oldest() && s > 0; s-- {
		if m := b.ring[s%uint64(len(b.ring))]; m.ID == id {
			return s, true
		}
	}
	return 0, false
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
