package main

import (
	"container/list"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ssehub/sse"
)

// Watch sets: the points a client follows on its per-point stream, which it
// may change at run time, without reopening the stream, with an ordinary
// request:
//
//	POST /api/watch  {"client":"<its ?client= ID>","points":["ns=1;s=A","ns=1;s=B"]}
//	POST /api/watch  {"client":"<its ?client= ID>","all":true}
//
// The dashboard records the new set for the client ID and subscribes the
// client's open streams to the topics of the points it adds (the hub then
// sends each stream the current value of those points from its keyed state,
// before their live changes) and unsubscribes them from the points it drops.
// Then it sends the client a watch event. Config.Topics gives every later
// stream of that client ID the recorded set, so a resume replays exactly
// the points the client watches.
//
// A resume needs nothing more of the dashboard. The values Subscribe sends
// are the hub's keyed state, which it keeps no history of, so they carry no
// id; but the hub remembers each run-time subscription, and a client that
// resumes with a Last-Event-ID not past it (it dropped before anything with
// an id came after the values: the watch event) starts with those topics'
// current values instead of their replay. Nothing is lost, but a value may
// come twice: a current value sent from the hub's state, by a watch change
// or at the start of such a resume, comes once more on the client's next
// resume if the client dropped after it read the value and before it read
// anything published after it. After a change's values that is the watch
// event; after the values a resume starts with, the end of its replay (the
// replayed events are older than those values). The value that comes again
// is the same or a newer one, never an older one, and the page ignores a
// value that is not newer than the one it shows.
//
// A change made while the client has no open stream (its browser is
// reconnecting) reaches no stream: its watch event goes to history only,
// and a resume that history cannot cover (a reset) never sees it. So the
// dashboard keeps the topics such a change added in watchSet.unsent:
// Config.Topics leaves them out, and connectWatch subscribes the stream to
// them as it starts, which sends their current values and then a watch
// event, whatever the resume replays.

// EventWatch is the type of the event that tells a client its watch set
// changed: JSON {"gen":n,"all":bool,"count":n}. It follows the current
// values of the points the change added, and after it no value comes of a
// point the change dropped. It is the first event with an id after those
// values: it moves the client's Last-Event-ID past the subscription, so a
// later resume replays those points instead of sending their values again.
const EventWatch = "watch"

// maxWatched bounds the points one client may name, in ?points= or in
// POST /api/watch.
const maxWatched = 1000

// maxPointID bounds the length of a point ID a client names, in bytes.
const maxPointID = 1024

// maxWatchBody bounds the body of POST /api/watch: maxWatched IDs of
// maxPointID bytes, JSON-escaped, and some.
const maxWatchBody = 2 << 20

// watchSpec is a set of points to follow: every point, or the listed ones.
type watchSpec struct {
	all bool
	ids []string // distinct, in the order named; nil when all
}

// topics returns the topics of the points of w; for every point, those the
// store holds now.
func (w watchSpec) topics(store *Store) []string {
	ids := w.ids
	if w.all {
		ids = store.IDs()
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = topicPrefix + id
	}
	return out
}

// same reports whether w and o name the same points.
func (w watchSpec) same(o watchSpec) bool {
	if w.all || o.all {
		return w.all == o.all
	}
	return len(w.ids) == len(o.ids) && !slices.ContainsFunc(o.ids, func(id string) bool { return !slices.Contains(w.ids, id) })
}

// count is the number of points w names, for every point those of store.
func (w watchSpec) count(store *Store) int {
	if w.all {
		return len(store.IDs())
	}
	return len(w.ids)
}

// newSpec checks a list of point IDs, "*" alone meaning every point, and
// returns it as a watchSpec.
func newSpec(list []string) (watchSpec, error) {
	var spec watchSpec
	for _, p := range list {
		p = strings.TrimSpace(p)
		switch {
		case p == "":
			continue
		case p == "*":
			spec.all = true
			continue
		case len(p) > maxPointID:
			return watchSpec{}, fmt.Errorf("a point ID is longer than %d bytes", maxPointID)
		case !utf8.ValidString(p) || strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f }):
			return watchSpec{}, fmt.Errorf("point ID %q is not valid UTF-8 text", p)
		case slices.Contains(spec.ids, p):
			continue
		}
		if len(spec.ids) == maxWatched {
			return watchSpec{}, fmt.Errorf("more than %d points", maxWatched)
		}
		spec.ids = append(spec.ids, p)
	}
	if spec.all && len(spec.ids) > 0 {
		return watchSpec{}, errors.New(`"*" (every point) together with point IDs`)
	}
	if spec.all {
		spec.ids = nil
	}
	return spec, nil
}

