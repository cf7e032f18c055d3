package main

import (
	"cmp"
	"encoding/json"
	"slices"
	"sync"
	"time"
)

// Sample is one value of one point, as the page receives it: an element of
// the JSON array carried by a "monitor_points" event.
type Sample struct {
	PointID  string `json:"pointId"`  // the OPC UA node ID, e.g. "ns=1;s=Boiler.Temperature"
	Value    any    `json:"value"`    // a JSON number, bool, string, array or null
	Status   string `json:"status"`   // "Good", or the OPC UA status name ("BadCommunicationError", ...)
	UpdateAt Stamp  `json:"updateAt"` // when the value changed at its source
}

// Stamp is a point in time with microsecond resolution. It encodes in JSON
// as a fixed-width UTC string ("2006-01-02T15:04:05.000000Z"), so stamps
// compare as strings in the same order as in time, and JavaScript's Date
// parses them.
type Stamp struct{ time.Time }

// stampLayout is RFC 3339 with exactly six fractional digits.
const stampLayout = "2006-01-02T15:04:05.000000Z07:00"

// NewStamp returns t truncated to the microsecond, in UTC.
func NewStamp(t time.Time) Stamp { return Stamp{t.Truncate(time.Microsecond).UTC()} }

// MarshalJSON writes the fixed-width form.
func (s Stamp) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(stampLayout)+2)
	b = append(b, '"')
	b = s.UTC().AppendFormat(b, stampLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON reads any RFC 3339 time.
func (s *Stamp) UnmarshalJSON(b []byte) error {
	var t time.Time
	if err := json.Unmarshal(b, &t); err != nil {
		return err
	}
	*s = NewStamp(t)
	return nil
}

// Store keeps the latest sample of every point. It is the source of the
// snapshot a new batch stream starts with, and the filter that keeps values
// in order: a sample reaches browsers only if it is newer than the one the
// store holds for its point. All methods are safe for concurrent use.
type Store struct {
	mu     sync.RWMutex
	order  []string          // IDs of the points with a sample, by rank, then as first seen
	rank   map[string]int    // by point ID: the place Order gave it
	latest map[string]Sample // by point ID
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{latest: make(map[string]Sample), rank: make(map[string]int)}
}

// Order sets the order of points: those of ids in that order (the reader
// gives its browse order at each connection), then the others in the order
// they were first seen. It does not depend on which value arrives first: an
// OPC UA server may split the initial values over several notifications.
func (s *Store) Order(ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.rank)
	for i, id := range ids {
		if _, dup := s.rank[id]; !dup {
			s.rank[id] = i
		}
	}
	slices.SortStableFunc(s.order, func(a, b string) int { return cmp.Compare(s.rankOf(a), s.rankOf(b)) })
}

// rankOf is the place of point id: its rank, or after every ranked point.
// s.mu is held.
func (s *Store) rankOf(id string) int {
	if r, ok := s.rank[id]; ok {
		return r
	}
	return len(s.rank)
}

// Apply records the samples whose UpdateAt is strictly later than the stored
// sample of their point, and returns those, in input order. Others are
// repeats (an OPC UA client receives the current value again after every
// reconnect) or stale, and are dropped, so a point never goes back in time
// and no (PointID, UpdateAt) pair is sent twice.
func (s *Store) Apply(in []Sample) []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Sample
	for _, x := range in {
		old, ok := s.latest[x.PointID]
		if ok && !x.UpdateAt.After(old.UpdateAt.Time) {
			continue
		}
		if !ok {
			// After every point ranked before it or unranked and seen before.
			r := s.rankOf(x.PointID)
			i := len(s.order)
			for i > 0 && s.rankOf(s.order[i-1]) > r {
				i--
			}
			s.order = slices.Insert(s.order, i, x.PointID)
		}
		s.latest[x.PointID] = x
		out = append(out, x)
	}
	return out
}

// Snapshot returns the latest sample of each point in ids that has one, in
// the store's order (see Order); nil ids means every point.
func (s *Store) Snapshot(ids []string) []Sample {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Sample, 0, len(s.order))
	for _, id := range s.order {
		if ids == nil || slices.Contains(ids, id) {
			out = append(out, s.latest[id])
		}
	}
	return out
}

// Has reports whether the store holds a sample of point id.
func (s *Store) Has(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.latest[id]
	return ok
}

// IDs returns the ID of every point with a sample, in the store's order.
func (s *Store) IDs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.order)
}
