// Package sseredis is an [sse.Broker] on a Redis Stream, so that hubs on
// several nodes deliver the same events in the same order and any node
// serves a client's replay, whichever node it was connected to before.
//
// Two nodes, here in one process for the sake of the example (in
// production each machine runs one, with the same Redis and Stream):
//
//	func main() {
//		rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//		defer rdb.Close()
//		var hubs []*sse.Hub
//		for _, addr := range []string{":8081", ":8082"} {
//			broker, err := sseredis.New(rdb, sseredis.Options{Stream: "app:events"})
//			if err != nil {
//				log.Fatal(err)
//			}
//			hub, err := sse.NewHub(sse.Config{Broker: broker})
//			if err != nil {
//				log.Fatal(err)
//			}
//			defer hub.Shutdown(context.Background()) // closes its broker
//			go http.ListenAndServe(addr, hub)
//			hubs = append(hubs, hub)
//		}
//		// A broadcast on one node reaches the streams of both, in the same
//		// order; a client that moves from :8081 to :8082 resumes with its
//		// Last-Event-ID, without a gap or a duplicate.
//		for i := 0; ; i++ {
//			if _, err := hubs[i%2].Broadcast(sse.Event{Data: []byte("tick")}); err != nil {
//				log.Print(err) // Redis unreachable: nothing was sent
//			}
//			time.Sleep(time.Second)
//		}
//	}
//
// # How it works
//
// Publish runs one Lua script that adds the event to the stream (XADD),
// trims the stream to Options.History entries, records for each trimmed
// entry the newest id its audience (the broadcast, a topic, a client ID)
// lost, and, for an event with a Key, keeps it as its audience's state
// (at most Options.Keys per audience). It is atomic, so the trim and the
// eviction record never disagree. Each Broker runs one follower goroutine
// that reads the stream after its last id (a blocking XREAD wakes it) and
// delivers in order; when Redis is unreachable it retries with backoff
// and continues from its last id, so a node that loses Redis for a while
// catches up with everything Redis kept. Replay reads the entries after a
// Last-Event-ID with XRANGE, in one script with the checks that decide
// whether the resume is exact.
//
// Positions are "<epoch>-<stream id>", for example
// "k3x9p2ab-1733061234567-0", at most 43 bytes. The epoch is a random word
// kept in Redis ("<Stream>:epoch"), created when missing: a Redis that lost
// its data (flushed, or restarted without persistence) gets a new one, and
// a client resuming with an id from before is reset with reason "epoch".
//
// The keys, for Stream "sse:events": the stream itself; "sse:events:epoch"
// (the epoch and the stream id its lineage starts after, created inside
// the scripts when missing, so atomically like SET NX); "sse:events:meta"
// (the newest trimmed id, the forgotten audiences' bound, a counter);
// "sse:events:evicted" and "sse:events:evicted-order" (the eviction
// record); "sse:events:state:<audience>" and
// "sse:events:state-order:<audience>" (keyed states); "sse:events:ids" and
// "sse:events:ids-order" (application-set IDs); short-lived
// "sse:events:pub:<token>" keys that make a retried Publish idempotent.
//
// # What replication can and cannot promise
//
// Redis replication is asynchronous: a primary acknowledges an XADD before
// its replicas have it, and a failover to a replica can lose writes that
// were acknowledged (Publish returned nil, and some nodes may even have
// delivered them). Persistence has the same window: a restart from an RDB
// snapshot, or from an AOF not fsynced on every write, comes back without
// the latest writes. The broker cannot undo that, but it turns it into a
// reset, never a silent gap: a follower that finds the stream no longer
// holding the last entry it delivered (the stream ends before it, or the
// entry is gone although nothing trimmed it) starts a new epoch in Redis
// and carries on after the newest entry it had that Redis still holds;
// every other node moves to the new epoch when it sees it, and clients
// holding ids of the old one are reset with "epoch". A Replay from an id
// that Redis neither holds nor trimmed is answered "unknown".
//
// What stays out of reach: writes lost before any follower delivered them
// are lost without a trace (no stream received them, so no client has a
// gap, but their publishers were told they succeeded); and the check runs
// when a follower reads, so a client that resumes on a node before its
// follower noticed the loss may be replayed from the new primary's history
// for an id it still holds. Where acknowledged writes must survive a
// failover, run Redis with WAIT-based or synchronous replication (outside
// this broker); where a restart must not reset clients, enable AOF with
// appendfsync always: the epoch and the history then survive it and clients
// resume exactly.
//
// # Limits
//
//   - Application-set event IDs (sse.Event.ID) are indexed, the newest
//     65,536 of them: a Last-Event-ID that is one resumes like the
//     position of its event; one forgotten, or one that has the shape of a
//     position, is reset ("unknown", "epoch"). ComparePositions cannot
//     order them (see there).
//   - A node whose follower falls more than History entries behind (cut off
//     from Redis while other nodes publish) cannot deliver the trimmed
//     entries: the broker logs it at Error and reports it to the hub
//     (sse.BrokerHandler.HandleGap), which ends its streams; their clients resume from
//     what they received, checked against the eviction record (exact, or
//     one reset). Keep History above what is published during the outages
//     you expect, or every such outage ends a node's streams.
//   - The eviction record remembers 65,536 audiences, folding the least
//     recently evicted into one conservative bound. Keyed states are
//     bounded per audience (Options.Keys), not in total bytes, and the
//     states of client IDs stay in Redis until the key is deleted.
//   - A Publish whose reply was lost (the connection dropped after Redis
//     ran the script) returns an error although the event was added;
//     retries by go-redis within 10 s carry a token, so they do not add it
//     twice (each publish leaves a small key for 10 s).
//   - Close wakes the follower's XREAD through a key of the broker's own
//     ("<Stream>:wake:<random>", deleted again); with Redis unreachable it
//     may wait up to Options.Block for it.
//   - Redis must not evict the broker's keys: run it with maxmemory-policy
//     noeviction (or a volatile-* policy). A lost epoch key starts a new
//     epoch; a lost eviction record would make resumes wrongly exact.
//   - With Redis Cluster, give Stream a hash tag ("{sse}:events"): every key
//     the broker uses derives from it and the scripts need them in one slot.
package sseredis
