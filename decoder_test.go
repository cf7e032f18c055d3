package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

// The parser rules P1–P17 of the WHATWG spec, as our reference numbers them,
// each checked whole, one byte at a time, and split at every position.

type decoded struct {
	typ, data, id string
}

func decodeAll(t testing.TB, r io.Reader) ([]decoded, *Decoder, error) {
	t.Helper()
	d := NewDecoder(r)
	var out []decoded
	for {
		ev, err := d.Decode()
		if err != nil {
			return out, d, err
		}
		typ := ev.Type
		if typ == "" {
			typ = "message"
		}
		out = append(out, decoded{typ, string(ev.Data), ev.ID})
	}
}

// splitReader returns the stream in the given chunks.
type splitReader struct{ chunks []string }

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	if r.chunks[0] == "" {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

func TestDecoderSpecVectors(t *testing.T) {
	tests := []struct {
		rule   string
		stream string
		want   []decoded
	}{
		{"P1 invalid UTF-8 becomes U+FFFD", "data: bad\xffbyte\n\n", []decoded{{"message", "bad\uFFFDbyte", ""}}},
		{"P1 maximal subpart", "data: a\xe2\x82z\xf0\x9f\x98\n\n", []decoded{{"message", "a\uFFFDz\uFFFD", ""}}},
		{"P2 one leading BOM only", "\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\ndata: c\n\n", []decoded{{"message", "a", ""}, {"message", "c", ""}}},
		{"P2 double BOM loses the first line", "\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n", []decoded{{"message", "b", ""}}},
		{"P3 mixed line endings", "data: a\r\ndata: b\rdata: c\n\r\n", []decoded{{"message", "a\nb\nc", ""}}},
		{"P3b CR only", "data: cr\r\r", []decoded{{"message", "cr", ""}}},
		{"P3b CRLF only", "data: crlf\r\n\r\n", []decoded{{"message", "crlf", ""}}},
		{"P4 blank line dispatches", "data: x\n\n", []decoded{{"message", "x", ""}}},
		{"P5 comment alone dispatches nothing", ": keepalive\n\n", nil},
		{"P5 comments between fields", "data: 1\n: c\r\ndata: 2\r:\rdata: 3\n\n", []decoded{{"message", "1\n2\n3", ""}}},
		{"P6 one space stripped", "data:no-space\n\ndata:  two\n\ndata:\ttab\n\ndata: a:b:c\n\n",
			[]decoded{{"message", "no-space", ""}, {"message", " two", ""}, {"message", "\ttab", ""}, {"message", "a:b:c", ""}}},
		{"P7 colon-less line is a field", "data\n\n", []decoded{{"message", "", ""}}},
		{"P8 names compared literally", "Data: x\n\ndata : y\n\nfoo: z\njustaname\ndata: ok\n\n", []decoded{{"message", "ok", ""}}},
		{"P8 NUL in name", "da\x00ta: x\ndata: y\n\n", []decoded{{"message", "y", ""}}},
		{"P9 data lines join with LF", "data: first\ndata: second\n\n", []decoded{{"message", "first\nsecond", ""}}},
		{"P9 two bare data", "data\ndata\n\n", []decoded{{"message", "\n", ""}}},
		{"P9 NUL kept in data", "data: nul\x00kept\n\n", []decoded{{"message", "nul\x00kept", ""}}},
		{"P10 event type", "event: custom\ndata: t\n\nevent:\ndata: e\n\n", []decoded{{"custom", "t", ""}, {"message", "e", ""}}},
		{"P11 id persists, NUL ignored, bare id resets", "id: 42\ndata: a\n\ndata: b\n\nid: x\x00y\ndata: c\n\nid\ndata: d\n\n",
			[]decoded{{"message", "a", "42"}, {"message", "b", "42"}, {"message", "c", "42"}, {"message", "d", ""}}},
		{"P13 id-only block moves the id", "id: 1\ndata: one\n\nid: 2\n\ndata: two\n\n", []decoded{{"message", "one", "1"}, {"message", "two", "2"}}},
		{"P14 type does not leak from an empty block", "event: custom\n\ndata: z\n\n", []decoded{{"message", "z", ""}}},
		{"P15 one trailing LF stripped", "data\ndata\n\n", []decoded{{"message", "\n", ""}}},
		{"P17 unfinished event discarded", "data: ok\n\nid: 3\ndata: partial\n", []decoded{{"message", "ok", ""}}},
		{"P17 unfinished line discarded", "data: ok\n\ndata: half", []decoded{{"message", "ok", ""}}},
		{"WPT format-field-parsing", "data:\x00\ndata:  2\rData:1\ndata\x00:2\ndata:1\r\x00data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n",
			[]decoded{{"message", "\x00\n 2\n1\n3\n\n4", ""}}},
		{"WPT format-field-unknown", "data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n",
			[]decoded{{"message", "test\n\ntest", ""}}},
		{"WPT format-leading-space", "data:\ttest\rdata: \ndata:test\n\n", []decoded{{"message", "\ttest\n\ntest", ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			check := func(how string, r io.Reader) {
				t.Helper()
				got, _, err := decodeAll(t, r)
				if err != io.EOF {
					t.Fatalf("%s: err = %v, want io.EOF", how, err)
				}
				if !equalDecoded(got, tt.want) {
					t.Fatalf("%s:\n got  %q\n want %q", how, got, tt.want)
				}
			}
			check("whole", strings.NewReader(tt.stream))
			check("one byte at a time", iotest.OneByteReader(strings.NewReader(tt.stream)))
			for i := 1; i < len(tt.stream); i++ {
				check("split", &splitReader{chunks: []string{tt.stream[:i], tt.stream[i:]}})
			}
		})
	}
}

func equalDecoded(a, b []decoded) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// P3: a CR at the end of one read and an LF at the start of the next are one
// line ending, not two (which would dispatch early).
func TestDecoderCRLFSplitAcrossReads(t *testing.T) {
	r := &splitReader{chunks: []string{"data: split-a\r", "\ndata: split-b\r\n\r\n"}}
	got, _, err := decodeAll(t, r)
	if err != io.EOF || !equalDecoded(got, []decoded{{"message", "split-a\nsplit-b", ""}}) {
		t.Fatalf("got %q, %v", got, err)
	}
}

// P12: retry takes digits only, decimal, and applies at once, even if its
// block is never dispatched. A bare retry is ignored.
func TestDecoderRetry(t *testing.T) {
	d := NewDecoder(strings.NewReader("retry: 0500\ndata: a\n\nretry: 1000x\ndata: b\n\nretry\ndata: c\n\nretry: 99999999999999999999999\ndata: d\n\nretry: 7\n"))
	want := []struct {
		data       string
		evRetry    time.Duration
		totalRetry time.Duration
	}{
		{"a", 500 * time.Millisecond, 500 * time.Millisecond},
		{"b", 0, 500 * time.Millisecond},
		{"c", 0, 500 * time.Millisecond},
	}
	for _, w := range want {
		ev, err := d.Decode()
		if err != nil {
			t.Fatal(err)
		}
		if string(ev.Data) != w.data || ev.Retry != w.evRetry || d.Retry() != w.totalRetry {
			t.Fatalf("%s: event retry %v, stream retry %v", w.data, ev.Retry, d.Retry())
		}
	}
	if ev, err := d.Decode(); err != nil || string(ev.Data) != "d" || ev.Retry <= 0 {
		t.Fatalf("huge retry: %+v, %v: it should clamp, not wrap", ev, err)
	}
	if _, err := d.Decode(); err != io.EOF {
		t.Fatalf("err = %v", err)
	}
	if d.Retry() != 7*time.Millisecond {
		t.Fatalf("a retry in an undispatched block applies at once: got %v", d.Retry())
	}
}

// P5: comments dispatch nothing, but SetOnComment hears each one, in stream
// order with the events, however the stream is split into reads.
func TestDecoderOnComment(t *testing.T) {
	stream := "\xEF\xBB\xBF: first\ndata: a\n:\n:  two\r:\xff\rdata: b\n\n:no-space\r\n\n: x\x00y\n: cut off"
	want := []string{"c:first", "c:", "c: two", "c:\uFFFD", "e:a\nb", "c:no-space", "c:x\x00y"}
	decode := func(r io.Reader) []string {
		var log []string
		d := NewDecoder(r)
		d.SetOnComment(func(text string) { log = append(log, "c:"+text) })
		for {
			ev, err := d.Decode()
			if err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				return log
			}
			log = append(log, "e:"+string(ev.Data))
		}
	}
	check := func(how string, r io.Reader) {
		t.Helper()
		if got := decode(r); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("%s:\n got  %q\n want %q", how, got, want)
		}
	}
	check("whole", strings.NewReader(stream))
	check("one byte at a time", iotest.OneByteReader(strings.NewReader(stream)))
	for i := 1; i < len(stream); i++ {
		check(fmt.Sprint("split at ", i), &splitReader{chunks: []string{stream[:i], stream[i:]}})
	}
}

