package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// ReaderConfig configures a Reader. Zero fields take the defaults given.
type ReaderConfig struct {
	// Endpoint is the server's URL, "opc.tcp://host:port". Required.
	Endpoint string
	// Nodes are the variables to monitor. Empty means browse the server's
	// Objects folder for variables at every connection (browseVariables).
	Nodes []*ua.NodeID
	// Interval is the subscription's publishing interval: the server sends
	// the changes of each interval in one notification. Zero means 100 ms.
	Interval time.Duration
	// Probe is how often the reader reads the server's clock (i=2258) to
	// check that the connection still answers, and how long it waits for
	// the answer. Zero means 2 s.
	Probe time.Duration
	// Silent is how long a subscription may go without a notification of
	// the server clock, which every subscription also monitors, before the
	// reader rebuilds it; it applies only once the server has reported its
	// clock changing. Zero means 5 s or four intervals, whichever is longer.
	Silent time.Duration
	// DownAfter is how long reconnecting may last before the status says
	// "down". Zero means 10 s.
	DownAfter time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts, which
	// doubles after each failure. Zero means 200 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives connection events. Nil means none.
	Logger *slog.Logger
}

// Reader subscribes to OPC UA variables and hands their changes to a Sink.
// It runs its own reconnect loop: every cycle builds a fresh client,
// subscription and monitored items, and tears all of them down on a
// disconnect, a notification error, a failed liveness read, or a
// subscription that went silent. gopcua's own auto-reconnect is off because
// it can report Connected while delivering nothing (gopcua #879, #895).
type Reader struct {
	cfg  ReaderConfig
	sink Sink
	log  *slog.Logger
}

// NewReader returns a Reader for cfg that reports to sink.
func NewReader(cfg ReaderConfig, sink Sink) (*Reader, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("reader: no endpoint")
	}
	if cfg.Interval == 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	if cfg.Interval < 10*time.Millisecond {
		return nil, fmt.Errorf("reader: publishing interval %v is below 10 ms", cfg.Interval)
	}
	if cfg.Probe <= 0 {
		cfg.Probe = 2 * time.Second
	}
	if cfg.Silent <= 0 {
		cfg.Silent = max(5*time.Second, 4*cfg.Interval)
	}
	if cfg.DownAfter <= 0 {
		cfg.DownAfter = 10 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reader{cfg: cfg, sink: sink, log: log}, nil
}

// Run reads until ctx ends, then closes its client and returns.
func (r *Reader) Run(ctx context.Context) {
	backoff := r.cfg.MinBackoff
	lost := time.Now() // since when the reader has had no connection
	ever := false      // whether a cycle ever connected
	attempt := 0       // failed attempts since lost
	r.sink.SetStatus(statusSince(StateConnecting, r.cfg.Endpoint, lost))
	for {
		connected, err := r.cycle(ctx)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff, lost, ever, attempt = r.cfg.MinBackoff, time.Now(), true, 0
		}
		attempt++
		state := StateReconnecting
		if !ever {
			state = StateConnecting
		}
		if time.Since(lost) >= r.cfg.DownAfter {
			state = StateDown
		}
		st := statusSince(state, r.cfg.Endpoint, lost)
		st.Error, st.Attempt = err.Error(), attempt
		r.sink.SetStatus(st)
		r.log.Warn("opcua: no connection", "endpoint", r.cfg.Endpoint, "state", state, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, r.cfg.MaxBackoff)
	}
}

// clockHandle is the client handle of the server clock item that every
// subscription also monitors; points are numbered from 1.
const clockHandle = 0

