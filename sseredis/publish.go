package sseredis

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ssehub/sse"
)

// Publishing is a group commit: a Publish that finds no batch in flight
// sends its event at once, in a script call of its own (so one publisher
// pays one round trip per event, as before); Publish calls that come while
// a batch is in flight queue, and the next batch carries all of them in one
// script call. No timer: a batch leaves as soon as the previous one is
// answered. The caller whose event is first in the queue sends the batch,
// on its own goroutine, so the broker starts no goroutine for it and Close
// waits for none.

// maxBatch bounds the events of one batch (also by History), and
// maxBatchBytes their bodies, so that one script does not hold Redis for
// long (variables for the tests).
var (
	maxBatch      = 256
	maxBatchBytes = 1 << 20
)

// pending is one Publish call waiting for its batch.
type pending struct {
	ctx   context.Context // the caller's: once it is done, the event is not sent
	m     *sse.Message
	err   error
	ready chan struct{} // closed when the batch is answered, or when lead is set
	lead  bool          // under publisher.mu: this caller sends the next batch
	taken bool          // under publisher.mu: in a batch in flight
}

// publisher is the queue of a Broker's Publish calls.
type publisher struct {
	mu      sync.Mutex
	queue   []*pending
	busy    bool        // a caller is sending a batch; invariant: !busy => queue is empty
	batches uint64      // batches sent: each is numbered, for the retry check
	shared  atomic.Bool // the last batch carried more than one event
}

// Publish adds m to the stream and sets m.Pos. It shares a script call with
// the Publish calls of other goroutines queued meanwhile (see above); the
// script trims the stream to History and keeps the eviction record, the
// keyed states and the application-set IDs index, atomically, and pushes
// the batch to every node. A batch is sent with a context of its own (the
// values of the sending call's context, not its cancellation; 10 s; ended
// by Close), so that one caller's cancelled context does not fail the
// others' events. When Redis cannot be reached it fails within the client's
// timeouts (and at most about 10 s when the client honours context
// deadlines); an error may still mean the entry was added if Redis ran the
// script and its reply was lost. A call whose ctx ends before its batch is
// sent is not sent; one whose batch is in flight waits for it.
func (b *Broker) Publish(ctx context.Context, m *sse.Message) error {
	if b.closed.Load() {
		return ErrClosed
	}
	p := &pending{ctx: ctx, m: m, ready: make(chan struct{})}
	q := &b.pub
	q.mu.Lock()
	q.queue = append(q.queue, p)
	lead := !q.busy
	if lead {
		q.busy, p.lead = true, true
	}
	q.mu.Unlock()
	if !lead {
		select {
		case <-p.ready:
		case <-ctx.Done():
			q.mu.Lock()
			if !p.taken && !p.lead {
				for i, x := range q.queue {
					if x == p {
						q.queue = append(q.queue[:i], q.queue[i+1:]...)
						break
					}
				}
				q.mu.Unlock()
				return fmt.Errorf("sseredis: publish: %w", ctx.Err())
			}
			q.mu.Unlock()
			<-p.ready
		}
		if !p.lead {
			return p.err
		}
	}
	b.sendBatch(ctx)
	return p.err
}

// sendBatch sends the queue's first events, the caller's among them, as
// one batch; then it hands the queue to the first caller still waiting,
// which sends the next batch.
func (b *Broker) sendBatch(ctx context.Context) {
	q := &b.pub
	if q.shared.Load() {
		// The last batch carried several events: their callers are
		// likely to publish again at once. Let them queue first, so that
		// the batch takes them (one scheduling round, no timer).
		runtime.Gosched()
	}
	q.mu.Lock()
	var batch, dropped []*pending
	n, size := 0, 0
	limit := min(maxBatch, b.history)
	for n < len(q.queue) && len(batch) < limit && (len(batch) == 0 || size+len(q.queue[n].m.Body) <= maxBatchBytes) {
		p := q.queue[n]
		p.taken = true
		n++
		if p.ctx.Err() != nil { // its caller gave up before it was sent
			dropped = append(dropped, p)
			continue
		}
		size += len(p.m.Body)
		batch = append(batch, p)
	}
	q.shared.Store(len(batch) > 1)
	q.queue = append(q.queue[:0], q.queue[n:]...)
	q.batches++
	no := q.batches
	q.mu.Unlock()

	for _, p := range dropped {
		p.err = fmt.Errorf("sseredis: publish: %w", p.ctx.Err())
		if !p.lead {
			close(p.ready)
		}
	}
	if len(batch) > 0 {
		msgs := make([]*sse.Message, len(batch))
		for i, p := range batch {
			msgs[i] = p.m
		}
		err := b.publishBatch(ctx, no, msgs)
		for _, p := range batch {
			p.err = err
			if !p.lead {
				close(p.ready)
			}
		}
	}

	q.mu.Lock()
	if len(q.queue) == 0 {
		q.busy = false
	} else {
		next := q.queue[0]
		next.lead = true
		close(next.ready)
	}
	q.mu.Unlock()
}

