package sse

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// The producer rules W1–W11 of the WHATWG spec, as our reference numbers
// them (see the README's "Spec conformance"), for the encoder.

func TestAppendEventFrames(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		// W7: every frame ends with a blank line. W4: an empty payload is a lone "data:".
		{"zero event", Event{}, "data:\n\n"},
		// W3: name, colon, one space, value.
		{"plain", Event{Data: []byte("hello")}, "data: hello\n\n"},
		{"all fields", Event{ID: "7", Type: "points", Data: []byte("x"), Retry: 2500 * time.Millisecond},
			"id: 7\nevent: points\nretry: 2500\ndata: x\n\n"},
		// W3: a value that starts with a space keeps it, because the parser strips exactly one.
		{"leading space kept", Event{Data: []byte(" indented")}, "data:  indented\n\n"},
		// W4: split on LF, CR and CRLF, one data line each.
		{"LF", Event{Data: []byte("a\nb")}, "data: a\ndata: b\n\n"},
		{"CR", Event{Data: []byte("a\rb")}, "data: a\ndata: b\n\n"},
		{"CRLF", Event{Data: []byte("a\r\nb")}, "data: a\ndata: b\n\n"},
		{"LFCR is two breaks", Event{Data: []byte("a\n\rb")}, "data: a\ndata:\ndata: b\n\n"},
		{"mixed", Event{Data: []byte("1\r\n2\r3\n4")}, "data: 1\ndata: 2\ndata: 3\ndata: 4\n\n"},
		// W4: a trailing newline adds an empty data line, so the client gets it back.
		{"trailing newline", Event{Data: []byte("a\n")}, "data: a\ndata:\n\n"},
		{"only newlines", Event{Data: []byte("\n\n")}, "data:\ndata:\ndata:\n\n"},
		// W6: retry in whole decimal milliseconds; sub-millisecond parts dropped.
		{"retry ms", Event{Retry: 1500*time.Millisecond + 700*time.Microsecond, Data: []byte("r")}, "retry: 1500\ndata: r\n\n"},
		{"retry long", Event{Retry: time.Hour}, "retry: 3600000\ndata:\n\n"},
		// W2: UTF-8 passes through untouched, no BOM is ever added.
		{"utf-8", Event{Type: "naïve", Data: []byte("✓ 温度")}, "event: naïve\ndata: ✓ 温度\n\n"},
		// Data may hold what looks like fields: it stays inside data lines.
		{"field lookalike", Event{Data: []byte("id: 9\nevent: x")}, "data: id: 9\ndata: event: x\n\n"},
		{"NUL in data is kept", Event{Data: []byte("a\x00b")}, "data: a\x00b\n\n"},
		{"colon in id and type", Event{ID: "a:b", Type: "c:d"}, "id: a:b\nevent: c:d\ndata:\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendEvent([]byte("prefix|"), tt.ev)
			if err != nil {
				t.Fatalf("AppendEvent: %v", err)
			}
			if want := "prefix|" + tt.want; string(got) != want {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
		})
	}
}

// W5: an id or type with CR, LF or NUL would end the field early or be
// ignored by the client; such events are refused and nothing is written.
func TestAppendEventRejects(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string // in the error text
	}{
		{"LF in id", Event{ID: "1\nevent: evil"}, "id contains a line feed (LF) at byte 1"},
		{"CR in id", Event{ID: "1\r"}, "id contains a carriage return (CR)"},
		{"NUL in id", Event{ID: "x\x00y"}, "id contains NUL at byte 1"},
		{"LF in type", Event{Type: "a\ndata: injected"}, "event type contains a line feed"},
		{"CR in type", Event{Type: "a\rb"}, "event type contains a carriage return"},
		{"NUL in type", Event{Type: "\x00"}, "event type contains NUL"},
		{"bad UTF-8 id", Event{ID: "\xff"}, "id is not valid UTF-8"},
		{"control byte in id", Event{ID: "a\x01b"}, "id contains the control byte 0x01 at byte 1"},
		{"escape in id", Event{ID: "\x1b[31m"}, "control byte 0x1b at byte 0"},
		{"tab in id", Event{ID: "a\tb"}, "control byte 0x09"},
		{"DEL in id", Event{ID: "a\x7f"}, "control byte 0x7f"},
		{"leading space in id", Event{ID: " 42"}, "begins or ends with a space"},
		{"trailing space in id", Event{ID: "42 "}, "begins or ends with a space"},
		{"bad UTF-8 type", Event{Type: "a\xc3"}, "event type is not valid UTF-8"},
		{"bad UTF-8 data", Event{Data: []byte("ok\xfe")}, "data is not valid UTF-8"},
		{"negative retry", Event{Retry: -time.Second}, "negative retry"},
		{"sub-ms retry", Event{Retry: time.Microsecond}, "below one millisecond"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := AppendEvent(dst, tt.ev)
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("err = %v, want ErrInvalidEvent", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %q, want it to say %q", err, tt.want)
			}
			if string(got) != "keep" {
				t.Fatalf("dst changed to %q", got)
			}
		})
	}
}

