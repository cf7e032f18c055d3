package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/ssehub/sse/bench/internal/redisproc"
)

// The Redis faults of a -redis run, injected in turn, one every
// -redis-faults. With a Redis the soak did not start, only stalls.
var redisFaults = []string{"failover", "flushall", "stall", "freeze", "restart"}

// injectRedisFaults injects the Redis faults in turn, every every, until
// done.
func (r *run) injectRedisFaults(rs *redisServer, every, pause time.Duration, done <-chan struct{}) {
	rng := rand.New(rand.NewPCG(r.seed, 1<<42))
	kinds := redisFaults
	if rs.primary == nil {
		kinds = []string{"stall"}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-done:
			return
		case <-t.C:
		}
		switch kinds[i%len(kinds)] {
		case "failover":
			r.failover(rs, rng)
		case "flushall":
			r.flushAll(rs, rng)
		case "stall":
			r.stall(pause, done)
		case "freeze":
			r.freeze(rs, time.Duration(2000+rng.IntN(2000))*time.Millisecond)
		case "restart":
			r.restart(rs)
		}
	}
}

// faultErrorf records that a fault could not be injected as it should: the
// soak fails, since it then did not test what it says.
func (r *run) faultErrorf(format string, args ...any) {
	r.faultErrs.Add(1)
	r.logf("fault: "+format, args...)
}

// keptEpoch checks that Redis kept its epoch across a fault that loses
// nothing (a restart from an fsync'd append-only file, a freeze): if not,
// it lost data the ledger does not know of.
func (r *run) keptEpoch(rs *redisServer, what, before string) {
	_, after, err := rs.contents(rs.primaryAddr())
	if err != nil {
		r.faultErrorf("%s: reading Redis afterwards: %v", what, err)
		return
	}
	if after != before {
		r.faultErrorf("%s: Redis lost data: epoch %q, before %q", what, after, before)
	}
}

func (rs *redisServer) primaryAddr() string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.addr
}

// restart stops Redis as an operator would and starts it again after
// 0.5 s: with its fsync'd append-only file it keeps everything, its epoch
// too.
func (r *run) restart(rs *redisServer) {
	_, before, err := rs.contents(rs.primaryAddr())
	if err != nil {
		r.faultErrorf("restart: reading Redis: %v", err)
		return
	}
	if err := rs.primary.Restart(500 * time.Millisecond); err != nil {
		r.faultErrorf("restart: %v", err)
		return
	}
	r.faults.restarts.Add(1)
	r.debugf("redis restarted")
	r.keptEpoch(rs, "restart", before)
}

// freeze stops Redis (SIGSTOP) for d, then lets it go on (SIGCONT): it
// answers nothing meanwhile, but the connections to it stay open.
func (r *run) freeze(rs *redisServer, d time.Duration) {
	_, before, err := rs.contents(rs.primaryAddr())
	if err != nil {
		r.faultErrorf("freeze: reading Redis: %v", err)
		return
	}
	if err := rs.primary.Signal(syscall.SIGSTOP); err != nil {
		r.faultErrorf("freeze: %v", err)
		return
	}
	r.frozen.Store(true)
	time.Sleep(d)
	r.frozen.Store(false)
	if err := rs.primary.Signal(syscall.SIGCONT); err != nil {
		r.faultErrorf("freeze: SIGCONT: %v", err)
		return
	}
	r.faults.freezes.Add(1)
	r.debugf("redis frozen for %v", d)
	r.keptEpoch(rs, "freeze", before)
}

// flushAll empties Redis (FLUSHALL) between two publishes, while both
// nodes follow and serve: every entry the stream held is lost, its epoch
// too. Every other time (from the second) one node's link is cut for a
// moment before and until just after, so that it lags: it had not
// delivered everything lost.
func (r *run) flushAll(rs *redisServer, rng *rand.Rand) {
	lag := r.lag(rng, r.faults.flushes.Load()%2 == 1)
	defer r.unlag(lag)
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	addr := rs.primaryAddr()
	held, _, err := rs.contents(addr)
	if err != nil {
		r.faultErrorf("flushall: reading Redis: %v", err)
		return
	}
	n := r.ledger.recordLoss("flushall", minKey(held, r.ledger.published()+1), nil)
	c := rs.client(addr)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.FlushAll(ctx).Err(); err != nil {
		r.faultErrorf("flushall: %v (the ledger counts its events as lost)", err)
		return
	}
	r.faults.flushes.Add(1)
	r.debugf("redis flushed: %d entries, %d of them acknowledged", len(held), n)
}