// A comment line longer than the event size limit is too large, with or
// without a comment handler.
func TestDecoderOnCommentTooLarge(t *testing.T) {
	d := NewDecoder(strings.NewReader(": " + strings.Repeat("c", 200) + "\n"))
	d.SetMaxEventSize(100)
	called := false
	d.SetOnComment(func(string) { called = true })
	if _, err := d.Decode(); !errors.Is(err, ErrEventTooLarge) || called {
		t.Fatalf("err %v, handler called %v; want ErrEventTooLarge and no call", err, called)
	}
}

// FuzzDecodeComments checks that a comment handler never changes what is
// decoded, that it hears the same comments however the stream is split
// into reads, and that a comment is valid UTF-8 without a line ending.
func FuzzDecodeComments(f *testing.F) {
	f.Add([]byte(": a\r\ndata: x\n\n:\r:\xff\n"))
	f.Add([]byte("\xEF\xBB\xBF:bom\n\n: \x00\rdata\n\n: tail"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		plain := decodeWithComments(t, bytes.NewReader(stream), nil)
		var whole, bytewise []string
		withWhole := decodeWithComments(t, bytes.NewReader(stream), &whole)
		withBytewise := decodeWithComments(t, iotest.OneByteReader(bytes.NewReader(stream)), &bytewise)
		if withWhole != plain || withBytewise != plain {
			t.Fatalf("a comment handler changed the events:\n without %q\n with     %q\n bytewise %q", plain, withWhole, withBytewise)
		}
		if strings.Join(whole, "\x01") != strings.Join(bytewise, "\x01") {
			t.Fatalf("comments read whole %q, one byte at a time %q", whole, bytewise)
		}
		for _, c := range whole {
			if strings.ContainsAny(c, "\r\n") || !utf8.ValidString(c) {
				t.Fatalf("comment %q has a line ending or invalid UTF-8", c)
			}
		}
	})
}

