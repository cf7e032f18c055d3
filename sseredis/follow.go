package sseredis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssehub/sse"
)

// Following: each Broker's follower is subscribed (Redis Pub/Sub) to the
// stream's push channel, on which every publish script pushes its batch
// with the id of the entry before it, and to a wake channel of its own.
// A push that follows what the follower delivered is delivered as it is:
// one message read per batch, whatever the number of nodes, and no command
// sent. Anything else makes the follower read the stream (the fetch
// script, which also checks the epoch): a push that does not follow (the
// follower missed one), a push of another epoch, a new subscription (after
// a reconnect, pushes were lost meanwhile), a wake (a replay found Redis
// moved past what the hub was delivered), and Options.Block without a push
// (a Redis that lost its data while nobody published). The stream is the
// history: a follower that lost its subscription catches up from its last
// id, exactly, or finds the entries trimmed or lost and tells its hub.

// followState is where a follower stands: the epoch and id of the last
// entry it delivered, and the id of the last control.
type followState struct {
	epoch     string
	last, ctl streamID
}

// Subscribe starts the broker's follower, which tells h, on one goroutine
// and in order, of every entry added to the stream after the newest one
// now (HandleMessage), of entries it will never deliver (HandleGap):
// entries trimmed before it read them, and a new epoch, since the follower
// cannot tell whether Redis lost entries of the old one that it had not
// read yet; and of the controls sent after now (HandleDisconnect). It
// never calls HandleEpoch. It returns the position of that newest entry
// ("<epoch>-0-0" for an empty stream).
func (b *Broker) Subscribe(h sse.BrokerHandler) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return "", ErrClosed
	}
	if b.subscribed {
		return "", errors.New("sseredis: Subscribe called twice")
	}
	ctx, cancel := context.WithTimeout(b.ctx, publishTimeout)
	defer cancel()
	res, err := headScript.Run(ctx, b.client, []string{b.stream, b.epochKey, b.controlKey}, newEpoch()).StringSlice()
	if err != nil {
		return "", fmt.Errorf("sseredis: subscribe: %w", err)
	}
	if len(res) != 4 {
		return "", fmt.Errorf("sseredis: subscribe: unexpected reply %q", res)
	}
	last, ok1 := parseID(res[1])
	base, ok2 := parseID(res[2])
	ctl, ok3 := parseID(res[3])
	if !ok1 || !ok2 || !ok3 {
		return "", fmt.Errorf("sseredis: subscribe: bad stream id in %q", res)
	}
	b.subscribed = true
	b.reader, b.owned = readerFor(b.client)
	// The subscription is made now (an error is the follower's to retry):
	// the follower reads the stream once it is confirmed, so nothing
	// published after the head read above is missed.
	b.ps = b.reader.Subscribe(b.ctx, b.pushChannel, b.wakeChannel)
	b.lineage.Store(&lineage{res[0], base})
	b.wg.Add(1)
	go b.follow(h, b.ps, &followState{res[0], last, ctl})
	return res[0] + "-" + last.String(), nil
}

// follow delivers the pushes and, when they do not follow, what the
// stream holds, until the broker is closed, retrying with backoff when
// Redis cannot be reached.
func (b *Broker) follow(h sse.BrokerHandler, ps *redis.PubSub, st *followState) {
	defer b.wg.Done()
	var backoff time.Duration
	failing := false
	fail := func(what string, err error) {
		if b.ctx.Err() != nil {
			return
		}
		if !failing {
			b.log.Warn("sseredis: follower lost Redis, retrying", "op", what, "err", err)
			failing = true
		}
		backoff = min(max(2*backoff, 50*time.Millisecond), maxBackoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-b.ctx.Done():
			t.Stop()
		}
	}
	fetch := true
	for b.ctx.Err() == nil {
		if fetch {
			if err := b.catchUp(h, st); err != nil {
				fail("fetch", err)
				continue
			}
			fetch = false
			if failing {
				b.log.Info("sseredis: follower reconnected", "last", st.epoch+"-"+st.last.String())
				failing, backoff = false, 0
			}
		}
		msg, err := ps.ReceiveTimeout(b.ctx, b.block)
		if err != nil {
			fetch = true
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				fail("subscribe", err)
				continue
			}
			// Nothing for Options.Block: read the stream (a Redis that
			// lost its data while nobody published), and ping the
			// subscription, whose Pong comes next, so that a connection
			// that died silently fails and is made anew.
			if err := ps.Ping(b.ctx); err != nil {
				fail("subscribe", err)
			}
			continue
		}
		switch msg := msg.(type) {
		case *redis.Subscription:
			// (Re)subscribed: what was pushed before is read from the
			// stream.
			fetch = fetch || msg.Kind == "subscribe" && msg.Channel == b.pushChannel
		case *redis.Message:
			if msg.Channel != b.pushChannel || !b.push(h, msg.Payload, st) {
				fetch = true
			}
		}
	}
}

