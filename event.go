package sse

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one server-sent event. The zero Event is valid: it encodes as a
// lone "data:" line and reaches a browser as a "message" event with empty
// data.
type Event struct {
	// ID is the event's id field. Leave it empty on events given to a Hub:
	// the hub then writes its own position (see Message.Pos), which is what
	// makes Last-Event-ID replay exact. A non-empty ID is written instead of
	// the position; the in-memory history still resumes from it while the
	// event is in history, provided IDs are unique, and a reconnect that
	// carries an ID the history does not hold gets a ResetEvent. A browser
	// sends the id back as the Last-Event-ID request header, so it must be
	// a valid header value that arrives unchanged: no control bytes (0x00
	// to 0x1F, tab included, and 0x7F), no space at either end. It should
	// stay short (at most 128 bytes) and free of CORS-unsafe bytes if pages
	// may be cross-origin.
	ID string

	// Type is the event's type, which a page listens for with
	// addEventListener(Type, ...). Empty means "message". It must not
	// contain CR, LF or NUL.
	Type string

	// Data is the payload. It is split on CRLF, CR and LF into one data line
	// each, so a browser receives it with every line ending turned into LF.
	// It must be valid UTF-8. Functions that take an Event copy Data before
	// they return, so the caller may reuse the slice.
	Data []byte

	// Retry, if positive, asks the browser to wait that long before it
	// reconnects. It is written in whole milliseconds (sub-millisecond parts
	// are dropped) and must be zero or at least one millisecond.
	Retry time.Duration

	// Key, if set, marks the event as the latest state of something (a data
	// point, say), and a Hub treats it so:
	//   - while it waits in a stream's queue, a newer event with the same
	//     Key replaces it (the newer one goes to the end of the queue, so ids
	//     stay in order), and a replay keeps only the newest per Key: a
	//     stream that falls behind gets the newest values, not a backlog;
	//   - the hub remembers the newest event of each Key (per audience:
	//     Broadcast, each topic, each client), and a stream that starts
	//     without a usable Last-Event-ID receives those first, in the order
	//     they were published: a snapshot of the current state (see
	//     Config.Keys).
	// It is not written to the stream.
	Key string
}

// Validate reports whether e can be encoded, and its ID resumed. The error
// wraps ErrInvalidEvent and names the field and the problem.
func (e *Event) Validate() error {
	if err := checkID(e.ID); err != nil {
		return err
	}
	if err := checkField("event type", e.Type, true); err != nil {
		return err
	}
	if !utf8.Valid(e.Data) {
		return fmt.Errorf("%w: data is not valid UTF-8", ErrInvalidEvent)
	}
	if e.Retry < 0 {
		return fmt.Errorf("%w: negative retry %v", ErrInvalidEvent, e.Retry)
	}
	if e.Retry > 0 && e.Retry < time.Millisecond {
		return fmt.Errorf("%w: retry %v is below one millisecond", ErrInvalidEvent, e.Retry)
	}
	return nil
}

// checkField rejects the bytes that would end a field early (CR, LF), that a
// browser ignores a whole id for (NUL), and invalid UTF-8.
func checkField(name, v string, noNUL bool) error {
	if i := strings.IndexAny(v, "\r\n"); i >= 0 {
		what := "a line feed (LF)"
		if v[i] == '\r' {
			what = "a carriage return (CR)"
		}
		return fmt.Errorf("%w: %s contains %s at byte %d", ErrInvalidEvent, name, what, i)
	}
	if noNUL {
		if i := strings.IndexByte(v, 0); i >= 0 {
			return fmt.Errorf("%w: %s contains NUL at byte %d", ErrInvalidEvent, name, i)
		}
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidEvent, name)
	}
	return nil
}

// checkID checks an id as checkField does, and also that it comes back
// unchanged as the Last-Event-ID header of a reconnect: net/http answers 400
// to a header value with a control byte (and a browser's EventSource then
// gives up for good), and drops the spaces and tabs at either end of one,
// so an id with either could never resume.
func checkID(id string) error {
	if err := checkField("id", id, true); err != nil {
		return err
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: id contains the control byte %#02x at byte %d: the Last-Event-ID header "+
				"that carries it back would be refused", ErrInvalidEvent, c, i)
		}
	}
	if id != "" && (id[0] == ' ' || id[len(id)-1] == ' ') {
		return fmt.Errorf("%w: id %q begins or ends with a space, which the Last-Event-ID header that "+
			"carries it back loses", ErrInvalidEvent, cut(id))
	}
	return nil
}

// AppendEvent appends the frame of e to dst and returns the extended slice:
// an id line if e.ID is set, an event line if e.Type is set, a retry line if
// e.Retry is positive, one data line per line of e.Data, and a blank line
// that ends the frame. Each field is written as name, colon, one space and
// the value. It allocates nothing when dst has room for the frame.
//
// If e is invalid (see Event.Validate), AppendEvent returns dst unchanged and
// the error.
func AppendEvent(dst []byte, e Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return dst, err
	}
	if e.ID != "" {
		dst = appendIDLine(dst, e.ID)
	}
	return appendBody(dst, &e), nil
}

// AppendComment appends a comment frame (": text", then a blank line) to dst.
// Browsers ignore comments; they keep proxies from closing idle streams.
// text must not contain CR or LF.
func AppendComment(dst []byte, text string) ([]byte, error) {
	if err := checkField("comment", text, false); err != nil {
		return dst, err
	}
	dst = append(dst, ':')
	if text != "" {
		dst = append(dst, ' ')
		dst = append(dst, text...)
	}
	return append(dst, '\n', '\n'), nil
}

// encodedSize returns an upper bound on the frame size of a valid e without
// its id line, so a buffer can be sized once.
func encodedSize(e *Event) int {
	n := len(e.Data) + 8 // "data: " + "\n", then the blank line
	n += 6 * bytes.Count(e.Data, []byte{'\n'})
	n += 6 * bytes.Count(e.Data, []byte{'\r'})
	if e.Type != "" {
		n += len("event: \n") + len(e.Type)
	}
	if e.Retry > 0 {
		n += len("retry: \n") + 20
	}
	return n
}

// appendIDLine appends "id: <id>\n".
func appendIDLine(dst []byte, id string) []byte {
	dst = append(dst, "id: "...)
	dst = append(dst, id...)
	return append(dst, '\n')
}

// appendBody appends every field of a validated e but the id, and the blank
// line that ends the frame.
func appendBody(dst []byte, e *Event) []byte {
	if e.Type != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, e.Type...)
		dst = append(dst, '\n')
	}
	if e.Retry > 0 {
		dst = append(dst, "retry: "...)
		dst = strconv.AppendInt(dst, e.Retry.Milliseconds(), 10)
		dst = append(dst, '\n')
	}
	data := e.Data
	for {
		i := indexLineEnd(data)
		line := data
		if i >= 0 {
			line = data[:i]
		}
		if len(line) == 0 {
			dst = append(dst, "data:\n"...)
		} else {
			dst = append(dst, "data: "...)
			dst = append(dst, line...)
			dst = append(dst, '\n')
		}
		if i < 0 {
			break
		}
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(dst, '\n')
}

// indexLineEnd returns the index of the first CR or LF in b, or -1.
func indexLineEnd(b []byte) int {
	lf := bytes.IndexByte(b, '\n')
	search := b
	if lf >= 0 {
		search = b[:lf]
	}
	if cr := bytes.IndexByte(search, '\r'); cr >= 0 {
		return cr
	}
	return lf
}
