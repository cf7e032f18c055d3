package sse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
)

// Hub is an http.Handler that serves Server-Sent Events: every GET request
// it handles becomes a stream that receives the events published on the hub
// for it. All methods are safe for concurrent use. Create one with NewHub.
type Hub struct {
	cfg    Config
	broker Broker
	mem    *memoryBroker // the broker, when it is the in-memory default
	log    *slog.Logger
	alarms *slog.Logger // Config.Logger as given: nil means slog.Default() (see warn)

	walking   sync.Mutex   // held by a delivery (deliver), and by what must see none half done
	mu        sync.RWMutex // guards reg, closed, heartbeat
	reg       registry
	closed    bool
	heartbeat bool // the heartbeat goroutine is running

	lastPos      atomic.Pointer[string] // the position of the last delivered message
	stopBy       atomic.Int64           // once Shutdown has begun: when every write must be done, in Unix nanoseconds
	pressure     atomic.Bool            // a queue passed half of QueueBytes since the last publish
	done         chan struct{}          // closed when Shutdown ends the streams
	track        *tracker               // what Shutdown waits for
	stop         sync.Once              // closes the broker
	brokerClosed chan struct{}          // closed once Broker.Close has returned
	stats        counters
	warned       [warnKinds]atomic.Bool // see warn

	// Publishes in flight, so that Shutdown can wait for them with a
	// deadline: a publish counts itself, then checks closing.
	pubs      atomic.Int64
	closing   atomic.Bool   // Shutdown has begun
	pubsOnce  sync.Once     // closes pubsDone
	pubsDone  chan struct{} // closed once closing is set and no publish is in flight
	pubCtx    context.Context
	pubCancel context.CancelFunc // cancels pubCtx, the context of Broker.Publish

	hooksRunning atomic.Int64 // hooks running now (see inHook)

	pollMu sync.Mutex // guards poll and every stream's pollFD
	poll   poller     // with Config.Poll: watches taken-over connections (poll_linux.go)

	pendingMu sync.Mutex
	pending   map[*stream][]byte // the rest of frames stream.quickWrite began, for their drains

	subs subscriptions // run-time subscriptions, for resumes; guarded by mu
	ends ends          // streams' appointed ends (credential expiry, MaxLifetime)

	perAddr, perClient *rateLimiter // Config.ConnectRatePerAddress, ConnectRatePerClient; nil when unbounded
}

// NewHub returns a Hub configured by cfg. It fails when cfg has a negative
// size or duration where none is allowed, a positive duration below a
// millisecond, or when cfg.Broker refuses the subscription.
func NewHub(cfg Config) (*Hub, error) {
	logger := cfg.Logger
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h := &Hub{
		cfg:          cfg,
		log:          cfg.Logger,
		alarms:       logger,
		reg:          newRegistry(cfg.MaxStreamsPerAddress > 0),
		done:         make(chan struct{}),
		track:        newTracker(),
		pubsDone:     make(chan struct{}),
		brokerClosed: make(chan struct{}),
		ends:         ends{wake: make(chan struct{}, 1)},
		subs:         newSubscriptions(maxSubscriptions),
	}
	h.pubCtx, h.pubCancel = context.WithCancel(context.Background())
	if cfg.ConnectRatePerAddress.limited() {
		h.perAddr = newRateLimiter(cfg.ConnectRatePerAddress)
	}
	if cfg.ConnectRatePerClient.limited() {
		h.perClient = newRateLimiter(cfg.ConnectRatePerClient)
	}
	if cfg.Broker != nil {
		h.broker = cfg.Broker
	} else {
		h.mem = newMemoryBroker(max(cfg.History, 0), max(cfg.Keys, 0))
		h.mem.maxBytes, h.mem.keys.maxBytes = cfg.HistoryBytes, cfg.KeyBytes
		h.broker = h.mem
	}
	var last string
	if h.mem != nil {
		last = h.mem.subscribe(h.deliver)
	} else if last, err = h.broker.Subscribe(deliveries{h}); err != nil {
		return nil, fmt.Errorf("sse: broker subscription: %w", err)
	}
	// A broker may deliver before Subscribe returns: its position is then
	// newer than last, and stays.
	h.lastPos.CompareAndSwap(nil, &last)
	return h, nil
}

// Broadcast queues ev to every open stream and keeps it in history for
// replay. It returns the number of streams it was queued to, or an error if
// ev is invalid (ErrInvalidEvent), larger than a stream's queue
// (ErrEventTooLarge) or the hub is closed (ErrHubClosed). It never waits for
// a client. With a Config.Broker, which delivers on its own goroutine, the
// count is 0: the event reaches streams when the broker delivers it.
func (h *Hub) Broadcast(ev Event) (int, error) {
	return h.publish(&ev, Target{Kind: ToEveryone})
}

// Publish queues ev to every stream subscribed to topic. It returns and
// fails as Broadcast does, and also fails for an empty topic.
func (h *Hub) Publish(topic string, ev Event) (int, error) {
	if topic == "" {
		return 0, errors.New("sse: Publish to an empty topic")
	}
	return h.publish(&ev, Target{Kind: ToTopic, Name: topic})
}