// cycle runs one connection: connect, subscribe, deliver, until something
// fails. connected reports whether values were flowing; err says why the
// cycle ended.
func (r *Reader) cycle(ctx context.Context) (connected bool, err error) {
	states := make(chan opcua.ConnState, 8)
	c, err := opcua.NewClient(r.cfg.Endpoint,
		opcua.SecurityMode(ua.MessageSecurityModeNone),
		opcua.SecurityPolicy(ua.SecurityPolicyURINone),
		opcua.AuthAnonymous(),
		opcua.AutoReconnect(false),
		opcua.DialTimeout(2*time.Second),
		opcua.RequestTimeout(5*time.Second),
		opcua.StateChangedFunc(func(s opcua.ConnState) {
			select { // never block the client: only Disconnected matters
			case states <- s:
			default:
			}
		}),
	)
	if err != nil {
		return false, fmt.Errorf("client: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = c.Connect(cctx)
	cancel()
	if err != nil {
		closeClient(c, nil)
		return false, fmt.Errorf("connect: %w", err)
	}
	var sub *opcua.Subscription
	defer func() { closeClient(c, sub) }()

	nodes := r.cfg.Nodes
	if len(nodes) == 0 {
		if nodes, err = browseVariables(ctx, c); err != nil {
			return false, err
		}
	}
	notes := make(chan *opcua.PublishNotificationData, 16)
	sub, err = c.Subscribe(ctx, &opcua.SubscriptionParameters{
		Interval:          r.cfg.Interval,
		MaxKeepAliveCount: keepAliveCount(r.cfg.Interval),
		LifetimeCount:     3 * keepAliveCount(r.cfg.Interval),
	}, notes)
	if err != nil {
		return false, fmt.Errorf("subscribe: %w", err)
	}
	points, n, err := r.monitor(ctx, sub, nodes)
	if err != nil {
		return false, err
	}

	r.sink.Points(slices.DeleteFunc(slices.Clone(points), func(id string) bool { return id == "" }))
	st := statusSince(StateConnected, r.cfg.Endpoint, time.Now())
	st.Points = n
	r.sink.SetStatus(st)
	r.log.Info("opcua: connected", "endpoint", r.cfg.Endpoint, "points", n)

	probe := time.NewTicker(r.cfg.Probe)
	defer probe.Stop()
	// The clock item proves the subscription delivers. Every server sends
	// its initial value; only a server that then reports it changing is
	// watched for silence (the gopcua server samples nothing by itself).
	var beat time.Time
	beats := 0
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case s := <-states:
			if s == opcua.Disconnected || s == opcua.Closed {
				return true, fmt.Errorf("connection %v", s)
			}
		case <-probe.C:
			pctx, cancel := context.WithTimeout(ctx, r.cfg.Probe)
			_, err := c.Node(ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime)).Value(pctx)
			cancel()
			if err != nil {
				return true, fmt.Errorf("liveness read: %w", err)
			}
			if beats >= 2 && time.Since(beat) > r.cfg.Silent {
				return true, fmt.Errorf("subscription silent for %v", time.Since(beat).Round(time.Millisecond))
			}
		case note := <-notes:
			if note.Error != nil {
				return true, fmt.Errorf("notification: %w", note.Error)
			}
			dcn, ok := note.Value.(*ua.DataChangeNotification)
			if !ok {
				continue
			}
			now := time.Now()
			// In the order of the nodes, so the first batch (every
			// node's initial value) sets the order of the page's rows.
			items := slices.SortedStableFunc(slices.Values(dcn.MonitoredItems), func(a, b *ua.MonitoredItemNotification) int {
				return cmp.Compare(a.ClientHandle, b.ClientHandle)
			})
			batch := make([]Sample, 0, len(items))
			for _, it := range items {
				if it.ClientHandle == clockHandle {
					beat = now
					beats++
					continue
				}
				if i := int(it.ClientHandle) - 1; i < len(points) && points[i] != "" {
					batch = append(batch, sampleOf(points[i], it.Value, now))
				}
			}
			if len(batch) > 0 {
				r.sink.Update(batch)
			}
		}
	}
}

// monitor adds the server clock and nodes to sub. It returns the point ID of
// each node, indexed by client handle minus one, and how many the server
// accepted; a node the server refused keeps its place, with an empty ID, and
// is logged.
func (r *Reader) monitor(ctx context.Context, sub *opcua.Subscription, nodes []*ua.NodeID) ([]string, int, error) {
	clock := opcua.NewMonitoredItemCreateRequestWithDefaults(
		ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime), ua.AttributeIDValue, clockHandle)
	clock.RequestedParameters.SamplingInterval = 1000
	clock.RequestedParameters.QueueSize = 1
	reqs := []*ua.MonitoredItemCreateRequest{clock}
	points := make([]string, len(nodes))
	for i, n := range nodes {
		req := opcua.NewMonitoredItemCreateRequestWithDefaults(n, ua.AttributeIDValue, uint32(i+1))
		req.RequestedParameters.SamplingInterval = float64(r.cfg.Interval / time.Millisecond)
		reqs = append(reqs, req)
		points[i] = n.String()
	}
	res, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth, reqs...)
	if err != nil {
		return nil, 0, fmt.Errorf("monitor: %w", err)
	}
	if len(res.Results) != len(reqs) {
		return nil, 0, fmt.Errorf("monitor: %d results for %d items", len(res.Results), len(reqs))
	}
	ok := 0
	for i, x := range res.Results[1:] {
		if x.StatusCode != ua.StatusOK {
			r.log.Warn("opcua: cannot monitor", "node", points[i], "status", x.StatusCode)
			points[i] = ""
			continue
		}
		ok++
	}
	if ok == 0 {
		return nil, 0, errors.New("monitor: the server refused every node")
	}
	return points, ok, nil
}

// keepAliveCount is how many publishing intervals the server may stay silent
// before it sends a keep-alive: about 2 s. gopcua's default (3000) would make
// the client's publish timeout, keep-alive × interval, 5 minutes.
func keepAliveCount(interval time.Duration) uint32 {
	return uint32(max(3, min(100, int(2*time.Second/interval))))
}

// closeClient deletes the subscription, if any, and closes the client,
// within one second: on a dead connection each call would otherwise wait for
// the request timeout.
func closeClient(c *opcua.Client, sub *opcua.Subscription) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if sub != nil && c.State() == opcua.Connected {
		_ = sub.Cancel(ctx)
	}
	_ = c.Close(ctx)
}