// parsePoints reads ?points= (comma-separated, may be repeated; "*" alone
// means every point). named is false when it names nothing: the stream
// follows topicAll. It reads the raw query itself, so node IDs may be
// written as they are ("ns=1;s=Temp"): net/url would drop a parameter that
// holds a raw ';'.
func parsePoints(r *http.Request) (spec watchSpec, named bool, err error) {
	var list []string
	for _, kv := range strings.Split(r.URL.RawQuery, "&") {
		v, ok := strings.CutPrefix(kv, "points=")
		if !ok {
			continue
		}
		v, err := url.QueryUnescape(v)
		if err != nil {
			return watchSpec{}, false, err
		}
		list = append(list, strings.Split(v, ",")...)
	}
	if spec, err = newSpec(list); err != nil {
		return watchSpec{}, false, err
	}
	return spec, spec.all || len(spec.ids) > 0, nil
}

// watchSet is the watch set recorded for one client ID.
type watchSet struct {
	client  string
	spec    watchSpec
	gen     uint64          // counts the changes of spec
	streams int             // the client's open streams that count in it
	idle    *list.Element   // its element of watchSets.idle while streams is 0
	idleAt  time.Time       // when streams went to 0
	unsent  map[string]bool // topics spec added while no stream of the client was open (see the top of this file)
}

// watchSets are the watch sets, by client ID. One is made when a stream
// named by ?client= and ?points= connects, from its ?points=, and POST
// /api/watch changes it.
//
// Their memory is bounded. A set whose client has an open stream stays (the
// hub holds as much per stream, in its topics); there are at most as many
// of those as streams. When the client's last stream ends, its set is kept
// for idleFor, because the browser reconnects with Last-Event-ID and the
// resume must follow the set, and at most maxIdle such sets are kept, the
// longest idle going first (checked whenever a stream connects or ends, or
// a change comes, so the count bounds them in between). Dropping a set at
// once, when its last stream ends, would lose it at every drop, just when it
// is needed. A resume that finds its set gone (Config.Topics) is answered
// 409: the page then opens a fresh stream with its points in ?points=.
type watchSets struct {
	mu      sync.Mutex // a leaf: taken after Dashboard.gate, never before it
	byID    map[string]*watchSet
	idle    *list.List // of *watchSet whose client has no open stream, longest idle first
	idleFor time.Duration
	maxIdle int
}

func newWatchSets(idleFor time.Duration, maxIdle int) watchSets {
	return watchSets{byID: make(map[string]*watchSet), idle: list.New(), idleFor: idleFor, maxIdle: maxIdle}
}

// busy takes w off the idle list. Callers hold ws.mu.
func (ws *watchSets) busy(w *watchSet) {
	if w.idle != nil {
		ws.idle.Remove(w.idle)
		w.idle = nil
	}
}

// rest puts w at the end of the idle list, idle from now. Callers hold
// ws.mu.
func (ws *watchSets) rest(w *watchSet, now time.Time) {
	ws.busy(w)
	w.idle, w.idleAt = ws.idle.PushBack(w), now
	ws.expire(now)
}

// expire drops the sets idle for longer than idleFor, and the longest idle
// beyond maxIdle. Callers hold ws.mu.
func (ws *watchSets) expire(now time.Time) {
	for e := ws.idle.Front(); e != nil; e = ws.idle.Front() {
		w := e.Value.(*watchSet)
		if now.Sub(w.idleAt) < ws.idleFor && ws.idle.Len() <= ws.maxIdle {
			return
		}
		ws.idle.Remove(e)
		w.idle = nil
		delete(ws.byID, w.client)
	}
}

// len returns the number of sets kept and of those whose client has no open
// stream.
func (ws *watchSets) len() (all, idle int) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return len(ws.byID), ws.idle.Len()
}

