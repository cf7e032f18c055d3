package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/ssehub/sse"
)

// The event types the page listens for.
const (
	EventPoints = "monitor_points" // data: JSON [{pointId, value, status, updateAt}]
	EventStatus = "opcua_status"   // data: JSON Status
)

// Hub topics. Every value is published on its point's topic, as a
// one-element batch keyed by the point: the hub's keyed state then holds
// the current value of every point, which it sends to a stream that starts
// watching the point. Each OPC UA notification is also published whole on
// topicAll, for streams opened without ?points= (batch streams).
const (
	topicAll    = "points:all"
	topicPrefix = "point:"
)

//go:embed web
var webFiles embed.FS

// Dashboard serves the page (/), the event stream (/events), the watch
// endpoint (POST /api/watch) and the current values as JSON (/api/points,
// /api/status). It is the reader's Sink: it keeps the latest value of every
// point and publishes each change to the hub.
//
// Two kinds of stream. A stream opened with ?points= (a list, or * for
// every point) follows per-point topics: it starts with the hub's keyed
// state of those points (their current values), and its client may change
// the points it watches at run time with POST /api/watch, which subscribes
// the stream to the new points' topics, the hub sending their current
// values first (see watch.go). A stream opened without ?points= follows
// topicAll, one batch per notification; those batches are not keyed (the
// hub would keep every batch as state), so the dashboard sends such a
// stream its snapshot itself, as one batch, under the gate: publishing and
// the registration of a fresh stream take turns, so no value is published
// between the moment the hub registers the stream and the snapshot.
//
// Either way a stream that resumes with Last-Event-ID gets only what the hub
// replays (what it missed), or, for the points a watch change added that
// its client may not have read, their current values. No stream receives
// an older value after a newer one while it watches the point, nor a value
// twice but for the one repeat watch.go describes (the hub's current value
// of a point once more, after a drop before anything with an id came after
// it). A resume that the hub cannot serve gets an sse-reset event, then the
// hub's keyed state: the status, and for a per-point stream the current
// value of every point it watches (a batch stream must open a fresh stream
// for its snapshot).
type Dashboard struct {
	hub    *sse.Hub
	mux    *http.ServeMux
	store  *Store
	log    *slog.Logger
	gate   sync.Mutex // held while publishing, from a fresh stream's arrival to its start, and while a watch set changes
	status Status     // guarded by gate
	watch  watchSets
}

// DashboardConfig configures a Dashboard.
type DashboardConfig struct {
	// History is how many events the hub keeps for Last-Event-ID replay.
	// Zero means 4096.
	History int
	// Retry is the reconnection time browsers are told to use. Zero means 1 s.
	Retry time.Duration
	// WatchIdle is how long the watch set of a client whose last stream
	// ended is kept for its reconnect. Zero means 2 minutes.
	WatchIdle time.Duration
	// MaxIdleWatches bounds the watch sets kept for clients without an
	// open stream; beyond it the longest idle goes first. Zero means 1000.
	MaxIdleWatches int
	// Logger receives the hub's diagnostics. Nil means none.
	Logger *slog.Logger
}