// Send queues ev to every stream of clientID (all its tabs). It returns and
// fails as Broadcast does. An event for a client with no open stream is
// still kept in history, so the client receives it if it reconnects with a
// Last-Event-ID that history covers.
func (h *Hub) Send(clientID string, ev Event) (int, error) {
	if clientID == "" {
		return 0, errors.New("sse: Send to an empty client ID")
	}
	return h.publish(&ev, Target{Kind: ToClient, Name: clientID})
}

// publish validates and encodes ev once, then hands it to the broker, which
// delivers it through h.deliver (the in-memory broker, at once) or the
// hub's BrokerHandler (any other, when it will).
func (h *Hub) publish(ev *Event, to Target) (int, error) {
	h.pubs.Add(1) // before closing is read: see Shutdown
	defer func() {
		if h.pubs.Add(-1) == 0 && h.closing.Load() {
			h.pubsOnce.Do(func() { close(h.pubsDone) })
		}
	}()
	if h.closing.Load() {
		return 0, ErrHubClosed
	}
	if err := ev.Validate(); err != nil {
		return 0, err
	}
	m := newEnvelope(ev, to)
	if n := m.frameBound(); n > h.cfg.QueueBytes {
		return 0, fmt.Errorf("%w: a %d-byte event does not fit a %d-byte stream queue (Config.QueueBytes)",
			ErrEventTooLarge, n, h.cfg.QueueBytes)
	}
	if h.mem != nil {
		h.mem.publish(m) // delivered before it returns
	} else if err := h.broker.Publish(h.pubCtx, &m.Message); err != nil {
		return 0, fmt.Errorf("sse: broker: %w", err)
	}
	h.stats.published.Add(1)
	if h.pressure.Load() && h.pressure.Swap(false) {
		// A queue is past half full: let its writer run before the next
		// publish, or a publisher in a loop on a busy CPU would end every
		// stream as slow.
		runtime.Gosched()
	}
	if h.mem == nil {
		return 0, nil // an external broker may deliver later, on its own goroutine
	}
	return m.queued, nil
}

// Disconnect ends every open stream of clientID, after each has written what
// was already queued to it, and returns how many streams that was on this
// hub. With a Broker that carries controls to its other hubs
// (ControlBroker, as sseredis does), the client's streams on every node
// end too: the way to cut a user whose access was revoked, together with
// Config.ClientID or Config.Authenticate refusing the user's next
// request (a browser then stops reconnecting). Otherwise browsers
// reconnect. An error of the Broker's in sending the control is logged;
// the streams on this hub end all the same.
func (h *Hub) Disconnect(clientID string) int {
	n := h.disconnect(clientID)
	if cb, ok := h.broker.(ControlBroker); ok && !h.closing.Load() {
		ctx, cancel := context.WithTimeout(h.pubCtx, h.cfg.WriteTimeout)
		defer cancel()
		if err := cb.PublishDisconnect(ctx, clientID); err != nil {
			h.log.Warn("sse: the Broker could not carry a Disconnect to the other hubs", "client", clientID, "err", err)
		}
	}
	return n
}

// disconnect ends clientID's streams on this hub.
func (h *Hub) disconnect(clientID string) int {
	h.mu.RLock()
	streams := append([]*stream(nil), h.reg.byID[clientID]...)
	h.mu.RUnlock()
	for _, s := range streams {
		s.close(ReasonDisconnected)
	}
	return len(streams)
}

// Stats returns a snapshot of the hub's state and counters.
func (h *Hub) Stats() Stats {
	h.mu.RLock()
	st := Stats{Streams: h.reg.n, Clients: len(h.reg.byID), Topics: len(h.reg.byTopic)}
	h.mu.RUnlock()
	st.Published = h.stats.published.Load()
	st.Queued = h.stats.queued.Load()
	st.Written = h.stats.written.Load()
	st.SlowDisconnects = h.stats.slow.Load()
	st.Replays = h.stats.replays.Load()
	st.Resets = h.stats.resets.Load()
	st.EpochReplays = h.stats.epochReplays.Load()
	st.ResetsBy = h.stats.resetsBy()
	st.ReplayFailures = h.stats.replayFailures.Load()
	st.HookPanics = h.stats.hookPanics.Load()
	st.BrokerGaps = h.stats.gaps.Load()
	st.Expired = h.stats.credExpired.Load()
	st.RateLimited = h.stats.rateLimited.Load()
	st.LifetimeEnds = h.stats.lifetimes.Load()
	st.BrokerEpochs = h.stats.epochs.Load()
	st.Snapshots = h.stats.snapshots.Load()
	st.Refused = h.stats.refused.Load()
	st.Heartbeats = h.stats.heartbeats.Load()
	st.NoWriteDeadline = h.stats.noDeadline.Load()
	st.ServerWriteTimeouts = h.stats.serverTimeouts.Load()
	st.Unflushable = h.stats.unflushable.Load()
	st.Compressed = h.stats.compressed.Load()
	return st
}