// catchUp reads the stream after the follower's last id, and the control
// stream after its last control, until it has delivered everything there
// is.
func (b *Broker) catchUp(h sse.BrokerHandler, st *followState) error {
	for {
		reply, err := fetchScript.Run(b.ctx, b.reader, []string{b.stream, b.epochKey, b.metaKey, b.controlKey},
			newEpoch(), st.epoch, st.last.String(), fetchCount, st.ctl.String(), pageBytes).Slice()
		if err != nil {
			return err
		}
		kind, _ := index(reply, 0).(string)
		word, _ := index(reply, 1).(string)
		switch kind {
		case "epoch":
			// Redis lost data (flushed, restarted without it, failed over
			// to a replica that missed writes: another node then started
			// the epoch). Entries of the old epoch that this node had not
			// read may be gone, and nothing tells which: the hub ends its
			// streams, and their clients resume from what they received,
			// with a reset ("epoch") and the new epoch from its start. The
			// follower carries on from the new epoch's base, as every
			// node does: positions of the new epoch mean the same entries
			// everywhere.
			base, ok := parseID(str(index(reply, 2)))
			if !ok || word == "" {
				return fmt.Errorf("unexpected reply %v", reply)
			}
			b.log.Warn("sseredis: Redis has a new epoch (it lost data): the hub ends its streams; their clients resume with a reset",
				"old", st.epoch, "delivered", st.epoch+"-"+st.last.String(), "new", word+"-"+base.String())
			st.epoch, st.last = word, base
			b.lineage.Store(&lineage{word, base})
			h.HandleGap(st.epoch + "-" + st.last.String())
			continue
		case "behind":
			top, _ := parseID(str(index(reply, 2)))
			b.log.Error("sseredis: the stream has lost what this node delivered (a failover lost writes?): starting a new epoch",
				"delivered", st.epoch+"-"+st.last.String(), "stream_end", top.String())
			if err := bumpScript.Run(b.ctx, b.reader, []string{b.stream, b.epochKey}, newEpoch(), st.epoch, st.last.String()).Err(); err != nil {
				return err
			}
			continue
		case "ok":
		default:
			return fmt.Errorf("unexpected reply %v", reply)
		}
		if gap := str(index(reply, 2)); gap != "" {
			// Entries were trimmed before this node delivered them: tell
			// the hub, which ends its streams so that their clients
			// resume, exactly or with a reset, from what they received.
			b.log.Error("sseredis: the follower fell behind the history: entries were trimmed before this node delivered them; the hub ends its streams",
				"delivered", st.epoch+"-"+st.last.String(), "trimmed_to", gap)
			h.HandleGap(st.epoch + "-" + gap)
		}
		entries, _ := index(reply, 3).([]any)
		for _, e := range entries {
			id, evs, err := decodeEntry(e, st.epoch)
			if err != nil {
				b.log.Error("sseredis: skipping a stream entry", "err", err)
			}
			for _, ev := range evs {
				if ev.id.compare(st.last) > 0 { // the first entry may hold events delivered
					h.HandleMessage(ev.m)
				}
			}
			if id.compare(st.last) > 0 {
				st.last = id
			}
		}
		controls, _ := index(reply, 4).([]any)
		for _, c := range controls {
			pair, _ := c.([]any)
			fields, _ := index(pair, 1).([]any)
			id, ok := parseID(str(index(pair, 0)))
			if !ok || id.compare(st.ctl) <= 0 {
				continue
			}
			st.ctl = id
			if len(fields) == 2 && str(fields[0]) == "c" {
				h.HandleDisconnect(str(fields[1]))
			} else {
				b.log.Error("sseredis: skipping a malformed control", "control", c)
			}
		}
		if str(index(reply, 5)) == "" && len(controls) < fetchCount {
			return nil
		}
	}
}

// push delivers a pushed batch or control (see lua/publish.lua and
// lua/control.lua). It returns false when the follower must read the
// stream instead: a batch of another epoch, or one that does not follow
// the last entry delivered.
func (b *Broker) push(h sse.BrokerHandler, p string, st *followState) bool {
	kind, rest, _ := strings.Cut(p, " ")
	switch kind {
	case "c":
		idText, clientID, _ := strings.Cut(rest, " ")
		id, ok := parseID(idText)
		if !ok {
			return false
		}
		if id.compare(st.ctl) > 0 {
			st.ctl = id
			h.HandleDisconnect(clientID)
		}
		return true
	case "e":
	default:
		return false
	}
	// "<epoch> <prev> <id> <n>\n" and the records.
	head, records, ok := strings.Cut(rest, "\n")
	f := strings.Split(head, " ")
	if !ok || len(f) != 4 || f[0] != st.epoch {
		return false
	}
	prev, ok1 := parseID(f[1])
	id, ok2 := parseID(f[2])
	n, ok3 := parseLen(f[3], 1<<20)
	if !ok1 || !ok2 || !ok3 || n == 0 {
		b.log.Error("sseredis: a malformed push: reading the stream instead", "head", head)
		return false
	}
	if id.compare(st.last) <= 0 {
		return true // delivered already, from the stream
	}
	if prev != st.last {
		return false // one was missed: read the stream
	}
	evs, err := decodeRecords(records, st.epoch, id, n)
	if err != nil {
		b.log.Error("sseredis: a malformed push: reading the stream instead", "err", err)
		return false
	}
	for _, e := range evs {
		h.HandleMessage(e.m)
	}
	st.last = id
	return true
}
