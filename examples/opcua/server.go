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
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/ssehub/sse"
)

// The event types the page listens for.
const (
	EventPoints = "monitor_points" // data: JSON [{pointId, value, status, updateAt}]
	EventStatus = "opcua_status"   // data: JSON Status
)

// Hub topics. A stream opened without ?points= follows topicAll, which
// carries one batch per OPC UA notification; a stream with ?points=a,b
// follows the topics of those points, which carry one event per value.
const (
	topicAll    = "points:all"
	topicPrefix = "point:"
)

//go:embed web
var webFiles embed.FS

// Dashboard serves the page (/), the event stream (/events) and the current
// values as JSON (/api/points, /api/status). It is the reader's Sink: it
// keeps the latest value of every point and publishes each change to the
// hub.
//
// Snapshot and replay. A stream opened without Last-Event-ID starts with
// the current status and a snapshot of the values it watches, followed by
// live changes; a stream that resumes with Last-Event-ID gets no snapshot,
// only what the hub replays (the changes it missed, the newest per point)
// and then live changes. To make the snapshot exact, publishing and the
// registration of a fresh stream take turns (the gate): no value can be
// published between the moment the hub registers the stream and the
// snapshot, so the stream never receives a value twice or an older value
// after a newer one. A resume that the hub cannot serve ends in an
// sse-reset event; the page then opens a fresh stream, which gets a
// snapshot.
type Dashboard struct {
	hub    *sse.Hub
	mux    *http.ServeMux
	store  *Store
	log    *slog.Logger
	gate   sync.Mutex // held while publishing, and from a fresh stream's arrival to its snapshot
	status Status     // guarded by gate
}

// DashboardConfig configures a Dashboard.
type DashboardConfig struct {
	// History is how many events the hub keeps for Last-Event-ID replay.
	// Zero means 4096.
	History int
	// Retry is the reconnection time browsers are told to use. Zero means 1 s.
	Retry time.Duration
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
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dashboard{store: NewStore(), log: cfg.Logger, mux: http.NewServeMux()}
	hub, err := sse.NewHub(sse.Config{
		ClientID: clientID,
		Topics:   topics,
		History:  cfg.History,
		// The dashboard sends its own snapshot, one batch of every watched
		// point (see onConnect); the hub's snapshot of keyed events would
		// repeat it as many small events.
		Keys:      -1,
		Retry:     cfg.Retry,
		OnConnect: d.onConnect,
		Logger:    cfg.Logger,
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
	d.mux.HandleFunc("GET /events", d.serveEvents)
	d.mux.HandleFunc("GET /api/points", d.servePoints)
	d.mux.HandleFunc("GET /api/status", d.serveStatus)
	return d, nil
}

// ServeHTTP serves the dashboard's routes.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) { d.mux.ServeHTTP(w, r) }

// Shutdown ends every stream; see sse.Hub.Shutdown.
func (d *Dashboard) Shutdown(ctx context.Context) error { return d.hub.Shutdown(ctx) }

// Update publishes the samples that are newer than the stored ones: as one
// batch to the streams that watch every point, and one event per sample to
// the streams that watch that point. It implements Sink.
func (d *Dashboard) Update(batch []Sample) {
	d.gate.Lock()
	defer d.gate.Unlock()
	fresh := d.store.Apply(batch)
	if len(fresh) == 0 {
		return
	}
	d.publish(topicAll, sse.Event{Type: EventPoints, Data: mustJSON(fresh), Key: setKey(fresh)})
	for _, s := range fresh {
		// Keyed by point: a stream that falls behind keeps only the newest
		// value of each point, in the queue and in a replay.
		d.publish(topicPrefix+s.PointID, sse.Event{Type: EventPoints, Data: mustJSON([]Sample{s}), Key: topicPrefix + s.PointID})
	}
}

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

// releaseKey carries, in a fresh stream's request context, the function that
// opens the gate again.
type releaseKey struct{}

// serveEvents hands the request to the hub. For a fresh stream (no
// Last-Event-ID) it closes the gate first; onConnect, which the hub calls
// on this goroutine once the stream is registered and before it writes
// anything (so no network write happens under the gate), sends the
// snapshot and opens it. If the hub refuses the stream, onConnect never runs and the
// gate opens when ServeHTTP returns.
func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Last-Event-ID") != "" {
		d.hub.ServeHTTP(w, r)
		return
	}
	d.gate.Lock()
	var once sync.Once
	release := func() { once.Do(d.gate.Unlock) }
	defer release()
	d.hub.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), releaseKey{}, release)))
}

// onConnect sends a fresh stream its snapshot: the status, then the current
// value of every point it watches. The gate is held, so nothing was
// published since the stream was registered.
func (d *Dashboard) onConnect(info sse.StreamInfo) {
	release, ok := info.Request.Context().Value(releaseKey{}).(func())
	if !ok {
		return // a resume: the hub's replay brings it up to date
	}
	defer release()
	// No conflation keys: a live event queued behind the snapshot must not
	// replace it, so the snapshot stays the first thing the stream reads.
	st := statusEvent(d.status)
	st.Key = ""
	if _, err := d.hub.Send(info.ClientID, st); err != nil {
		d.log.Warn("dashboard: snapshot not sent", "client", info.ClientID, "err", err)
		return
	}
	snap := d.store.Snapshot(watched(info.Topics))
	if len(snap) == 0 {
		return
	}
	ev := sse.Event{Type: EventPoints, Data: mustJSON(snap)}
	if _, err := d.hub.Send(info.ClientID, ev); err != nil {
		d.log.Warn("dashboard: snapshot not sent", "client", info.ClientID, "err", err)
	}
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

// maxWatched bounds the points one stream may name in ?points=.
const maxWatched = 1000

// topics is the hub's Config.Topics: the topics of the points named in
// ?points= (comma-separated, may be repeated), or topicAll. It reads the raw
// query itself, so node IDs may be written as they are ("ns=1;s=Temp"):
// net/url would drop a parameter that holds a raw ';'.
func topics(r *http.Request) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, kv := range strings.Split(r.URL.RawQuery, "&") {
		list, ok := strings.CutPrefix(kv, "points=")
		if !ok {
			continue
		}
		list, err := url.QueryUnescape(list)
		if err != nil {
			return nil, &sse.StatusError{Code: http.StatusBadRequest, Err: err}
		}
		for _, p := range strings.Split(list, ",") {
			p = strings.TrimSpace(p)
			if p == "" || seen[p] {
				continue
			}
			seen[p] = true
			out = append(out, topicPrefix+p)
		}
	}
	if len(out) > maxWatched {
		return nil, &sse.StatusError{Code: http.StatusBadRequest, Err: errors.New("too many points")}
	}
	if len(out) == 0 {
		return []string{topicAll}, nil
	}
	return out, nil
}

// watched returns the point IDs behind a stream's topics, or nil for all.
func watched(topics []string) []string {
	var ids []string
	for _, t := range topics {
		if t == topicAll {
			return nil
		}
		ids = append(ids, strings.TrimPrefix(t, topicPrefix))
	}
	return ids
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
