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
//		for _, addr := range []string{"localhost:8081", "localhost:8082"} {
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
// records for each entry trimmed the newest id its audience (the
// broadcast, a topic, a client ID) lost, and, for an event with a Key,
// keeps it as its audience's state (at most Options.Keys per audience). It
// is atomic, so the trim and the eviction record never disagree. Publish
// calls made concurrently on one Broker share that script call (a group
// commit): a call that finds none in flight sends its event at once, and
// the calls that come while one is in flight are sent together by the
// next, with no timer. A batch is one stream entry holding its events'
// records, and each event still has a stream id of its own: a batch of n
// takes the n ids after the stream's newest, in one millisecond, the last
// of them the entry's (so positions, replays and the eviction record are
// per event, as if each were an entry). What Redis does per event is then
// little more than storing its bytes: the epoch, the bookkeeping, the
// trim list and the push to the nodes are per batch, and only an event
// with an application-set ID or a Key has a few commands of its own. The
// script trims whole entries once per History/16 events or so: the stream
// keeps at least History events, and holds fewer than History + History/16
// + the largest batch. A retried script call (go-redis resends one whose
// reply it lost) is answered from the broker's last batch and adds nothing
// twice. Entries written by earlier versions of this package (one event
// each) are read, but earlier versions cannot read a batch's entry: upgrade
// every node of a stream together.
//
// The script also pushes the batch to every node (PUBLISH on
// "<Stream>:push", with the id of the entry before it). Each Broker runs
// one follower goroutine, subscribed to that channel: a push that follows
// the last entry it delivered is delivered as it is, so a node learns of a
// batch in one message and sends Redis nothing, and Redis's work per event
// grows with the number of nodes only by a socket write each. Anything
// else makes the follower read the stream after its last id (a script that
// also checks the epoch): a push that does not follow (one was missed),
// one of another epoch, a new subscription (after a reconnect), a wake
// from a replay that found Redis moved on, and Options.Block without a
// push. When Redis is unreachable it retries with backoff and continues
// from its last id, so a node that loses Redis for a while catches up with
// everything Redis kept: the stream is the history, the pushes only spare
// the reads. The follower reads on a Redis client of its own, built from
// the one given to New (see New), so that it never holds a connection
// publishes need, and so that Close can cut it at once. Replay reads the
// entries after a Last-Event-ID with XRANGE, and Snapshot the states, in
// pages of at most 256 entries or about 256 KiB, one script each: the
// first page's script also decides whether the resume is exact, and each
// later one checks that nothing the stream is to receive left Redis
// meanwhile.
//
// Hub.Disconnect on one node ends the client's streams on every node: the
// Broker is an sse.ControlBroker. PublishDisconnect adds a control to a
// small stream of its own ("<Stream>:control", about the newest 4,096
// controls) and pushes it on the same channel; a follower that missed the
// push reads the control stream after the last control it delivered when
// it catches up, from the newest control there was when it subscribed. A
// control is not an event (no position, not in history nor in the eviction
// record), and a node whose link to Redis breaks for a while gets the
// controls sent meanwhile when it reconnects, as long as the control
// stream still holds them. It costs nothing per event.
//
// Positions are "<epoch>-<event id>" (the event's stream id, see above), for example
// "k3x9p2ab-1733061234567-0", at most 43 bytes. The epoch is a random word
// kept in Redis ("<Stream>:epoch"), created when missing: a Redis that lost
// its data (flushed, or restarted without persistence) gets a new one, and
// a client resuming with an id from before is reset with reason "epoch".
//
// The keys, for Stream "sse:events": the stream itself; "sse:events:epoch"
// (the epoch and the stream id its lineage starts after, created inside
// the scripts when missing, so atomically like SET NX); "sse:events:meta"
// (the stream's newest id, its events and entries, the newest trimmed id, the forgotten
// audiences' bound, a counter, and for each Broker the number and reply of
// its last batch, which make a retried one idempotent; those of brokers
// gone quiet are dropped); "sse:events:evicted" and
// "sse:events:evicted-order" (the eviction record);
// "sse:events:state:<audience>" and "sse:events:state-order:<audience>"
// (keyed states); "sse:events:ids" and "sse:events:ids-order"
// (application-set IDs); "sse:events:trim" (for each entry, in the
// stream's order, its id, its number of events and the newest event of
// each audience in it, so that a trim knows whose events it trims without
// reading them); "sse:events:control" (controls). The channels:
// "sse:events:push" (batches and controls, to every node) and
// "sse:events:wake:<token>", one per Broker (wakes its follower).
//
// # What replication can and cannot promise
//
// The promise is that of the hub: a client never lives with a silent gap.
// What it was to receive and did not get ends its stream, and it resumes
// from what it got, exactly or with one ResetEvent. How each fault looks
// to a client:
//
// Redis loses its data (FLUSHALL, a restart without persistence, a
// failover to an empty replica). Publishes fail while Redis is down; the
// first script to run afterwards starts a new epoch. Each node finds it at
// its follower's next read: at once when an event is published (its push
// carries the new epoch), when a
// replay or a snapshot reaches a position Redis no longer holds (the
// broker then wakes its follower), else within Options.Block. It then ends
// every stream it serves (sse.BrokerHandler.HandleGap), even one that may
// have missed nothing, since nothing tells whether Redis held entries the
// node had not read when it lost them. Each client comes back with an id
// of the old epoch and gets one reset ("epoch"), followed by every event
// of the new epoch it may receive (sse.EpochOrigin; its snapshot instead
// if History no longer holds them all), then live events.
// Lost for good: what Redis held and a node had not delivered (its
// clients' resets say so), the history, keyed state and application-set ID
// index of the old epoch (clients that resume from those ids are reset).
//
// A frozen Redis (its process stopped, a stuck disk: connections open,
// nothing answers). Publishes fail after the client's ReadTimeout and
// WriteTimeout. Streams stay open and receive nothing; a stream that
// starts needs a replay or a snapshot, which fail likewise, so it ends
// before writing anything and its client retries. Followers wait (a read
// of the stream gives up after the client's ReadTimeout, then retries). When Redis
// answers again, every follower goes on from its last id: nothing is
// lost, nobody is reset. A Hub's Shutdown meanwhile closes the broker at
// once (Close sends Redis nothing).
//
// One node's link to Redis stalls or breaks (a partition). That node is
// as with a frozen Redis; the others go on. When the link comes back, its
// follower catches up with everything Redis kept, and its streams receive
// what they missed, exactly, unless meanwhile Redis trimmed entries the
// node had not read (see a node that fell behind the trim) or lost its
// data (see above: its streams end).
//
// A failover or restart that loses acknowledged writes (Redis replicates
// asynchronously: a primary acknowledges an XADD before its replicas have
// it; a restart from an RDB snapshot, or from an AOF not fsynced on every
// write, comes back without the latest writes). The epoch survives, but
// the stream no longer holds entries some node delivered. The first
// follower to read finds its last delivered entry gone (a replay or a
// snapshot reaching such a position wakes it) and starts a new epoch after
// the newest entry Redis kept at or before it: events published to the
// new primary since belong to the new epoch. Every node ends its streams
// when it finds the new epoch, and each client resumes with one reset
// ("epoch") followed by the new epoch's events. A client resuming from an
// id of a lost write before that is reset ("unknown"). Lost for good: the
// lost writes, although their publishers were told they succeeded (the
// clients that got them keep them); writes lost before any follower read
// them leave no trace at all: no client got them, so none has a gap, and
// nothing can tell. Where acknowledged writes must survive a failover,
// run Redis with WAIT-based or synchronous replication (outside this
// broker); where a restart must not reset clients, enable AOF with
// appendfsync always: the epoch and the history then survive it and
// clients resume exactly.
//
// Entries deleted from the stream by something else than the broker's trim
// (XDEL, a key restored from an older dump, an eviction under maxmemory).
// The trim list ("<Stream>:trim") then has more elements than the stream
// has entries, and the next publish script finds it so and starts a new
// epoch after the newest entry left before its batch, as above; a replay
// or a snapshot reaching a deleted newest entry before any publish wakes
// the follower, which finds its last delivered entry gone. Each client
// resumes with one reset ("epoch") and the new epoch's events, so none
// resumes across the hole without being told. Lost for good: the deleted
// entries, for the clients that had not got them.
//
// A node that fell behind the trim (its follower cut off or slow while
// other nodes published more than History events). Its follower finds
// entries trimmed before it read them, logs it at Error and ends the
// node's streams (HandleGap). Each client resumes from what it got,
// checked against the eviction record: exactly when nothing of its
// audiences was trimmed after its id, else with one reset ("expired"),
// followed by its snapshot. Lost for good: the trimmed events, for the
// clients that had not got them. The epoch stays.
//
// # Beyond one Redis
//
// One stream lives on one Redis (or one Cluster slot: every key derives
// from Stream), whose single thread runs every publish script and writes
// every push. Measured (bench/cmd/rediscost on 2026-12-06: redis-server
// 7.0 pinned to a core of its own on a 2-core machine, 64-byte events,
// medians; see bench/BENCHMARKS.md), Redis spent per published event, with
// 20 streams per node: about 8.5 µs of CPU with 2 nodes and 16 concurrent
// publishers (batches of 5 or 6 events, each one stream entry), 11 µs with
// 8 nodes and 64 publishers (8 per node), 47 µs with 8 nodes and 16
// publishers (2 per node: batches of 1.45), and 40 to 90 µs with one
// publisher (no batching; 2 to 8 nodes). Each node adds a socket write per
// batch, so the cost grows with the nodes and shrinks with the publishers
// per node. With one stream per node, where Redis rather than the nodes'
// process is the limit: 16 publishers on 2 nodes published 111,000
// events/s at 5.3 µs each, 59 % of Redis's core; on 8 nodes 33,000 at
// 23 µs (76 %); one publisher 13,000 at 36 µs (2 nodes) and 7,100 at 57 µs
// (8 nodes). Extrapolated to a core at 100 %, one Redis carries some
// 90,000 to 190,000 events/s with several publishers per node on a few
// nodes, 40,000 with 8 nodes of two publishers each, and 17,000 to 28,000
// when events come one at a time.
//
// Past that, shard by something every connection belongs to once: a
// tenant, a room, a document. Give each shard a stream of its own on a
// Redis of its own, or on a slot of its own in a Redis Cluster, which
// spreads hash tags over its primaries ("{sse:0}:events",
// "{sse:1}:events", ...). Each node runs one Hub per shard, each with its
// own Broker on that shard's stream, and routes a request to the hub of
// its shard with the same function on every node; events are published on
// the hub of their shard:
//
//	hubs := make([]*sse.Hub, len(redises))
//	for i, rdb := range redises { // a client per Redis, or one ClusterClient
//		b, err := sseredis.New(rdb, sseredis.Options{Stream: fmt.Sprintf("{sse:%d}:events", i)})
//		if err != nil {
//			log.Fatal(err)
//		}
//		if hubs[i], err = sse.NewHub(sse.Config{Broker: b}); err != nil {
//			log.Fatal(err)
//		}
//	}
//	shardOf := func(tenant string) *sse.Hub { return hubs[crc32.ChecksumIEEE([]byte(tenant))%uint32(len(hubs))] }
//	http.Handle("/events", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		shardOf(r.URL.Query().Get("tenant")).ServeHTTP(w, r)
//	}))
//	// publishing: shardOf(tenant).Publish(topic, ev)
//
// Positions and Last-Event-ID keep their meaning: a position is one of its
// shard's stream, resumed by that shard's hub on any node, exactly as with
// one Redis. Each shard's epoch is a random word of its own, so an id
// presented to another shard's hub (a tenant moved to another shard) is
// answered "epoch", a reset, never misread. Redis's work per event is that
// of one stream on each shard, and the shards add up; what grows with
// their number is each node's work (a subscription and a reading
// connection per shard it follows) and a broadcast to every tenant (a
// publish per shard). Changing the number of shards moves tenants, whose
// clients are reset once.
//
// What cannot be sharded so is a connection that must receive audiences
// living in several streams in one order: its resume point would be a
// position in each (a vector, too long for a 43-byte id and not ordered),
// and one order across streams needs one sequencer, which is the single
// Redis again. Such an application stays within one Redis's ceiling.
//
// With Redis Cluster, the scripts' PUBLISH is broadcast over the cluster
// bus to every node of the cluster, so each shard's push costs every
// Cluster node some work; sharded Pub/Sub (SPUBLISH and SSUBSCRIBE, Redis
// 7), which keeps a push within its slot's shard, would remove that. It is
// not done.
//
// # Limits
//
//   - Application-set event IDs (sse.Event.ID) are indexed, the newest
//     65,536 of them: a Last-Event-ID that is one resumes like the
//     position of its event; one forgotten, or one that has the shape of a
//     position, is reset ("unknown", "epoch"). ComparePositions cannot
//     order them (see there).
//   - Keep History above what is published during the outages you expect
//     (a node cut off from Redis while the others publish): past it, every
//     such outage ends the node's streams (see above).
//   - The eviction record remembers 65,536 audiences, folding the least
//     recently evicted into one conservative bound. Keyed states are
//     bounded per audience (Options.Keys), not in total bytes, and the
//     states of client IDs stay in Redis until the key is deleted.
//   - A Publish whose reply was lost (the connection dropped after Redis
//     ran the script) returns an error although the event was added;
//     go-redis's retries of the script call carry the batch's number, so
//     they do not add it twice (as long as fewer than 2^20 events were
//     published meanwhile).
//   - Publish calls of one Broker wait for each other: a batch is sent
//     once the previous one is answered, with a context of its own (10 s,
//     ended by Close, not by any caller's). A call whose context ends while it waits for
//     its turn is not sent; one whose batch is in flight waits for it.
//   - A replay or a snapshot in pages is not one atomic read: should Redis
//     trim entries of the stream's audiences it has not read yet, or lose
//     its data, between two pages, it fails and the hub ends the stream,
//     whose client retries from its Last-Event-ID.
//   - Each Broker opens two connections of its own per Redis node for its
//     follower (for a *redis.Client or *redis.ClusterClient): the
//     subscription and one for reading the stream. With any other client,
//     the follower subscribes on a connection of that client's and reads
//     the stream through its pool, and Close may wait up to the client's
//     ReadTimeout for such a read when Redis does not answer.
//   - Redis closes a subscription whose client reads too slowly
//     (client-output-buffer-limit pubsub, 32 MB by default): the follower
//     then resubscribes and reads the stream, which is exact unless Redis
//     trimmed entries it had not read meanwhile.
//   - Redis must not evict the broker's keys: run it with maxmemory-policy
//     noeviction (or a volatile-* policy). A lost epoch key starts a new
//     epoch; a lost eviction record would make resumes wrongly exact.
//   - With Redis Cluster, give Stream a hash tag ("{sse}:events"): every key
//     the broker uses derives from it and the scripts need them in one slot.
package sseredis
