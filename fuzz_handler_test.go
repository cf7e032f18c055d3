package sse

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzLastEventID feeds the in-memory broker's Replay and ComparePositions
// any Last-Event-ID: neither fails or panics, a refusal gives one of the
// documented reasons, an exact resume brings exactly the history after the
// id, and an id the history holds always resumes.
func FuzzLastEventID(f *testing.F) {
	b := newMemoryBroker(8, 16)
	ctx := context.Background()
	to := []Target{{Kind: ToEveryone}, {Kind: ToTopic, Name: "t"}, {Kind: ToClient, Name: "c"}}
	var positions []string
	for i := range 20 {
		m := testMessage(&Event{Data: []byte("e" + strconv.Itoa(i))}, to[i%3])
		if err := b.Publish(ctx, m); err != nil {
			f.Fatal(err)
		}
		positions = append(positions, m.Pos)
	}
	until := positions[len(positions)-1]
	epoch, _, _ := strings.Cut(until, "-")
	for _, s := range []string{"", until, positions[0], positions[12], epoch + "-0", epoch + "-21",
		epoch + "-18446744073709551615", epoch + "-18446744073709551616", epoch + "--1", epoch + "-+3",
		epoch + "-0x10", epoch + "-1_2", "aaaaaaaa-5", epoch, epoch + "-", "-5", "\x00", strings.Repeat("9", 4096)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, last string) {
		var got []string
		ok, reason, err := b.Replay(ctx, last, until, to, func(m *Message) bool {
			got = append(got, m.Pos)
			return true
		})
		if err != nil {
			t.Fatalf("Replay(%q): %v", last, err)
		}
		seq, parsed := b.parse(last)
		if !ok {
			switch reason {
			case "unknown", "expired", "epoch":
			default:
				t.Fatalf("Replay(%q) refused with reason %q", last, reason)
			}
			if len(got) > 0 {
				t.Fatalf("Replay(%q) refused but delivered %v", last, got)
			}
			if parsed && seq+1 >= b.oldest && seq <= b.seq {
				t.Fatalf("Replay(%q) refused (%s) an id the history holds", last, reason)
			}
			return
		}
		if !parsed {
			t.Fatalf("Replay(%q) resumed from an id that is no position", last)
		}
		prev := seq
		for _, p := range got {
			n, _ := b.parse(p)
			if n <= prev || n > b.seq {
				t.Fatalf("Replay(%q) delivered %v", last, got)
			}
			prev = n
		}
		if want := int(b.seq - max(seq, b.oldest-1)); len(got) != want {
			t.Fatalf("Replay(%q) delivered %d messages, want %d", last, len(got), want)
		}
		if c, ok := b.ComparePositions(last, until); !ok || c > 0 {
			t.Fatalf("ComparePositions(%q, %q) = %d, %v", last, until, c, ok)
		}
		if l := cut(last); !utf8.ValidString(l) || len(l) > 80 {
			t.Fatalf("cut(%q) = %q", last, l)
		}
	})
}

// fuzzWriter is a ResponseWriter that keeps what is written. It has no
// write deadlines, which the hub reports and copes with.
type fuzzWriter struct {
	hdr    http.Header
	code   int
	body   bytes.Buffer
	writes int
}

func (w *fuzzWriter) Header() http.Header { return w.hdr }
func (w *fuzzWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *fuzzWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.writes++
	return w.body.Write(p)
}
func (w *fuzzWriter) Flush() {}