// stall cuts one node's link to Redis for pause (longer if need be),
// while the publisher goes on through the other node, each node in turn.
// The first two stalls, and every other two after, also publish a burst
// of 1.5 × history broadcasts through the other node, so that the stalled
// node's follower falls behind the trimmed history.
func (r *run) stall(pause time.Duration, done <-chan struct{}) {
	s := int(r.faults.pauses.Add(1) - 1)
	n, burst := s%len(r.nodes), s/2%2 == 0
	other := (n + 1) % len(r.nodes)
	end := time.Now().Add(pause)
	r.cut(n)
	r.debugf("link of node %d to redis stalled (burst %v)", n, burst)
	if burst && other != n {
		time.Sleep(100 * time.Millisecond)
		for range r.history * 3 / 2 {
			r.publishOne(0, "", other)
		}
		r.faults.stallBursts.Add(1)
		end = later(end, time.Now().Add(500*time.Millisecond))
	}
	select {
	case <-done:
	case <-time.After(time.Until(end)):
	}
	r.nodes[n].proxy.pause(false)
	r.stalled.Store(0)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// failover fails Redis over to its replica, which misses the last writes:
// the replica's link is cut for a moment while the nodes publish and
// deliver, the primary is then killed (and what it had not sent the
// replica with it), the replica promoted and both nodes' proxies pointed
// at it. Every other time (from the first) one node's own link is cut
// meanwhile, so that it lags: it had not delivered what was lost. The old
// primary comes back as an empty replica of the new one, for the next
// failover.
//
// The publisher waits from the kill until both nodes' followers are in
// the new epoch: a publish between the promotion and the first follower's
// notice would take a position of the old epoch, which a node that had
// nothing to lose would deliver (see "What replication can and cannot
// promise" in sseredis's doc), and then reset.
func (r *run) failover(rs *redisServer, rng *rand.Rand) {
	rs.mu.Lock()
	old, replica, repl := rs.primary, rs.replica, rs.repl
	rs.mu.Unlock()
	if replica == nil {
		r.faultErrorf("failover: no replica")
		return
	}
	if err := rs.awaitSync(replica, 5*time.Second); err != nil {
		r.faultErrorf("failover: %v", err)
		return
	}
	repl.pause(true)
	lag := r.lag(rng, r.faults.failovers.Load()%2 == 0) // and the writes the replica misses

	r.pubMu.Lock()
	ok := r.failOver(rs, old, replica, repl, lag)
	r.pubMu.Unlock()
	if !ok {
		return
	}

	// The old primary comes back, empty, as a replica of the new one.
	pr, err := newProxy(replica.Addr)
	if err != nil {
		r.faultErrorf("failover: %v", err)
		return
	}
	if err := old.Rejoin(pr.addr()); err != nil {
		pr.close()
		r.faultErrorf("failover: the old primary rejoining: %v", err)
		return
	}
	rs.mu.Lock()
	rs.replica, rs.repl = old, pr
	rs.mu.Unlock()
}

// failOver is the part of failover during which nothing is published. It
// returns false if it could not fail over.
func (r *run) failOver(rs *redisServer, old, replica *redisproc.Server, repl *proxy, lag int) bool {
	// Some follower must have delivered the newest write: a loss no
	// follower saw cannot be told from nothing (sseredis's doc says so).
	newest := int64(r.ledger.lastCertain())
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		seen := false
		for i, n := range r.nodes {
			seen = seen || i != lag && n.tap.delivered.Load() >= newest
		}
		if seen {
			break
		}
		if time.Now().After(deadline) {
			r.logf("failover: no follower delivered event %d within 3 s", newest)
			break
		}
	}
	before, e1, err := rs.contents(old.Addr)
	if err != nil {
		r.faultErrorf("failover: reading the primary: %v", err)
		repl.pause(false)
		r.unlag(lag)
		return false
	}
	old.Kill()
	repl.close() // what the replica was not sent is gone
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := replica.Promote(ctx); err != nil {
		r.faultErrorf("failover: promoting the replica: %v", err)
	}
	after, e2, err := rs.contents(replica.Addr)
	if err != nil {
		r.faultErrorf("failover: reading the new primary: %v", err)
	}
	// The replica holds a prefix of what the primary had: everything after
	// its newest entry, and whatever else the primary held, is lost.
	newest = 0
	for g := range after {
		newest = max(newest, int64(g))
	}
	from := minKey(before, int(newest)+1)
	from = min(from, int(newest)+1)
	n := 0
	for g := range before {
		if !after[g] {
			n++
		}
	}
	lost := n > 0 || e1 != e2
	if lost {
		acked := r.ledger.recordLoss("failover", from, after)
		r.debugf("failover: the replica missed %d of the primary's %d entries, and %d acknowledged events in all (epoch %q, was %q)", n, len(before), acked, e2, e1)
	}
	rs.mu.Lock()
	rs.primary, rs.replica, rs.repl, rs.addr = replica, nil, nil, replica.Addr
	rs.mu.Unlock()
	for _, n := range r.nodes {
		n.proxy.redirect(replica.Addr)
	}
	r.unlag(lag)
	r.faults.failovers.Add(1)
	if !lost {
		return true
	}
	word := epochWord(e1)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		moved := true
		for _, n := range r.nodes {
			e := n.tap.epoch.Load()
			moved = moved && e != nil && *e != word
		}
		if moved {
			return true
		}
		if time.Now().After(deadline) {
			r.logf("failover: the nodes were not all in a new epoch within 5 s")
			return true
		}
	}
}

