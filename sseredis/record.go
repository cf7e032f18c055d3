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
// A stream entry holds one field, "d", the record; a push carries each
// entry as its id followed by its record (see lua/publish.lua). One field
// per entry costs Redis less than one per part, and the push is built by
// concatenation alone. Stream entries of an earlier version have four
// fields ("a", "i", "k", "b"); decodeEntry reads both.

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
	aud, rest := rest[:n[0]], rest[n[0]:]
	m = &sse.Message{ID: rest[:n[1]]}
	rest = rest[n[1]:]
	m.Key, rest = rest[:n[2]], rest[n[2]:]
	m.Body, rest = []byte(rest[:n[3]]), rest[n[3]:]
	if m.To, ok = target(aud); !ok {
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

// decodeEntry reads a stream entry, [id, [field, value, ...]], into a
// Message without its position: the record in "d", or the four fields of
// an earlier version's entry.
func decodeEntry(e any) (*sse.Message, streamID, error) {
	pair, _ := e.([]any)
	if len(pair) != 2 {
		return nil, streamID{}, fmt.Errorf("malformed entry %v", e)
	}
	id, ok := parseID(str(pair[0]))
	if !ok {
		return nil, streamID{}, fmt.Errorf("bad entry id %v", pair[0])
	}
	fields, _ := pair[1].([]any)
	if len(fields) == 2 && str(fields[0]) == "d" {
		m, rest, err := decodeRecord(str(fields[1]))
		if err == nil && rest != "" {
			err = errors.New("bytes after the record")
		}
		if err != nil {
			return nil, id, fmt.Errorf("entry %s: %w", id, err)
		}
		return m, id, nil
	}
	m := &sse.Message{}
	aud := ""
	for j := 0; j+1 < len(fields); j += 2 {
		v := str(fields[j+1])
		switch str(fields[j]) {
		case "a":
			aud = v
		case "i":
			m.ID = v
		case "k":
			m.Key = v
		case "b":
			m.Body = []byte(v)
		}
	}
	if m.To, ok = target(aud); !ok {
		return nil, id, fmt.Errorf("entry %s has no audience", id)
	}
	return m, id, nil
}

// decodePush reads a push's entries: for each, its id and its record.
func decodePush(p, epoch string) (msgs []*sse.Message, last streamID, err error) {
	for p != "" {
		idText, _, _ := strings.Cut(p, " ")
		id, ok := parseID(idText)
		if !ok {
			return nil, last, fmt.Errorf("bad entry id %.40q", idText)
		}
		m, rest, err := decodeRecord(p[len(idText):])
		if err != nil {
			return nil, last, fmt.Errorf("entry %s: %w", id, err)
		}
		m.Pos = epoch + "-" + id.String()
		msgs = append(msgs, m)
		last, p = id, rest
	}
	if len(msgs) == 0 {
		return nil, last, errors.New("no entry")
	}
	return msgs, last, nil
}