// Injection attempts through data never produce a second event or another
// field: a client decodes exactly the payload back.
func TestDataInjectionStaysData(t *testing.T) {
	payloads := []string{
		"\n\nevent: evil\ndata: pwned",
		"\r\rid: 666\r\rdata: x",
		"ok\r\n\r\nretry: 1",
		": comment\n\ndata: y",
		"\revent: e",
	}
	for _, p := range payloads {
		frame, err := AppendEvent(nil, Event{Type: "safe", Data: []byte(p)})
		if err != nil {
			t.Fatal(err)
		}
		d := NewDecoder(bytes.NewReader(frame))
		ev, err := d.Decode()
		if err != nil {
			t.Fatalf("%q: %v", p, err)
		}
		want := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(p)
		if ev.Type != "safe" || string(ev.Data) != want || ev.ID != "" || ev.Retry != 0 {
			t.Fatalf("%q decoded as %+v", p, ev)
		}
		if _, err := d.Decode(); err == nil {
			t.Fatalf("%q produced a second event", p)
		}
	}
}

func TestAppendEventAllocatesNothingWithRoom(t *testing.T) {
	ev := Event{ID: "abc-1", Type: "points", Data: []byte("line one\r\nline two\nline three"), Retry: time.Second}
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = AppendEvent(buf[:0], ev); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("AppendEvent allocated %v times per call with room in dst", allocs)
	}
}

func TestEncodedSizeIsAnUpperBound(t *testing.T) {
	for _, data := range []string{"", "x", "\n", "\r\n\r\n", "a\rb\nc\r\nd", strings.Repeat("\r", 50)} {
		ev := Event{Type: "t", Data: []byte(data), Retry: time.Duration(1<<62) / time.Millisecond * time.Millisecond}
		body := appendBody(nil, &ev)
		if len(body) > encodedSize(&ev) {
			t.Fatalf("%q: body %d bytes > estimate %d", data, len(body), encodedSize(&ev))
		}
	}
}

func TestAppendComment(t *testing.T) {
	got, err := AppendComment(nil, "keep-alive")
	if err != nil || string(got) != ": keep-alive\n\n" {
		t.Fatalf("got %q, %v", got, err)
	}
	got, err = AppendComment(nil, "")
	if err != nil || string(got) != ":\n\n" {
		t.Fatalf("empty: got %q, %v", got, err)
	}
	// W8: comment text must not contain CR or LF.
	for _, bad := range []string{"a\nb", "a\rb"} {
		if got, err := AppendComment([]byte("x"), bad); !errors.Is(err, ErrInvalidEvent) || string(got) != "x" {
			t.Fatalf("%q: got %q, %v", bad, got, err)
		}
	}
	// A comment never dispatches an event.
	frame, _ := AppendComment(nil, "hi")
	if _, err := NewDecoder(bytes.NewReader(frame)).Decode(); err == nil {
		t.Fatal("a comment decoded as an event")
	}
}

func TestStatusError(t *testing.T) {
	cause := errors.New("token expired")
	err := &StatusError{Code: 403, Err: cause}
	if !errors.Is(err, cause) || statusOf(err, 401) != 403 {
		t.Fatalf("StatusError does not carry its status or cause")
	}
	if got := err.Error(); got != "sse: 403 Forbidden: token expired" {
		t.Fatalf("Error() = %q", got)
	}
	if statusOf(errors.New("plain"), 401) != 401 || statusOf(&StatusError{Code: 200}, 400) != 400 {
		t.Fatal("statusOf must fall back for plain errors and non-error statuses")
	}
}

// An id that could not come back as a Last-Event-ID header (a control
// byte: net/http answers 400 and EventSource gives up for good; a space at
// either end: net/http trims it, so the resume is "unknown") is refused by
// every publishing call, and nothing enters history.
func TestHubRefusesIDsThatCannotResume(t *testing.T) {
	h, err := NewHub(testConfig(Config{}))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, id := range []string{"a\x01", "\x1f", "x\ty", "\x7f", " 1", "1 ", "\t1"} {
		for name, call := range map[string]func(Event) (int, error){
			"Broadcast": h.Broadcast,
			"Publish":   func(ev Event) (int, error) { return h.Publish("t", ev) },
			"Send":      func(ev Event) (int, error) { return h.Send("c", ev) },
		} {
			if _, err := call(Event{ID: id, Data: []byte("x")}); !errors.Is(err, ErrInvalidEvent) {
				t.Errorf("%s with id %q: %v, want ErrInvalidEvent", name, id, err)
			}
		}
	}
	if st := h.Stats(); st.Published != 0 {
		t.Fatalf("%d events published", st.Published)
	}
	// Spaces inside an id come back unchanged: accepted.
	if _, err := h.Broadcast(Event{ID: "order 42", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
}
