package interop

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// probeRounds is what /probe writes, one round per connection of a
// client: each round shows one kind of block on its own, then ends the
// stream, so that the client's next request says (Last-Event-ID) whether
// the round moved its resume point. Rounds 1 to 3 end with an unnamed
// marker event (data "end-1" …) so that what the client hands over can be
// told apart by round; rounds 4 to 6 have none, because a later event
// would carry their id and move the resume point by itself.
var probeRounds = []string{
	"retry: 100\n\ndata: end-1\n\n",                       // a block with only retry
	":\n:\ndata: end-2\n\n",                               // bare comment lines (the hub's heartbeat), no blank line of their own
	": keep-alive\n\ndata: end-3\n\n",                     // a comment-only block (a comment, then a blank line)
	"id: p-4\n\n",                                         // an id-only block
	"id: p-5\nevent: sse-position\ndata:\n\n",             // a named event with empty data
	"retry: 100\nid: p-6\nevent: sse-position\ndata:\n\n", // the same with a retry field in its block
}

// serveProbe writes round n of probeRounds to the n-th request of a
// client (by its client parameter), waits a moment so the client reads it,
// and ends the stream; later requests are held open, silent, until the
// client goes. Each request is noted in requests, like the hub's.
func (s *testServer) serveProbe(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("client")
	lastID, hasID := r.Header.Get("Last-Event-ID"), len(r.Header.Values("Last-Event-ID")) > 0
	var n int
	s.update(func() {
		for _, q := range s.requests {
			if q.ClientID == id {
				n++
			}
		}
		s.requests = append(s.requests, streamRequest{ClientID: id, LastEventID: lastID, HasID: hasID})
	})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if n >= len(probeRounds) {
		_ = rc.Flush()
		<-r.Context().Done()
		return
	}
	_, _ = w.Write([]byte(probeRounds[n]))
	_ = rc.Flush()
	select {
	case <-time.After(100 * time.Millisecond):
	case <-r.Context().Done():
	}
}

// probeReport is what one client did with the probe's rounds.
type probeReport struct {
	Retry        []record // what it handed over for the retry-only block (before end-1)
	BareComments []record // for the bare comment lines (between end-1 and end-2)
	CommentBlock []record // for the comment-only block (between end-2 and end-3)
	IDOnly       []record // for the id-only block (after end-3, not the named event)
	Named        []record // for the named empty event (id p-5)
	RetryNamed   []record // for the named empty event with a retry field (id p-6)
	LastIDs      []string // the Last-Event-ID of each request after the first, "-" for none
	Completed    bool     // whether the client made all the requests
}

// analyseProbe sorts a client's records into the probe's rounds.
func analyseProbe(recs []record, reqs []streamRequest) probeReport {
	var p probeReport
	round := 1
	for _, r := range recs {
		if !r.isEvent() {
			continue
		}
		switch {
		case r.Data == "end-1":
			round = 2
		case r.Data == "end-2":
			round = 3
		case r.Data == "end-3":
			round = 4
		case round == 1:
			p.Retry = append(p.Retry, r)
		case round == 2:
			p.BareComments = append(p.BareComments, r)
		case round == 3:
			p.CommentBlock = append(p.CommentBlock, r)
		case r.ID == "p-6":
			p.RetryNamed = append(p.RetryNamed, r)
		case r.ID == "p-5" || r.Type == "sse-position":
			p.Named = append(p.Named, r)
		default:
			p.IDOnly = append(p.IDOnly, r)
		}
	}
	for i, q := range reqs {
		if i == 0 {
			continue
		}
		if q.HasID {
			p.LastIDs = append(p.LastIDs, q.LastEventID)
		} else {
			p.LastIDs = append(p.LastIDs, "-")
		}
	}
	p.Completed = len(reqs) > len(probeRounds)
	return p
}

// moved says whether the request after round k+1 (LastIDs[k]) carried
// want, the id of that round's block.
func (p probeReport) moved(k int, want string) string {
	if k >= len(p.LastIDs) {
		return "its resume point is unknown (no request followed)"
	}
	if p.LastIDs[k] == want {
		return "it moved the resume point (the next request sent Last-Event-ID " + quote(want) + ")"
	}
	if p.LastIDs[k] == "-" {
		return "it did not move the resume point (the next request sent no Last-Event-ID)"
	}
	return "it did not move the resume point (the next request sent Last-Event-ID " + quote(p.LastIDs[k]) + ")"
}

// describe says in words what a client handed over for one kind of
// block; single is client.single.
func describe(recs []record, single bool) string {
	if len(recs) == 0 {
		return "nothing dispatched"
	}
	var parts []string
	for _, r := range recs {
		where := "onmessage"
		switch {
		case single:
			where = "its handler"
		case r.Kind == "named":
			where = "the " + quote(r.Type) + " listener"
		}
		parts = append(parts, fmt.Sprintf("dispatched to %s (type %s, data %s, id %s)", where, quote(r.Type), quote(r.Data), quote(r.ID)))
	}
	return strings.Join(parts, "; ")
}

// quote renders s as a Go string literal, for messages and RESULTS.md.
func quote(s string) string { return strconv.Quote(s) }
