package sseredis

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ssehub/sse"
)

// An event's record is how the broker stores and pushes it:
//
//	" <len(audience)> <len(ID)> <len(Key)> <len(Body)>\n<audience><ID><Key><Body>"
//
// A batch of events is one stream entry (see lua/publish.lua): its field
// "d" holds their records one after the other and, when there are several,
// "n" their number; a push carries the same records. Every event has an id
// of its own, the k-th (from 0) of the entry "<ms>-<s>" of n events
// "<ms>-<s-n+1+k>", so positions are stream ids as before, one per event.
// Stream entries of an earlier version have four fields ("a", "i", "k",
// "b") and one event; decodeEntry reads them too.

// event is an event read from the stream or a push, with its id.
type event struct {
	id streamID
	m  *sse.Message
}

// eventID returns the id of the k-th event (from 0) of the entry id of n
// events: the entry's id is its last event's.
func eventID(id streamID, n, k int) streamID {
	return streamID{id.ms, id.seq - uint64(n-1-k)}
}

// appendRecord appends m's record, for the audience aud, to dst.
func appendRecord(dst []byte, aud string, m *sse.Message) []byte {
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(aud)), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(m.ID)), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(m.Key)), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(m.Body)), 10)
	dst = append(dst, '\n')
	dst = append(dst, aud...)
	dst = append(dst, m.ID...)
	dst = append(dst, m.Key...)
	return append(dst, m.Body...)
}

// decodeRecord reads the record at the start of p into a Message without
// its position, and returns what follows it.
func decodeRecord(p string) (m *sse.Message, rest string, err error) {
	line, rest, ok := strings.Cut(p, "\n")
	if !ok || !strings.HasPrefix(line, " ") {
		return nil, "", fmt.Errorf("bad record header %.60q", line)
	}
	var n [4]int
	total := 0
	f := line[1:]
	for i := range n {
		var v string
		var more bool
		v, f, more = strings.Cut(f, " ")
		if more != (i < len(n)-1) {
			return nil, "", fmt.Errorf("bad record header %.60q", line)
		}
		if n[i], ok = parseLen(v, len(rest)); !ok {
			return nil, "", fmt.Errorf("bad record header %.60q", line)
		}
		total += n[i]
	}
	if total > len(rest) {
		return nil, "", errors.New("truncated record")
	}
	// The audience, ID and Key are copied out of p (a whole batch's push
	// or entry), so that what the hub keeps of them (keyed state, queued
	// events) does not pin the batch; Body is copied by the conversion.
	aud, rest := rest[:n[0]], rest[n[0]:]
	m = &sse.Message{ID: strings.Clone(rest[:n[1]])}
	rest = rest[n[1]:]
	m.Key, rest = strings.Clone(rest[:n[2]]), rest[n[2]:]
	m.Body, rest = []byte(rest[:n[3]]), rest[n[3]:]
	if m.To, ok = target(strings.Clone(aud)); !ok {
		return nil, "", fmt.Errorf("record without an audience (%.60q)", aud)
	}
	return m, rest, nil
}

// parseLen reads a length of a record's header, as appendRecord writes it
// (decimal digits, no leading zero), no more than max.
func parseLen(v string, max int) (int, bool) {
	if v == "" || len(v) > 1 && v[0] == '0' || len(v) > 10 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int(v[i]-'0')
	}
	return n, n <= max
}

// decodeEntry reads a stream entry, [id, [field, value, ...]], into its
// events, their positions in epoch set.
func decodeEntry(e any, epoch string) (streamID, []event, error) {
	pair, _ := e.([]any)
	if len(pair) != 2 {
		return streamID{}, nil, fmt.Errorf("malformed entry %v", e)
	}
	id, ok := parseID(str(pair[0]))
	if !ok {
		return streamID{}, nil, fmt.Errorf("bad entry id %v", pair[0])
	}
	fields, _ := pair[1].([]any)
	n, d, hasD := 1, "", false
	m := &sse.Message{}
	aud := ""
	for j := 0; j+1 < len(fields); j += 2 {
		v := str(fields[j+1])
		switch str(fields[j]) {
		case "n":
			if n, ok = parseLen(v, 1<<20); !ok || n == 0 {
				return id, nil, fmt.Errorf("entry %s: bad count %.20q", id, v)
			}
		case "d":
			d, hasD = v, true
		case "a": // an entry of an earlier version
			aud = v
		case "i":
			m.ID = v
		case "k":
			m.Key = v
		case "b":
			m.Body = []byte(v)
		}
	}
	if hasD {
		evs, err := decodeRecords(d, epoch, id, n)
		if err != nil {
			return id, nil, fmt.Errorf("entry %s: %w", id, err)
		}
		return id, evs, nil
	}
	if m.To, ok = target(aud); !ok {
		return id, nil, fmt.Errorf("entry %s has no audience", id)
	}
	m.Pos = epoch + "-" + id.String()
	return id, []event{{id, m}}, nil
}

// decodeRecords reads the n records of the entry id, d, into its events,
// their positions in epoch set.
func decodeRecords(d, epoch string, id streamID, n int) ([]event, error) {
	if uint64(n) > id.seq+1 {
		return nil, fmt.Errorf("%d events cannot end at seq %d", n, id.seq)
	}
	evs := make([]event, 0, n)
	for k := range n {
		m, rest, err := decodeRecord(d)
		if err != nil {
			return nil, fmt.Errorf("event %d of %d: %w", k, n, err)
		}
		eid := eventID(id, n, k)
		m.Pos = epoch + "-" + eid.String()
		evs = append(evs, event{eid, m})
		d = rest
	}
	if d != "" {
		return nil, fmt.Errorf("bytes after %d records", n)
	}
	return evs, nil
}