// FuzzHandler serves hostile requests: any method, target, headers and
// Last-Event-ID, with headers net/http itself would refuse. The hub never
// panics, answers with a status it documents, writes no header value with
// a line break, writes nothing but well-formed event-stream lines, and
// leaves no stream registered.
func FuzzHandler(f *testing.F) {
	var h *Hub
	h, err := NewHub(Config{
		ClientID: func(r *http.Request) (string, error) {
			if id := r.URL.Query().Get("id"); id != "" {
				return id, nil
			}
			return "", &StatusError{Code: http.StatusForbidden}
		},
		Topics: func(r *http.Request) ([]string, error) {
			if t := r.URL.Query().Get("topics"); t != "" {
				return strings.Split(t, ","), nil
			}
			return nil, nil
		},
		History:   8,
		Keys:      4,
		Heartbeat: -1,
		Logger:    slog.New(slog.DiscardHandler),
		// Ends every stream once it has started: a hook may call any
		// method, and the stream's start is written before it ends.
		OnConnect: func(info StreamInfo) { h.Disconnect(info.ClientID) },
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(h.Close)
	for i := range 12 {
		ev := Event{Type: "t" + strconv.Itoa(i%2), Data: []byte("x\ny"), Key: []string{"", "k"}[i%2]}
		switch i % 3 {
		case 0:
			_, err = h.Broadcast(ev)
		case 1:
			_, err = h.Publish("a", ev)
		default:
			_, err = h.Send("me", ev)
		}
		if err != nil {
			f.Fatal(err)
		}
	}
	pos := *h.lastPos.Load()
	f.Add("GET", "/sse?id=me", "Accept: text/event-stream", "")
	f.Add("GET", "/sse?id=me&topics=a,b", "", pos)
	f.Add("GET", "/?id=x&topics=a,,b", "Last-Event-ID: 1\r\nX: y", "bogus")
	f.Add("HEAD", "/?id=me", "", "")
	f.Add("OPTIONS", "/", "Origin: http://x", "")
	f.Add("DELETE", "/?id=me", "", "")
	f.Add("G\x00ET", "/%zz", "A\r\nB: c\n", "\r\n")
	f.Add("GET", "/?id=me&topics="+strings.Repeat("t,", 3000), "", strings.Repeat("\xff", 70000))
	f.Fuzz(func(t *testing.T, method, target, headers, last string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			u = &url.URL{Path: "/", RawQuery: target}
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := (&http.Request{Method: method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Host: "fuzz", RemoteAddr: "127.0.0.1:1", Body: http.NoBody}).WithContext(ctx)
		for _, line := range strings.Split(headers, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				r.Header[k] = append(r.Header[k], strings.TrimSpace(v))
			}
		}
		if last != "" {
			r.Header.Set("Last-Event-ID", last)
		}
		w := &fuzzWriter{hdr: http.Header{}}
		h.ServeHTTP(w, r)

		switch w.code {
		case http.StatusOK, http.StatusNoContent, http.StatusBadRequest, http.StatusForbidden, http.StatusMethodNotAllowed:
		default:
			t.Fatalf("%q %q answered %d", method, target, w.code)
		}
		for k, vs := range w.hdr {
			for _, v := range vs {
				if strings.ContainsAny(k+v, "\r\n\x00") {
					t.Fatalf("header %q: %q holds a line break or NUL", k, v)
				}
			}
		}
		if st := h.Stats(); st.Streams != 0 {
			t.Fatalf("%d streams still registered after the handler returned", st.Streams)
		}
		if w.code != http.StatusOK || method != http.MethodGet {
			return
		}
		if ct := w.hdr.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("200 with Content-Type %q", ct)
		}
		sc := bufio.NewScanner(bytes.NewReader(w.body.Bytes()))
		for sc.Scan() {
			line := sc.Text()
			ok := line == "" || line == ":"
			for _, p := range []string{"retry: ", "id: ", "event: ", "data: ", "data"} {
				ok = ok || strings.HasPrefix(line, p)
			}
			if !ok || strings.ContainsAny(line, "\r\x00") {
				t.Fatalf("stream line %q in %q", line, w.body.String())
			}
		}
		d := NewDecoder(bytes.NewReader(w.body.Bytes()))
		for {
			ev, err := d.Decode()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("the stream does not decode: %v in %q", err, w.body.String())
			}
			if ev.ID != "" && !isPosition(ev.ID) {
				t.Fatalf("event id %q is no position of the hub's", ev.ID)
			}
		}
	})
}
