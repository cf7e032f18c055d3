package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

// DefaultMaxEventSize is the largest event a Decoder accepts unless
// SetMaxEventSize says otherwise: 1 MiB.
const DefaultMaxEventSize = 1 << 20

// Decoder reads events from an event stream exactly as the WHATWG HTML
// specification tells a browser to: lines end at CRLF, LF or CR (also when a
// CRLF is split across reads), one leading byte order mark is skipped,
// comments and unknown fields are ignored, an id containing NUL is ignored,
// retry takes digits only, invalid UTF-8 becomes U+FFFD, and an event cut
// off by the end of the stream is discarded. SetOnComment lets a caller hear
// the comments too (a server's heartbeats).
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	r   io.Reader
	buf []byte // buf[start:end] is read but not yet parsed
	// start, end index buf.
	start, end int
	err        error // the reader's error, returned once buf is parsed
	bomChecked bool
	skipLF     bool // the last line ended with a CR: a leading LF belongs to it
	max        int
	onComment  func(text string)

	idBuf    string        // the last event ID buffer
	lastID   string        // the last event ID string, set at dispatch
	retry    time.Duration // the stream's reconnection time, if retrySet
	retrySet bool          // a valid retry field was seen
	typ      string
	data     []byte
	evRetry  time.Duration
}

// NewDecoder returns a Decoder that reads from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: r, max: DefaultMaxEventSize}
}

// SetLastEventID seeds the last event ID, as a browser does on a reconnect
// that sent Last-Event-ID: events without an id field then report it.
// Call it before the first Decode.
func (d *Decoder) SetLastEventID(id string) {
	d.idBuf, d.lastID = id, id
}

// SetMaxEventSize bounds the bytes of one event: its data plus the line
// being read. Zero or less means DefaultMaxEventSize. Decode fails with an
// error wrapping ErrEventTooLarge when an event grows past it.
func (d *Decoder) SetMaxEventSize(n int) {
	if n <= 0 {
		n = DefaultMaxEventSize
	}
	d.max = n
}

// SetOnComment sets a function that Decode calls with the text of every
// comment line (one that starts with a colon, such as a server's ":"
// heartbeat), in stream order with the events: the text after the colon,
// without one leading space (as AppendComment writes it), with invalid UTF-8
// replaced by U+FFFD. It runs on the goroutine that calls Decode, before
// Decode returns, and must not call the Decoder. Comments never dispatch an
// event and f does not change what Decode returns. Nil, the default,
// ignores comments, as a browser does.
func (d *Decoder) SetOnComment(f func(text string)) {
	d.onComment = f
}

// LastEventID returns the last event ID string: what a reconnect should send
// as Last-Event-ID. It moves at every dispatched block, including blocks
// with an id but no data.
func (d *Decoder) LastEventID() string { return d.lastID }

// Retry returns the reconnection time the stream asked for, or 0 if it sent
// no valid retry field. A stream may ask for 0 too ("retry: 0"): use
// LookupRetry to tell the two apart.
func (d *Decoder) Retry() time.Duration { return d.retry }

// LookupRetry returns the reconnection time the stream asked for with its
// latest valid retry field, and whether it sent one. "retry: 0" gives
// (0, true): per the spec, reconnect without waiting. A field that is not
// all digits, a bare "retry" among them, changes nothing.
func (d *Decoder) LookupRetry() (time.Duration, bool) { return d.retry, d.retrySet }

// Decode returns the next event. Its ID is the last event ID string at the
// time it was dispatched, so it persists across events as in a browser; an
// empty Type means "message"; Retry is set if the event's own block carried
// a valid positive retry field (a "retry: 0" shows only in LookupRetry).
// Data is a fresh slice owned by the caller.
//
// At the end of the stream Decode returns io.EOF, discarding an unfinished
// event. Other read errors are returned as they are. Once Decode has
// returned an error it returns the same error again.
func (d *Decoder) Decode() (Event, error) {
	for {
		line, ok, err := d.readLine()
		if err != nil {
			return Event{}, err
		}
		if !ok {
			continue
		}
		if ev, dispatched := d.processLine(line); dispatched {
			return ev, nil
		}
	}
}

