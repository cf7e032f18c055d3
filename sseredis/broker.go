package sseredis

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssehub/sse"
)

// Options configure a Broker. The zero value is valid; each field says
// what zero means.
type Options struct {
	// Stream is the Redis key of the stream; "" means "sse:events". The
	// broker's other keys derive from it ("sse:events:epoch", ...): with
	// Redis Cluster, give it a hash tag ("{sse}:events") so they all share
	// a slot, as the scripts require.
	Stream string

	// History is how many events the stream keeps for replay, at least; 0
	// means sse.DefaultHistory (1024). Older events are trimmed, a batch
	// at a time (see "How it works"). Negative is an error: followers read
	// events from the stream, so it must keep some.
	History int

	// Keys is how many keyed states (an Event.Key within its audience) are
	// kept per audience for snapshots; 0 means sse.DefaultKeys, negative
	// keeps none.
	Keys int

	// Block is how long a follower waits for a push before it reads the
	// stream all the same (which finds a Redis that lost its data while
	// nobody published); 0 means 5 s. Close does not wait for it (see
	// New).
	Block time.Duration

	// Logger receives the broker's diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Defaults and bounds.
const (
	defaultStream  = "sse:events"
	defaultBlock   = 5 * time.Second
	fetchCount     = 512              // entries a follower reads at once
	publishTimeout = 10 * time.Second // bound on a Publish when its ctx has none
	epochLen       = 8
	maxBackoff     = 2 * time.Second
	maxIDLen       = 1024 // longer Last-Event-IDs are not looked up
	controlLen     = 4096 // controls the control stream keeps (about: MAXLEN ~)
)

// Broker is an sse.Broker, sse.PositionComparer and sse.EpochOrigin on a
// Redis Stream. Create one per Hub with New; hubs on several nodes that
// share a Redis and a Stream deliver the same events in the same order,
// and each serves replays of all of them.
type Broker struct {
	client  redis.UniversalClient
	reader  redis.UniversalClient // the follower's: a client of its own, or client
	owned   bool                  // reader is the broker's own, closed by Close
	log     *slog.Logger
	history int
	keys    int // per audience; 0 keeps none
	block   time.Duration

	stream, epochKey, metaKey, evictedKey, evictedOrderKey string
	controlKey                                             string // the controls' stream (see PublishDisconnect)
	trimKey                                                string // the trim list (see lua/publish.lua)
	idsKey, idsOrderKey                                    string // the index of application-set IDs
	pushChannel                                            string // every node's: the publish script pushes each batch on it
	wakeChannel                                            string // this broker's own: a message wakes the follower
	pubField                                               string // this broker's field in the meta hash (see lua/publish.lua)

	pub publisher // the Publish calls waiting for their batch

	lineage atomic.Pointer[lineage] // the epoch of the follower's deliveries

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	subscribed bool
	ps         *redis.PubSub // the follower's subscription, closed by Close
	closed     atomic.Bool   // set under mu; read without it
}

// lineage is an epoch and its base: the stream id it starts after, so that
// "<epoch>-<base>" is the position before its first entry.
type lineage struct {
	epoch string
	base  streamID
}

// maxEvicted is how many audiences the eviction record remembers, maxIDs
// how many application-set IDs the index does (variables for the tests).
var (
	maxEvicted = 65_536
	maxIDs     = 65_536
)

// pageEntries and pageBytes bound a page of a replay or a snapshot: what
// Replay and Snapshot hold at once, and what one script reads (variables
// for the tests).
var (
	pageEntries = 256
	pageBytes   = 256 << 10
)

var (
	_ sse.Broker           = (*Broker)(nil)
	_ sse.PositionComparer = (*Broker)(nil)
	_ sse.EpochOrigin      = (*Broker)(nil)
	_ sse.ControlBroker    = (*Broker)(nil)
)

// New returns a Broker on client configured by opts. It checks the
// connection (PING) and loads the broker's Lua scripts. The broker does not
// close client: its owner does, after the hub's Shutdown.
//
// The broker's follower waits for pushes on a subscription (Redis Pub/Sub)
// and reads the stream when they do not follow. For a *redis.Client or a
// *redis.ClusterClient it does both on a client of its own, built from
// client's Options (the same address, Dialer, credentials and timeouts),
// which Close closes: the follower then never holds a connection of
// client's pool, however many brokers share it, and Close cuts it at
// once, whatever Redis does. Hooks added to client (AddHook) do not see
// the follower's commands. With any other UniversalClient (a *redis.Ring, a
// wrapper) the follower subscribes on client and reads the stream through
// its pool, and Close waits for such a read in flight, up to the client's
// ReadTimeout when Redis does not answer.
func New(client redis.UniversalClient, opts Options) (*Broker, error) {
	if client == nil {
		return nil, errors.New("sseredis: nil Redis client")
	}
	if opts.History < 0 {
		return nil, fmt.Errorf("sseredis: Options.History is %d: the stream must keep entries for followers to read", opts.History)
	}
	if opts.Block < 0 {
		return nil, fmt.Errorf("sseredis: Options.Block is negative (%v)", opts.Block)
	}
	b := &Broker{
		client:  client,
		log:     opts.Logger,
		history: opts.History,
		keys:    opts.Keys,
		block:   opts.Block,
		stream:  opts.Stream,
	}
	if b.log == nil {
		b.log = slog.Default()
	}
	if b.history == 0 {
		b.history = sse.DefaultHistory
	}
	switch {
	case b.keys == 0:
		b.keys = sse.DefaultKeys
	case b.keys < 0:
		b.keys = 0
	}
	if b.block == 0 {
		b.block = defaultBlock
	}
	if b.stream == "" {
		b.stream = defaultStream
	}
	b.epochKey = b.stream + ":epoch"
	b.metaKey = b.stream + ":meta"
	b.evictedKey = b.stream + ":evicted"
	b.evictedOrderKey = b.stream + ":evicted-order"
	token := newToken()
	b.controlKey = b.stream + ":control"
	b.trimKey = b.stream + ":trim"
	b.pushChannel = b.stream + ":push"
	b.wakeChannel = b.stream + ":wake:" + token
	b.pubField = "p:" + token
	b.idsKey = b.stream + ":ids"
	b.idsOrderKey = b.stream + ":ids-order"

	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("sseredis: ping: %w", err)
	}
	for _, s := range scripts {
		if err := s.Load(ctx, client).Err(); err != nil {
			return nil, fmt.Errorf("sseredis: loading scripts: %w", err)
		}
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// audience names a Target in Redis: "e:" for everyone, "t:<topic>",
// "c:<client ID>".
func audience(t sse.Target) string {
	switch t.Kind {
	case sse.ToTopic:
		return "t:" + t.Name
	case sse.ToClient:
		return "c:" + t.Name
	}
	return "e:"
}

// target reads an audience name back.
func target(a string) (sse.Target, bool) {
	kind, name, ok := strings.Cut(a, ":")
	if !ok {
		return sse.Target{}, false
	}
	switch kind {
	case "e":
		return sse.Target{Kind: sse.ToEveryone}, name == ""
	case "t":
		return sse.Target{Kind: sse.ToTopic, Name: name}, true
	case "c":
		return sse.Target{Kind: sse.ToClient, Name: name}, true
	}
	return sse.Target{}, false
}

func (b *Broker) stateKey(aud string) string      { return b.stream + ":state:" + aud }
func (b *Broker) stateOrderKey(aud string) string { return b.stream + ":state-order:" + aud }

var epochEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newEpoch returns a random epoch: 8 lowercase base32 characters.
func newEpoch() string {
	var raw [5]byte
	_, _ = rand.Read(raw[:]) // never fails
	return epochEncoding.EncodeToString(raw[:])
}

// newToken returns a random token naming one Publish, so that a command
// the client retries after a lost reply is not added twice.
func newToken() string {
	var raw [10]byte
	_, _ = rand.Read(raw[:])
	return epochEncoding.EncodeToString(raw[:])
}

// streamID is a Redis stream id.
type streamID struct{ ms, seq uint64 }

func (x streamID) String() string {
	return strconv.FormatUint(x.ms, 10) + "-" + strconv.FormatUint(x.seq, 10)
}

func (x streamID) compare(y streamID) int {
	if c := cmp.Compare(x.ms, y.ms); c != 0 {
		return c
	}
	return cmp.Compare(x.seq, y.seq)
}

// parseID reads "<ms>-<seq>".
func parseID(s string) (streamID, bool) {
	a, c, ok := strings.Cut(s, "-")
	if !ok || !digits(a) || !digits(c) {
		return streamID{}, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(c, 10, 64)
	return streamID{ms, seq}, err1 == nil && err2 == nil
}

func digits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parsePos reads a position "<epoch>-<ms>-<seq>".
func parsePos(p string) (epoch string, id streamID, ok bool) {
	if len(p) < epochLen+4 || p[epochLen] != '-' {
		return "", streamID{}, false
	}
	epoch = p[:epochLen]
	for _, c := range []byte(epoch) {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", streamID{}, false
		}
	}
	id, ok = parseID(p[epochLen+1:])
	return epoch, id, ok
}

// readerFor returns the client a follower on client uses: one of its own
// when client's Options can be copied (owned), else client itself.
func readerFor(client redis.UniversalClient) (c redis.UniversalClient, owned bool) {
	switch c := client.(type) {
	case *redis.Client:
		o := *c.Options()
		o.PoolSize, o.MaxConcurrentDials, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = 1, 1, 0, 1, 0
		o.PipelinePoolSize = -1
		o.ClientSideCache, o.ClientSideCacheConfig = nil, nil
		return redis.NewClient(&o), true
	case *redis.ClusterClient:
		o := *c.Options()
		o.PoolSize, o.MaxConcurrentDials, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = 1, 1, 0, 1, 0
		o.PipelinePoolSize = -1
		return redis.NewClusterClient(&o), true
	}
	return client, false
}

func index(s []any, i int) any {
	if i < len(s) {
		return s[i]
	}
	return nil
}

func str(v any) string { s, _ := v.(string); return s }

// Replay calls fn for each event after after up to until, in order. A
// position of another epoch is answered "epoch". Anything else that is not
// a position is looked up as an application-set ID (Message.ID; the newest
// 65,536 are indexed, while Redis keeps its data): one that is not found is
// answered "unknown". When entries after after were trimmed, the resume is
// still exact if none was for an audience in to; else "expired". When
// Redis has moved past until (it lost data: a new epoch, or a stream that
// no longer holds until), the follower has not caught up with the loss:
// Replay wakes it and answers "ahead", and the hub asks again once the
// follower has told it.
//
// The entries are read in pages of at most 256 entries or about 256 KiB
// (at least one entry: a batch, at most 1 MiB of bodies or one larger
// event), one script each, and fn runs for a page's events, with nothing
// held, before the next is read: what a replay holds is bounded however
// long the history, and one that fn stops, or whose ctx ends, reads no
// further.
// Should Redis move past until between pages, or trim entries for the
// stream's audiences before they were read, Replay returns an error: the
// entries cannot all be given, and none may be skipped.
func (b *Broker) Replay(ctx context.Context, after, until string, to []sse.Target, fn func(*sse.Message) bool) (bool, string, error) {
	if b.closed.Load() {
		return false, "", ErrClosed
	}
	ue, uid, ok := parsePos(until)
	if !ok {
		return false, "unknown", nil
	}
	auds := make([]any, 0, len(to))
	for _, t := range to {
		auds = append(auds, audience(t))
	}
	args := make([]any, 0, 6+len(to))
	if ae, aid, ok := parsePos(after); ok {
		if ae == ue && aid == uid {
			return true, "", nil
		}
		args = append(args, ae, aid.String())
	} else {
		if after == "" || len(after) > maxIDLen {
			return false, "unknown", nil
		}
		args = append(args, "", after) // an application-set ID, looked up in Redis
	}
	args = append(args, ue, uid.String(), pageEntries, pageBytes)
	args = append(args, auds...)
	reply, err := replayScript.Run(ctx, b.client, []string{b.stream, b.epochKey, b.metaKey, b.evictedKey, b.idsKey, b.wakeChannel}, args...).Slice()
	if err != nil {
		return false, "", fmt.Errorf("sseredis: replay: %w", err)
	}
	if kind := str(index(reply, 0)); kind != "ok" {
		if kind == "" {
			return false, "", fmt.Errorf("sseredis: replay: unexpected reply %v", reply)
		}
		return false, kind, nil
	}
	from, ok := parseID(str(index(reply, 3)))
	if !ok {
		return false, "", fmt.Errorf("sseredis: replay: unexpected reply %v", reply)
	}
	pageKeys := []string{b.stream, b.epochKey, b.metaKey, b.evictedKey, b.wakeChannel}
	for {
		entries, _ := index(reply, 1).([]any)
		more := str(index(reply, 2))
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return true, "", err
			}
			_, evs, err := decodeEntry(e, ue)
			if err != nil {
				return true, "", fmt.Errorf("sseredis: replay: %w", err)
			}
			for _, ev := range evs {
				// An entry holds a batch: the first may hold events at or
				// before from, the last events after until.
				if ev.id.compare(from) <= 0 || ev.id.compare(uid) > 0 {
					continue
				}
				if !fn(ev.m) {
					return true, "", nil
				}
			}
		}
		if more == "" {
			return true, "", nil
		}
		if b.closed.Load() {
			return true, "", ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return true, "", err
		}
		reply = nil // the page read is no longer held
		args = append(append(args[:0], ue, uid.String(), more, pageEntries, pageBytes), auds...)
		reply, err = pageScript.Run(ctx, b.client, pageKeys, args...).Slice()
		if err != nil {
			return true, "", fmt.Errorf("sseredis: replay: %w", err)
		}
		switch kind := str(index(reply, 0)); kind {
		case "ok":
		case "moved":
			return true, "", errors.New("sseredis: replay: Redis lost data while the replay was read: the follower is catching up")
		case "expired":
			return true, "", errors.New("sseredis: replay: entries for the stream were trimmed before the replay read them")
		default:
			return true, "", fmt.Errorf("sseredis: replay: unexpected reply %v", reply)
		}
	}
}