// decodeWithComments decodes everything, as decodeStream does, with a
// comment handler that appends to comments if comments is not nil.
func decodeWithComments(t *testing.T, r io.Reader, comments *[]string) string {
	d := NewDecoder(r)
	d.SetMaxEventSize(1 << 12)
	if comments != nil {
		d.SetOnComment(func(text string) { *comments = append(*comments, text) })
	}
	var b strings.Builder
	for range 1 << 16 {
		ev, err := d.Decode()
		if err != nil {
			retry, ok := d.LookupRetry()
			fmt.Fprintf(&b, "err:%v|last:%s|retry:%v,%v", err, d.LastEventID(), retry, ok)
			return b.String()
		}
		fmt.Fprintf(&b, "%q %q %q %v\n", ev.ID, ev.Type, ev.Data, ev.Retry)
	}
	t.Fatal("the decoder did not finish")
	return ""
}

// P12: "retry: 0" sets the reconnection time to zero, which LookupRetry
// tells apart from a stream that never sent a valid retry field.
func TestDecoderLookupRetry(t *testing.T) {
	for _, tc := range []struct {
		stream string
		want   time.Duration
		ok     bool
	}{
		{"data: a\n\n", 0, false},
		{"retry: 0\n", 0, true},
		{"retry: 00\ndata: a\n\n", 0, true},
		{"retry: 5\nretry: 0\n", 0, true},
		{"retry: 0\nretry: 1000x\nretry\n", 0, true}, // invalid ones do not undo it
		{"retry: 1000x\nretry\nretry: \n", 0, false},
		{"retry: 0\nretry: 12\n", 12 * time.Millisecond, true},
		{"retry: 0", 0, false}, // the line never ended
	} {
		for how, r := range map[string]io.Reader{
			"whole":              strings.NewReader(tc.stream),
			"one byte at a time": iotest.OneByteReader(strings.NewReader(tc.stream)),
		} {
			_, d, err := decodeAll(t, r)
			got, ok := d.LookupRetry()
			if err != io.EOF || got != tc.want || ok != tc.ok || d.Retry() != tc.want {
				t.Errorf("%q, %s: LookupRetry() = %v, %v, Retry() = %v (err %v); want %v, %v", tc.stream, how, got, ok, d.Retry(), err, tc.want, tc.ok)
			}
		}
	}
}

