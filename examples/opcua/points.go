package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
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
// snapshot a new stream starts with, and the filter that keeps values in
// order: a sample reaches browsers only if it is newer than the one the store
// holds for its point. All methods are safe for concurrent use.
type Store struct {
	mu     sync.RWMutex
	order  []string          // point IDs in the order they were first seen
	latest map[string]Sample // by point ID
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{latest: make(map[string]Sample)}
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
			s.order = append(s.order, x.PointID)
		}
		s.latest[x.PointID] = x
		out = append(out, x)
	}
	return out
}

// Snapshot returns the latest sample of each point in ids that has one, in
// the order points were first seen; nil ids means every point.
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

// setKey returns the conflation key of a batch: the same for two batches
// exactly when they hold the same set of points. A newer batch over the same
// set carries a newer value of every point of the older one, so the hub may
// drop the older one (Event.Key) without losing any point's latest value.
// A key shared by batches over different sets would lose values, which is
// why a batch is never keyed by a constant such as "all".
func setKey(batch []Sample) string {
	ids := make([]string, 0, len(batch))
	for _, x := range batch {
		ids = append(ids, x.PointID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	h := sha256.New()
	var n [8]byte
	for _, id := range ids {
		binary.BigEndian.PutUint64(n[:], uint64(len(id)))
		h.Write(n[:])
		h.Write([]byte(id))
	}
	return "set:" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}