// lag waits 0.3 to 1 s while the publisher goes on; with cut, it cuts a
// random node's link to Redis meanwhile, and the publisher goes on through
// the other: that node lags. It returns the node, or -1.
func (r *run) lag(rng *rand.Rand, cut bool) int {
	lag := -1
	if cut {
		lag = rng.IntN(len(r.nodes))
		r.cut(lag)
		r.debugf("node %d lags", lag)
	}
	time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
	return lag
}

// cut cuts node n's link to Redis between two publishes: the next ones go
// through the other node.
func (r *run) cut(n int) {
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	r.stalled.Store(int32(n + 1))
	r.nodes[n].proxy.pause(true)
}

func (r *run) unlag(lag int) {
	if lag >= 0 {
		r.nodes[lag].proxy.pause(false)
		r.stalled.Store(0)
	}
}

// minKey returns the least key of m, or none if m is empty.
func minKey(m map[int]bool, none int) int {
	least := none
	for k := range m {
		least = min(least, k)
	}
	return least
}

// watchFollowers logs, with -v, each node's follower that told its hub
// nothing for 3 s while publishes went on.
func (r *run) watchFollowers(done <-chan struct{}) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	quiet := make([]bool, len(r.nodes))
	dumped := make([]bool, len(r.nodes))
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		for i, n := range r.nodes {
			if int(r.stalled.Load()) == i+1 || r.frozen.Load() {
				n.tap.lastNews.Store(time.Now().UnixNano()) // its silence is the fault's
				continue
			}
			since := time.Since(time.Unix(0, n.tap.lastNews.Load()))
			behind := int64(r.ledger.lastCertain()) > n.tap.delivered.Load()
			switch {
			case since > 3*time.Second && behind && !quiet[i]:
				quiet[i] = true
				r.logf("node %d: its follower told nothing for %v; it delivered event %d, %d was published",
					i, since.Round(time.Millisecond), n.tap.delivered.Load(), r.ledger.lastCertain())
			case since > 6*time.Second && behind && quiet[i] && !dumped[i]:
				dumped[i] = true
				buf := make([]byte, 4<<20)
				name := fmt.Sprintf("%s/soak-%d-node%d-stacks.txt", os.TempDir(), r.seed, i)
				if err := os.WriteFile(name, buf[:runtime.Stack(buf, true)], 0o644); err == nil {
					r.logf("node %d: its follower told nothing for %v: the goroutines are in %s", i, since.Round(time.Millisecond), name)
				}
			case since < time.Second && quiet[i]:
				quiet[i] = false
				r.logf("node %d: its follower goes on, at event %d", i, n.tap.delivered.Load())
			}
		}
	}
}