// P17 and C6: the last event ID moves only at dispatch; a seed applies to
// events without an id field, as Chromium does after a reconnect.
func TestDecoderLastEventID(t *testing.T) {
	d := NewDecoder(strings.NewReader("data: a\n\nid: 5\ndata: b\n\nid: 6\ndata: cut"))
	d.SetLastEventID("4")
	if ev, _ := d.Decode(); ev.ID != "4" {
		t.Fatalf("seeded id: got %q", ev.ID)
	}
	if ev, _ := d.Decode(); ev.ID != "5" {
		t.Fatalf("got %q", ev.ID)
	}
	if _, err := d.Decode(); err != io.EOF {
		t.Fatal(err)
	}
	if d.LastEventID() != "5" {
		t.Fatalf("an id in a discarded block must not apply: LastEventID = %q", d.LastEventID())
	}
}

func TestDecoderMaxEventSize(t *testing.T) {
	for name, stream := range map[string]string{
		"many data lines": strings.Repeat("data: 0123456789\n", 20) + "\n",
		"one long line":   "data: " + strings.Repeat("x", 500) + "\n\n",
		"no line end":     strings.Repeat("y", 5000),
	} {
		t.Run(name, func(t *testing.T) {
			d := NewDecoder(strings.NewReader("data: small\n\n" + stream))
			d.SetMaxEventSize(100)
			if ev, err := d.Decode(); err != nil || string(ev.Data) != "small" {
				t.Fatalf("first event: %+v, %v", ev, err)
			}
			_, err := d.Decode()
			if !errors.Is(err, ErrEventTooLarge) || !strings.Contains(err.Error(), "100 bytes") {
				t.Fatalf("err = %v, want ErrEventTooLarge naming the limit", err)
			}
			if _, again := d.Decode(); again != err {
				t.Fatalf("the error must stick: got %v", again)
			}
		})
	}
	// Exactly at the limit is fine.
	d := NewDecoder(strings.NewReader("data: " + strings.Repeat("z", 94) + "\n\n"))
	d.SetMaxEventSize(100)
	if _, err := d.Decode(); err != nil {
		t.Fatalf("an event at the limit: %v", err)
	}
}

func TestDecoderReadErrors(t *testing.T) {
	boom := errors.New("boom")
	d := NewDecoder(io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(boom)))
	if ev, err := d.Decode(); err != nil || string(ev.Data) != "a" {
		t.Fatalf("%+v, %v", ev, err)
	}
	if _, err := d.Decode(); err != boom {
		t.Fatalf("err = %v, want the reader's error", err)
	}
	if _, err := d.Decode(); err != boom {
		t.Fatalf("the error must stick: %v", err)
	}
	// A reader that returns nothing forever is reported, not spun on.
	d = NewDecoder(zeroReader{})
	if _, err := d.Decode(); err != io.ErrNoProgress {
		t.Fatalf("err = %v, want io.ErrNoProgress", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

// What the encoder writes, the decoder reads back, across frame boundaries
// and arbitrary read sizes.
func TestEncodeDecodeStream(t *testing.T) {
	events := []Event{
		{ID: "1", Type: "a", Data: []byte("one")},
		{ID: "2", Data: []byte("two\r\nlines")},
		{ID: "3", Type: "b", Data: nil, Retry: 1500 * time.Millisecond},
		{ID: "4", Data: []byte(" spaced \n")},
	}
	var stream []byte
	for _, ev := range events {
		var err error
		if stream, err = AppendEvent(stream, ev); err != nil {
			t.Fatal(err)
		}
		stream, _ = AppendComment(stream, "between")
	}
	d := NewDecoder(iotest.HalfReader(bytes.NewReader(stream)))
	for _, want := range events {
		got, err := d.Decode()
		if err != nil {
			t.Fatal(err)
		}
		wantData := strings.ReplaceAll(string(want.Data), "\r\n", "\n")
		if got.ID != want.ID || got.Type != want.Type || string(got.Data) != wantData || got.Retry != want.Retry {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}
}
