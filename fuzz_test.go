package sse

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// FuzzRoundTrip checks that Decode(Encode(e)) returns e for every valid
// event, with the data's line endings turned into LF, and that a valid id
// comes back unchanged as the Last-Event-ID header of a reconnect, through
// net/http's client and server.
func FuzzRoundTrip(f *testing.F) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("Last-Event-ID"))
	}))
	defer echo.Close()
	f.Add("1", "points", []byte("hello"), int64(0))
	f.Add("a\x01b", "", []byte("x"), int64(0))
	f.Add(" 7\t", "", []byte("x"), int64(0))
	f.Add("", "", []byte("a\r\nb\rc\n"), int64(1500))
	f.Add("x:y", "naïve", []byte(" lead\r\r\n\n"), int64(3000))
	f.Add("", "", []byte{}, int64(1))
	f.Fuzz(func(t *testing.T, id, typ string, data []byte, retryMS int64) {
		ev := Event{ID: id, Type: typ, Data: data, Retry: time.Duration(retryMS) * time.Millisecond}
		frame, err := AppendEvent(nil, ev)
		if err != nil {
			if ev.Validate() == nil {
				t.Fatalf("AppendEvent failed on a valid event: %v", err)
			}
			return
		}
		got, err := NewDecoder(bytes.NewReader(frame)).Decode()
		if err != nil {
			t.Fatalf("frame %q: %v", frame, err)
		}
		want := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(data))
		if got.ID != id || got.Type != typ || string(got.Data) != want || got.Retry != ev.Retry {
			t.Fatalf("frame %q decoded as %+v, want id %q type %q data %q retry %v", frame, got, id, typ, want, ev.Retry)
		}
		if id != "" {
			if back := lastEventIDThrough(t, echo.URL, id); back != id {
				t.Fatalf("id %q came back as Last-Event-ID %q", id, back)
			}
		}
	})
}

// lastEventIDThrough sends id as a Last-Event-ID header to an echo server
// and returns what the server read.
func lastEventIDThrough(t *testing.T, url, id string) string {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Last-Event-ID", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("id %q as Last-Event-ID: %v", id, err)
	}
	defer resp.Body.Close()
	back, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("id %q as Last-Event-ID: %s %v", id, resp.Status, err)
	}
	return string(back)
}

// FuzzDecode checks that the decoder never panics or hangs, and that how the
// input is split into reads never changes what it decodes.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("data: a\r\n\r\nid: 1\rdata: b\n\n"))
	f.Add([]byte("\xEF\xBB\xBFevent: x\ndata\n\n: c\nretry: 12\n\n"))
	f.Add([]byte("data: \xff\xe2\x82\n\ndata: tail"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		whole := decodeStream(t, bytes.NewReader(stream))
		bytewise := decodeStream(t, iotest.OneByteReader(bytes.NewReader(stream)))
		if whole != bytewise {
			t.Fatalf("whole read gives %q, one byte at a time gives %q", whole, bytewise)
		}
	})
}

// decodeStream decodes everything and describes the result in one string.
func decodeStream(t *testing.T, r io.Reader) string {
	d := NewDecoder(r)
	d.SetMaxEventSize(1 << 12)
	var b strings.Builder
	for range 1 << 16 {
		ev, err := d.Decode()
		if err != nil {
			b.WriteString("err:" + err.Error() + "|last:" + d.LastEventID() + "|retry:" + d.Retry().String())
			return b.String()
		}
		b.WriteString(ev.ID + "\x00" + ev.Type + "\x00" + string(ev.Data) + "\x00" + ev.Retry.String() + "\x01")
	}
	t.Fatal("the decoder did not finish")
	return ""
}