// explicitClient returns the ?client= ID of a stream's request, or "" when
// the hub made a random ID up: nobody can name that client, so it gets no
// watch set.
func explicitClient(r *http.Request) string {
	return r.URL.Query().Get("client")
}

// streamTopics is the hub's Config.Topics. A client with a watch set follows
// it, but for the topics it added while the client had no open stream
// (watchSet.unsent), which connectWatch subscribes the stream to. Otherwise
// a stream follows the points its ?points= names, or topicAll.
func (d *Dashboard) streamTopics(r *http.Request) ([]string, error) {
	spec, named, err := parsePoints(r)
	if err != nil {
		return nil, &sse.StatusError{Code: http.StatusBadRequest, Err: err}
	}
	sr := requestOf(r)
	sr.spec, sr.named = spec, named
	client := explicitClient(r)

	ws := &d.watch
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w := ws.byID[client]; w != nil && client != "" {
		return slices.DeleteFunc(w.spec.topics(d.store), func(t string) bool { return w.unsent[t] }), nil
	}
	switch {
	case named && r.Header.Get("Last-Event-ID") != "" && client != "":
		// Its first stream made a set, which has gone: ?points= may no
		// longer be what the client watches.
		return nil, &sse.StatusError{Code: http.StatusConflict, Err: errors.New("watch set expired")}
	case named:
		return spec.topics(d.store), nil
	}
	return []string{topicAll}, nil
}