// NewDashboard returns a Dashboard with an empty store.
func NewDashboard(cfg DashboardConfig) (*Dashboard, error) {
	if cfg.History == 0 {
		cfg.History = 4096
	}
	if cfg.Retry == 0 {
		cfg.Retry = time.Second
	}
	if cfg.WatchIdle == 0 {
		cfg.WatchIdle = 2 * time.Minute
	}
	if cfg.MaxIdleWatches == 0 {
		cfg.MaxIdleWatches = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dashboard{store: NewStore(), log: cfg.Logger, mux: http.NewServeMux(), watch: newWatchSets(cfg.WatchIdle, cfg.MaxIdleWatches)}
	hub, err := sse.NewHub(sse.Config{
		ClientID: clientID,
		Topics:   d.streamTopics,
		History:  cfg.History,
		// Keys left at the default: the hub remembers the newest event of
		// each key per audience, which here is one per point topic (the
		// point's current value) and the status broadcast. That is what a
		// fresh stream of per-point topics starts with and what Subscribe
		// sends a stream for the points it starts watching.
		Retry:        cfg.Retry,
		OnConnect:    d.onConnect,
		OnDisconnect: d.onDisconnect,
		Logger:       cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	d.hub = hub
	web, err := fs.Sub(webFiles, "web")
	if err != nil {
		return nil, err
	}
	d.mux.Handle("GET /", http.FileServerFS(web))
	d.mux.Handle("GET /sse.js", sse.ScriptHandler()) // the module web/dashboard.js imports
	d.mux.HandleFunc("GET /events", d.serveEvents)
	d.mux.HandleFunc("POST /api/watch", d.serveWatch)
	d.mux.HandleFunc("GET /api/watch", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST a watch set to /api/watch", http.StatusMethodNotAllowed)
	})
	d.mux.HandleFunc("GET /api/points", d.servePoints)
	d.mux.HandleFunc("GET /api/status", d.serveStatus)
	return d, nil
}

// ServeHTTP serves the dashboard's routes.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) { d.mux.ServeHTTP(w, r) }

// Shutdown ends every stream; see sse.Hub.Shutdown.
func (d *Dashboard) Shutdown(ctx context.Context) error { return d.hub.Shutdown(ctx) }

// Update publishes the samples that are newer than the stored ones: as one
// batch to the batch streams, and one keyed event per sample to the streams
// that watch that point. Clients that watch every point are subscribed to
// the topic of a point the store had not seen before its first value is
// published. It implements Sink.
func (d *Dashboard) Update(batch []Sample) {
	d.gate.Lock()
	defer d.gate.Unlock()
	var born []string // points the store has no sample of yet
	seen := make(map[string]bool, len(batch))
	for _, x := range batch {
		if !seen[x.PointID] && !d.store.Has(x.PointID) {
			born = append(born, x.PointID)
		}
		seen[x.PointID] = true
	}
	fresh := d.store.Apply(batch)
	if len(fresh) == 0 {
		return
	}
	if len(born) > 0 {
		d.followNewPoints(born)
	}
	// Not keyed: see Dashboard.
	d.publish(topicAll, sse.Event{Type: EventPoints, Data: mustJSON(fresh)})
	for _, s := range fresh {
		// Keyed by point: the hub's state of the topic is the point's
		// current value, and a stream that falls behind keeps only the
		// newest value of each point, in its queue and in a replay.
		d.publish(topicPrefix+s.PointID, sse.Event{Type: EventPoints, Data: mustJSON([]Sample{s}), Key: topicPrefix + s.PointID})
	}
}

// Points sets the order of the points in snapshots and in api/points: the
// reader's browse order. It implements Sink.
func (d *Dashboard) Points(ids []string) { d.store.Order(ids) }

// SetStatus stores st and sends it to every stream. It implements Sink.
func (d *Dashboard) SetStatus(st Status) {
	d.gate.Lock()
	defer d.gate.Unlock()
	d.status = st
	if _, err := d.hub.Broadcast(statusEvent(st)); err != nil && !errors.Is(err, sse.ErrHubClosed) {
		d.log.Error("dashboard: status not sent", "err", err)
	}
}

func (d *Dashboard) publish(topic string, ev sse.Event) {
	if _, err := d.hub.Publish(topic, ev); err != nil && !errors.Is(err, sse.ErrHubClosed) {
		d.log.Error("dashboard: event not sent", "topic", topic, "err", err)
	}
}

// streamReq is what the dashboard learns about one request to /events on
// its way through the hub: serveEvents puts it in the request's context,
// the hub's Config.Topics (streamTopics) and hooks fill it in and read it.
type streamReq struct {
	release func()    // opens the gate again; nil for a resume, which does not close it
	spec    watchSpec // the points ?points= names
	named   bool      // ?points= names points (a list, or *)
	counted bool      // the stream counts in its client's watch set (see onConnect)
}

type streamReqKey struct{}

// requestOf returns the streamReq of a request to /events.
func requestOf(r *http.Request) *streamReq {
	sr, _ := r.Context().Value(streamReqKey{}).(*streamReq)
	if sr == nil {
		sr = &streamReq{} // not through serveEvents: nothing to release or count
	}
	return sr
}

// serveEvents hands the request to the hub. For a fresh stream (no
// Last-Event-ID) it closes the gate first; onConnect, which the hub calls
// on this goroutine once the stream is registered and before it writes
// anything (so no network write happens under the gate), sends a batch
// stream its snapshot and opens it. If the hub refuses the stream, onConnect
// never runs and the gate opens when ServeHTTP returns.
func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	sr := &streamReq{}
	if r.Header.Get("Last-Event-ID") == "" {
		d.gate.Lock()
		var once sync.Once
		sr.release = func() { once.Do(d.gate.Unlock) }
		defer sr.release()
	}
	d.hub.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), streamReqKey{}, sr)))
}

// onConnect starts a stream. A fresh batch stream gets the current value of
// every point as one batch: the gate is held, so nothing was published since
// the stream was registered. (The current status comes with the hub's keyed
// state, before it.) Then the stream is matched to its client's watch set
// (see connectWatch).
func (d *Dashboard) onConnect(info sse.StreamInfo) {
	sr := requestOf(info.Request)
	if sr.release != nil {
		defer sr.release()
		if slices.Equal(info.Topics, []string{topicAll}) {
			if snap := d.store.Snapshot(nil); len(snap) > 0 {
				// Not keyed: a live event queued behind the snapshot must not
				// replace it, so the snapshot stays the first batch the
				// stream reads.
				if _, err := d.hub.Send(info.ClientID, sse.Event{Type: EventPoints, Data: mustJSON(snap)}); err != nil {
					d.log.Warn("dashboard: snapshot not sent", "client", info.ClientID, "err", err)
				}
			}
		}
	}
	d.connectWatch(info, sr)
}

// onDisconnect lets go of a stream's count in its client's watch set.
func (d *Dashboard) onDisconnect(info sse.StreamInfo, _ sse.DisconnectReason) {
	d.disconnectWatch(info, requestOf(info.Request))
}

// servePoints answers the latest value of every point, as JSON.
func (d *Dashboard) servePoints(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, d.store.Snapshot(nil))
}

// serveStatus answers the OPC UA connection's status, as JSON.
func (d *Dashboard) serveStatus(w http.ResponseWriter, r *http.Request) {
	d.gate.Lock()
	st := d.status
	d.gate.Unlock()
	writeJSON(w, st)
}

// clientIDPattern is what a page may send as ?client=: the ID it made for
// its EventSource. The same ID on every reconnect lets the hub replay the
// events it sent to that stream alone (its snapshot) if they were missed.
var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)

// clientID is the hub's Config.ClientID: ?client= if given, else random.
func clientID(r *http.Request) (string, error) {
	id := r.URL.Query().Get("client")
	if id == "" {
		return randomID(), nil
	}
	if !clientIDPattern.MatchString(id) {
		return "", &sse.StatusError{Code: http.StatusBadRequest, Err: errors.New("bad ?client= parameter")}
	}
	return id, nil
}

// randomID returns 96 random bits, URL-safe.
func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func statusEvent(st Status) sse.Event {
	return sse.Event{Type: EventStatus, Data: mustJSON(st), Key: EventStatus}
}

// mustJSON encodes v, which is always encodable: Samples hold only values
// jsonValue made safe.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(mustJSON(v))
}