// Snapshot calls fn for the newest message of each state of the audiences
// in to that is at or before until, in position order. It reads them in
// pages (see Replay), merging the audiences' orders, and fails if Redis
// moves past until meanwhile. When Redis has moved past until (see Replay)
// it wakes the follower and fails: the hub ends the stream before it
// writes anything, and its client retries once the follower has moved the
// hub to the new epoch.
func (b *Broker) Snapshot(ctx context.Context, until string, to []sse.Target, fn func(*sse.Message) bool) error {
	if b.closed.Load() {
		return ErrClosed
	}
	ue, uid, ok := parsePos(until)
	if !ok {
		return nil
	}
	if b.keys == 0 {
		to = nil // the epoch is checked all the same
	}
	keys := make([]string, 0, 4+2*len(to))
	keys = append(keys, b.stream, b.epochKey, b.metaKey, b.wakeChannel)
	for _, t := range to {
		a := audience(t)
		keys = append(keys, b.stateKey(a), b.stateOrderKey(a))
	}
	per := max(pageEntries/max(len(to), 1), 16) // keys per audience and page
	cursor := ""
	for {
		reply, err := snapshotScript.Run(ctx, b.client, keys, ue, uid.String(), cursor, per, pageBytes).Slice()
		if err != nil {
			return fmt.Errorf("sseredis: snapshot: %w", err)
		}
		if len(reply) == 0 {
			return errMoved
		}
		flat, _ := reply[0].([]any)
		cursor = str(index(reply, 1))
		for j := 0; j+2 < len(flat); j += 3 {
			if err := ctx.Err(); err != nil {
				return err
			}
			a, _ := flat[j].(int64)
			id, m, err := decodeState(str(flat[j+2]))
			if err != nil || a < 0 || int(a) >= len(to) {
				b.log.Error("sseredis: skipping a state", "err", err, "audience", a)
				continue
			}
			if id.compare(uid) > 0 {
				continue
			}
			m.To, m.Key = to[a], str(flat[j+1])
			m.Pos = ue + "-" + id.String()
			if !fn(m) {
				return nil
			}
		}
		if cursor == "" {
			return nil
		}
		if b.closed.Load() {
			return ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// decodeState reads a state's value: "<id>|<len(ID)>|<ID><Body>".
func decodeState(v string) (streamID, *sse.Message, error) {
	idText, rest, ok1 := strings.Cut(v, "|")
	n, rest, ok2 := strings.Cut(rest, "|")
	id, ok3 := parseID(idText)
	l, err := strconv.Atoi(n)
	if !ok1 || !ok2 || !ok3 || err != nil || l < 0 || l > len(rest) {
		return streamID{}, nil, fmt.Errorf("malformed state %.40q", v)
	}
	return id, &sse.Message{ID: rest[:l], Body: []byte(rest[l:])}, nil
}

// ComparePositions orders two positions of the epoch the broker delivers.
// Positions of other epochs cannot be ordered, nor application-set IDs
// (looking them up would take a Redis round trip in a call that has no
// context): the hub then treats a run-time subscription as not yet seen
// by the client, which repeats the topic's state, never loses it.
func (b *Broker) ComparePositions(a, c string) (int, bool) {
	ae, aid, ok1 := parsePos(a)
	ce, cid, ok2 := parsePos(c)
	cur := b.lineage.Load()
	if !ok1 || !ok2 || ae != ce || cur == nil || ae != cur.epoch {
		return 0, false
	}
	return aid.compare(cid), true
}

// EpochOrigin returns "<epoch>-<base>", the position before the first entry
// of pos's epoch, when that is the epoch the broker delivers: "<epoch>-0-0"
// for an epoch Redis started empty (it lost its data), or the newest entry
// the stream kept of the previous one. A client that resumes from an
// earlier epoch is then replayed the current one from its start (see
// sse.EpochOrigin).
func (b *Broker) EpochOrigin(pos string) (string, bool) {
	e, _, ok := parsePos(pos)
	cur := b.lineage.Load()
	if !ok || cur == nil || e != cur.epoch {
		return "", false
	}
	return cur.epoch + "-" + cur.base.String(), true
}

// Close stops the follower and waits for it to return. It closes the
// follower's subscription, which cuts its wait for a push at once, and,
// with a follower on a client of its own (see New), that client, which
// cuts a read of the stream in flight: Close then returns at once whatever
// Redis does, and sends Redis nothing. With a follower on the broker's
// client, it waits for such a read, up to the client's ReadTimeout when
// Redis does not answer. Publish calls whose batch is in flight end with
// it, on their own goroutines. Once Close has begun, Publish, Replay and
// Snapshot fail with ErrClosed. Close does not close the client given to
// New.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return nil
	}
	b.closed.Store(true)
	subscribed, reader, owned, ps := b.subscribed, b.reader, b.owned, b.ps
	b.mu.Unlock()
	b.cancel()
	if !subscribed {
		return nil
	}
	_ = ps.Close()
	var err error
	if owned {
		if cerr := reader.Close(); cerr != nil {
			err = fmt.Errorf("sseredis: close: %w", cerr)
		}
	}
	b.wg.Wait()
	return err
}

// errMoved is Snapshot's error when Redis has moved past until: it lost
// data that the follower has not noticed yet.
var errMoved = errors.New("sseredis: snapshot: Redis has moved past the position (it lost data): the follower is catching up")

// ErrClosed is returned by a Broker's methods called after Close.
var ErrClosed = errors.New("sseredis: broker closed")