// connectWatch counts a new stream in its client's watch set, making the set
// from ?points= for the client's first stream, and brings the stream's
// topics in line with the set: it registered with those Config.Topics gave
// it, which left out the set's unsent topics, and the set may have changed
// since.
func (d *Dashboard) connectWatch(info sse.StreamInfo, sr *streamReq) {
	if explicitClient(info.Request) == "" {
		return
	}
	ws := &d.watch
	ws.mu.Lock()
	w := ws.byID[info.ClientID]
	if w == nil {
		if !sr.named {
			ws.mu.Unlock()
			return // a batch stream: no watch set
		}
		w = &watchSet{client: info.ClientID, spec: sr.spec, unsent: make(map[string]bool)}
		ws.byID[info.ClientID] = w
		ws.expire(time.Now())
	}
	w.streams++
	sr.counted = true
	ws.busy(w)
	add, drop := diff(info.Topics, w.spec.topics(d.store))
	ws.mu.Unlock()
	if len(add)+len(drop) == 0 {
		return
	}
	if sr.release == nil { // a resume: the gate is open
		d.gate.Lock()
		defer d.gate.Unlock()
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	// Again: a watch change may have come in between. Subscribe and
	// Unsubscribe change nothing that is already so.
	add, drop = diff(info.Topics, w.spec.topics(d.store))
	d.resubscribe(w, add, drop)
}

// disconnectWatch lets go of a stream's count in its client's watch set.
func (d *Dashboard) disconnectWatch(info sse.StreamInfo, sr *streamReq) {
	if !sr.counted {
		return
	}
	ws := &d.watch
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w := ws.byID[info.ClientID]; w != nil {
		if w.streams--; w.streams == 0 {
			ws.rest(w, time.Now())
		}
	}
}

// followNewPoints subscribes the streams of every client that watches every
// point to the topics of points seen for the first time. Nothing was
// published on those topics yet, so they get the first values live. The
// caller holds the gate.
func (d *Dashboard) followNewPoints(ids []string) {
	topics := watchSpec{ids: ids}.topics(d.store)
	ws := &d.watch
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, w := range ws.byID {
		if w.spec.all && w.streams > 0 {
			d.hub.Subscribe(w.client, topics...)
		}
	}
}

// resubscribe unsubscribes the client's streams from drop and subscribes
// them to add, which sends them the current values of add's points, then
// sends the client a watch event. Topics added while the client has no
// open stream are unsent: no stream got their values. Callers hold the gate
// and the watch sets' lock.
func (d *Dashboard) resubscribe(w *watchSet, add, drop []string) {
	for _, t := range drop {
		delete(w.unsent, t)
	}
	if len(drop) > 0 {
		d.hub.Unsubscribe(w.client, drop...)
	}
	if len(add) > 0 {
		sent := d.hub.Subscribe(w.client, add...) > 0
		for _, t := range add {
			if sent {
				delete(w.unsent, t)
			} else {
				w.unsent[t] = true
			}
		}
	}
	data := mustJSON(struct {
		Gen   uint64 `json:"gen"`
		All   bool   `json:"all"`
		Count int    `json:"count"`
	}{w.gen, w.spec.all, w.spec.count(d.store)})
	if _, err := d.hub.Send(w.client, sse.Event{Type: EventWatch, Data: data}); err != nil && !errors.Is(err, sse.ErrHubClosed) {
		d.log.Error("dashboard: watch event not sent", "client", w.client, "err", err)
	}
}

// diff returns the topics of want that have lacks, and those of have that
// want lacks.
func diff(have, want []string) (add, drop []string) {
	in := func(list []string) map[string]bool {
		m := make(map[string]bool, len(list))
		for _, t := range list {
			m[t] = true
		}
		return m
	}
	h, w := in(have), in(want)
	for _, t := range want {
		if !h[t] {
			add = append(add, t)
		}
	}
	for _, t := range have {
		if !w[t] {
			drop = append(drop, t)
		}
	}
	return add, drop
}

// watchRequest is the body of POST /api/watch: the client's ID, and either
// the points to watch or all.
type watchRequest struct {
	Client string   `json:"client"`
	Points []string `json:"points"`
	All    bool     `json:"all"`
}

// watchReply answers POST /api/watch: the client's watch set as recorded,
// its generation (the gen of the watch event the change sent), and the
// streams of the client that follow it now.
type watchReply struct {
	Client  string   `json:"client"`
	Gen     uint64   `json:"gen"`
	All     bool     `json:"all"`
	Points  []string `json:"points"`
	Streams int      `json:"streams"`
}

// serveWatch changes a client's watch set: POST /api/watch with a JSON
// watchRequest. It answers 200 with a watchReply; 400 for a bad request
// (not JSON, unknown fields, a bad client ID, a bad or over-long point ID,
// more than maxWatched points, points and all together); 409 when the
// client has no watch set (it has not opened /events?client=…&points=…,
// or that was too long ago); 413 for a body over 2 MiB; 415 for another
// content type than application/json. (Demanding JSON also keeps other
// sites' plain forms out.)
func (d *Dashboard) serveWatch(rw http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		http.Error(rw, "POST /api/watch takes application/json", http.StatusUnsupportedMediaType)
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(rw, r.Body, maxWatchBody))
	dec.DisallowUnknownFields()
	var req watchRequest
	err := dec.Decode(&req)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("data after the JSON object")
	}
	if err != nil {
		if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
			http.Error(rw, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(rw, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	if !clientIDPattern.MatchString(req.Client) {
		http.Error(rw, `"client" must be the stream's ?client= ID (8 to 64 of A-Z a-z 0-9 _ -)`, http.StatusBadRequest)
		return
	}
	if req.All && len(req.Points) > 0 {
		http.Error(rw, `give "points" or "all", not both`, http.StatusBadRequest)
		return
	}
	if slices.Contains(req.Points, "*") {
		http.Error(rw, `"*" is not a point ID: give "all": true`, http.StatusBadRequest)
		return
	}
	spec, err := newSpec(req.Points)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	spec.all = req.All

	reply, ok := d.changeWatch(req.Client, spec)
	if !ok {
		http.Error(rw, "no watch set for this client: open /events?client=<id>&points=<IDs or *> first", http.StatusConflict)
		return
	}
	writeJSON(rw, reply)
}

// changeWatch makes spec the watch set of client, and reports false if the
// client has none.
func (d *Dashboard) changeWatch(client string, spec watchSpec) (watchReply, bool) {
	d.gate.Lock()
	defer d.gate.Unlock()
	ws := &d.watch
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.byID[client]
	if w == nil {
		return watchReply{}, false
	}
	if !w.spec.same(spec) {
		add, drop := diff(w.spec.topics(d.store), spec.topics(d.store))
		w.spec = spec
		w.gen++
		d.resubscribe(w, add, drop)
	}
	if w.idle != nil {
		ws.rest(w, time.Now()) // a client that changes its set is about to reconnect
	}
	return watchReply{Client: client, Gen: w.gen, All: w.spec.all, Points: slices.Clone(w.spec.ids), Streams: w.streams}, true
}