// readLine returns the next complete line without its line ending. ok is
// false when it only read more input. The returned slice is valid until the
// next call.
func (d *Decoder) readLine() (line []byte, ok bool, err error) {
	if !d.bomChecked {
		// A BOM counts only at the very start: wait for three bytes or the end.
		if d.end-d.start < 3 && d.err == nil && bytes.HasPrefix(bom, d.buf[d.start:d.end]) {
			return nil, false, d.fill()
		}
		d.bomChecked = true
		if bytes.HasPrefix(d.buf[d.start:d.end], bom) {
			d.start += len(bom)
		}
	}
	if d.skipLF && d.start < d.end {
		d.skipLF = false
		if d.buf[d.start] == '\n' {
			d.start++
		}
	}
	pending := d.buf[d.start:d.end]
	if i := indexLineEnd(pending); i >= 0 {
		line = pending[:i]
		d.start += i + 1
		if pending[i] == '\r' {
			if i+1 < len(pending) {
				if pending[i+1] == '\n' {
					d.start++
				}
			} else {
				d.skipLF = true
			}
		}
		if len(d.data)+len(line) > d.max {
			return nil, false, d.tooLarge()
		}
		return line, true, nil
	}
	if len(d.data)+len(pending) > d.max {
		return nil, false, d.tooLarge()
	}
	if d.err != nil {
		// The stream ended inside a line or an event: discard it (spec).
		d.start = d.end
		return nil, false, d.err
	}
	return nil, false, d.fill()
}

var bom = []byte("\uFEFF")

func (d *Decoder) tooLarge() error {
	d.err = fmt.Errorf("%w: more than %d bytes (see Decoder.SetMaxEventSize)", ErrEventTooLarge, d.max)
	d.start, d.end = 0, 0
	d.data = nil
	return d.err
}

// fill reads more input into buf, compacting or growing it as needed. It
// reports only a sticky error that was already returned; a fresh read error
// is kept in d.err and surfaces once the buffered bytes are parsed.
func (d *Decoder) fill() error {
	if d.err != nil {
		return d.err
	}
	if d.start > 0 {
		n := copy(d.buf, d.buf[d.start:d.end])
		d.start, d.end = 0, n
	}
	if d.end == len(d.buf) {
		size := 2 * len(d.buf)
		if size < 4096 {
			size = 4096
		}
		nb := make([]byte, size)
		copy(nb, d.buf[:d.end])
		d.buf = nb
	}
	for range 100 {
		n, err := d.r.Read(d.buf[d.end:])
		d.end += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.EOF
			}
			d.err = err
			return nil
		}
		if n > 0 {
			return nil
		}
	}
	d.err = io.ErrNoProgress
	return nil
}

// processLine interprets one line and reports whether it dispatched an
// event.
func (d *Decoder) processLine(raw []byte) (Event, bool) {
	if len(raw) == 0 {
		return d.dispatch()
	}
	if raw[0] == ':' {
		if d.onComment != nil {
			text := raw[1:]
			if len(text) > 0 && text[0] == ' ' {
				text = text[1:]
			}
			d.onComment(string(toValidUTF8(text)))
		}
		return Event{}, false
	}
	line := toValidUTF8(raw)
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "data":
		d.data = append(d.data, value...)
		d.data = append(d.data, '\n')
	case "event":
		d.typ = string(value)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			d.idBuf = string(value)
		}
	case "retry":
		if ms, ok := parseDigits(value); ok {
			d.retry, d.retrySet = ms, true
			d.evRetry = ms
		}
	}
	return Event{}, false
}

// dispatch ends the current block, following the spec's dispatch steps.
func (d *Decoder) dispatch() (Event, bool) {
	d.lastID = d.idBuf
	if len(d.data) == 0 {
		d.typ, d.evRetry = "", 0
		return Event{}, false
	}
	data := make([]byte, len(d.data)-1)
	copy(data, d.data)
	ev := Event{ID: d.lastID, Type: d.typ, Data: data, Retry: d.evRetry}
	d.data = d.data[:0]
	d.typ, d.evRetry = "", 0
	return ev, true
}

// parseDigits reads an all-ASCII-digits value as milliseconds, clamping
// values too large for a time.Duration.
func parseDigits(v []byte) (time.Duration, bool) {
	if len(v) == 0 {
		return 0, false
	}
	const maxMS = math.MaxInt64 / int64(time.Millisecond)
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if ms <= maxMS {
			ms = ms*10 + int64(c-'0')
		}
	}
	if ms > maxMS {
		ms = maxMS
	}
	return time.Duration(ms) * time.Millisecond, true
}

// toValidUTF8 returns b with every maximal ill-formed subsequence replaced
// by U+FFFD, as the WHATWG UTF-8 decoder does. Valid input is returned as it
// is.
func toValidUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || size != 1 {
			out = append(out, b[i:i+size]...)
			i += size
			continue
		}
		out = append(out, "\uFFFD"...)
		i += invalidPrefix(b[i:])
	}
	return out
}

// invalidPrefix returns the length of the maximal subpart at the start of b,
// which does not begin with a valid sequence: a lead byte followed by the
// continuation bytes that could still have completed it, or one byte.
func invalidPrefix(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF) // allowed range of the first continuation byte
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		x := b[n]
		if k == 0 && (x < lo || x > hi) || k > 0 && (x < 0x80 || x > 0xBF) {
			break
		}
		n++
	}
	return n
}