// publishBatch runs the publish script for msgs, numbered no among this
// broker's batches (a call with the number of the last batch Redis ran is
// answered from it), and sets their positions.
func (b *Broker) publishBatch(ctx context.Context, no uint64, msgs []*sse.Message) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	defer context.AfterFunc(b.ctx, cancel)() // Close ends it too
	keys := []string{b.stream, b.epochKey, b.metaKey, b.evictedKey, b.evictedOrderKey, b.idsKey, b.idsOrderKey, b.trimKey}
	// The records, one after the other; the trim list's element after
	// "<id>": the audience of a lone event, else the number of events and,
	// for each audience, the index of its newest event and its name; and
	// the events with an ID or a Key (see lua/publish.lua).
	var records, trim []byte
	args := make([]any, 0, 11)
	args = append(args, newEpoch(), b.history, b.keys, maxEvicted, maxIDs, b.pushChannel, b.pubField, no, len(msgs), nil, nil)
	newest := make(map[string]int, 1)
	var order []string
	var states map[string]int // audience -> index (1-based) in keys of its state hash
	for k, m := range msgs {
		aud := audience(m.To)
		records = appendRecord(records, aud, m)
		if _, ok := newest[aud]; !ok {
			order = append(order, aud)
		}
		newest[aud] = k
		if m.ID == "" && m.Key == "" {
			continue
		}
		st, state := 0, ""
		if m.Key != "" && b.keys > 0 {
			var ok bool
			if st, ok = states[aud]; !ok {
				keys = append(keys, b.stateKey(aud), b.stateOrderKey(aud))
				st = len(keys) - 1
				if states == nil {
					states = map[string]int{}
				}
				states[aud] = st
			}
			state = strconv.Itoa(len(m.ID)) + "|" + m.ID + string(m.Body)
		}
		args = append(args, k, m.ID, m.Key, st, state)
	}
	if len(msgs) == 1 {
		trim = append(append(trim, ' '), order[0]...)
	} else {
		trim = strconv.AppendInt(append(trim, ' '), int64(len(msgs)), 10)
		for _, aud := range order {
			trim = fmt.Appendf(trim, " %d %d %s", newest[aud], len(aud), aud)
		}
	}
	args[9], args[10] = records, trim
	res, err := publishScript.Run(ctx, b.client, keys, args...).Text()
	if err != nil {
		return fmt.Errorf("sseredis: publish: %w", err)
	}
	epoch, idText, _ := strings.Cut(res, " ")
	id, ok := parseID(idText)
	if !ok || epoch == "" || id.seq+1 < uint64(len(msgs)) {
		return fmt.Errorf("sseredis: publish: unexpected reply %q", res)
	}
	for k, m := range msgs {
		m.Pos = epoch + "-" + eventID(id, len(msgs), k).String()
	}
	return nil
}

// PublishDisconnect has every hub of the stream end clientID's streams
// (sse.ControlBroker): it adds a control to the stream "<Stream>:control"
// and pushes it to every node; a node that misses the push (its link to
// Redis broke) reads the control stream when it catches up. A control is
// not an event: it takes no position and stays out of history and the
// eviction record. The control stream keeps about the newest 4,096
// controls, so a node whose link to Redis breaks for a while still gets
// those sent meanwhile when it reconnects.
func (b *Broker) PublishDisconnect(ctx context.Context, clientID string) error {
	if b.closed.Load() {
		return ErrClosed
	}
	err := controlScript.Run(ctx, b.client, []string{b.controlKey}, b.pushChannel, clientID, controlLen).Err()
	if err != nil {
		return fmt.Errorf("sseredis: publish disconnect: %w", err)
	}
	return nil
}
