package load

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
)

// stream builds the body of an event stream with events seq from..to,
// the way a server writes it, with a comment, an id line and a retry line
// in between.
func stream(from, to uint64) string {
	var b strings.Builder
	b.WriteString("retry: 3000\n\n: a comment\n\n")
	for seq := from; seq <= to; seq++ {
		fmt.Fprintf(&b, "id: e-%d\r\ndata: %s\r\n\r\n", seq, Payload(nil, seq, 1, 40))
	}
	return b.String()
}

// chunk encodes body in chunked transfer coding, n bytes per chunk.
func chunk(body string, n int) string {
	var b strings.Builder
	for len(body) > 0 {
		k := min(n, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", k, body[:k])
		body = body[k:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// serve answers one connection with resp, written split at every split
// bytes, and then closes it.
func serve(t *testing.T, resp string, split int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 1024)
		if _, err := c.Read(buf); err != nil {
			return
		}
		for len(resp) > 0 {
			k := min(split, len(resp))
			if _, err := c.Write([]byte(resp[:k])); err != nil {
				return
			}
			resp = resp[k:]
		}
	}()
	return ln.Addr().String()
}

func TestClientParsesChunkedStream(t *testing.T) {
	body := stream(1, 50)
	for _, size := range []int{1, 7, 64, 1 << 20} {
		for _, split := range []int{1, 13, 4096} {
			resp := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(body, size)
			addr := serve(t, resp, split)
			var sh Shared
			sh.Recording.Store(true)
			c := Start(context.Background(), Spec{Addr: addr, Path: "/", KeepIDs: true, BufSize: 64}, &sh, nil)
			c.Wait()
			if c.Err != nil {
				t.Fatalf("chunk %d, split %d: %v", size, split, c.Err)
			}
			if c.Received != 50 || c.FirstSeq != 1 || c.LastSeq != 50 || c.Lost != 0 || c.Dups != 0 {
				t.Fatalf("chunk %d, split %d: received %d (%d..%d), lost %d, dups %d", size, split, c.Received, c.FirstSeq, c.LastSeq, c.Lost, c.Dups)
			}
			if got := c.IDs[17]; got != "e-17" {
				t.Fatalf("id of event 17 = %q", got)
			}
			if sh.Received.Load() != 50 || sh.Live.Load() != 1 || sh.Latency.Count() != 50 {
				t.Fatalf("shared: received %d, live %d, latencies %d", sh.Received.Load(), sh.Live.Load(), sh.Latency.Count())
			}
		}
	}
}

func TestClientCountsLossAndDuplicates(t *testing.T) {
	body := stream(1, 3) + stream(3, 4) + stream(9, 10) // 3 again, 5..8 missing
	resp := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n" + body
	var sh Shared
	c := Start(context.Background(), Spec{Addr: serve(t, resp, 1000), Path: "/"}, &sh, nil)
	c.Wait()
	if c.Err != nil {
		t.Fatal(c.Err)
	}
	if c.Received != 6 || c.Dups != 1 || c.Lost != 4 || c.LastSeq != 10 {
		t.Fatalf("received %d, dups %d, lost %d, last %d", c.Received, c.Dups, c.Lost, c.LastSeq)
	}
}

func TestClientRejectsErrorStatus(t *testing.T) {
	var sh Shared
	c := Start(context.Background(), Spec{Addr: serve(t, "HTTP/1.1 404 Not Found\r\n\r\n", 100), Path: "/"}, &sh, nil)
	c.Wait()
	if c.Err == nil || sh.Failed.Load() != 1 {
		t.Fatalf("err %v, failed %d", c.Err, sh.Failed.Load())
	}
}

func TestPayload(t *testing.T) {
	p := Payload(nil, 42, 1234567890, 64)
	if len(p) != 64 || !strings.HasPrefix(string(p), "42,1234567890,x") {
		t.Fatalf("payload %q", p)
	}
	seq, ts := parsePayload(p, nil)
	if seq != 42 || ts != 1234567890 {
		t.Fatalf("parsed %d, %d", seq, ts)
	}
	if seq, ts := parsePayload([]byte("hello"), nil); seq != 0 || ts != 0 {
		t.Fatalf("parsed %d, %d from garbage", seq, ts)
	}
}

func TestHistQuantiles(t *testing.T) {
	var h Hist
	for v := int64(1); v <= 100000; v++ {
		h.Record(v * 1000) // 1 µs .. 100 ms
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.5, 50e6}, {0.99, 99e6}, {1, 100e6}} {
		got := h.Quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d < -0.02 || d > 0.02 {
			t.Errorf("q%.2f = %d, want %d ± 2%%", c.q, got, c.want)
		}
	}
	if h.Max() != 100e6 || h.Count() != 100000 {
		t.Errorf("max %d, count %d", h.Max(), h.Count())
	}
	for v := uint64(0); v < 1<<20; v += 7 {
		if i := bucketOf(v); valueOf(i) > v+v/32+1 || valueOf(i)+valueOf(i)/32+1 < v {
			t.Fatalf("bucket %d of %d has value %d", i, v, valueOf(i))
		}
	}
}

// A histogram's Data, merged into another, gives the same quantiles and
// maximum: how ssebench many combines its client processes' latencies.
func TestHistMerge(t *testing.T) {
	var a, b, all Hist
	for i := int64(1); i <= 1000; i++ {
		v := i * 1_000_000
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	var merged Hist
	merged.Merge(a.Data())
	merged.Merge(b.Data())
	for _, q := range []float64{0.5, 0.99} {
		if got, want := merged.Quantile(q), all.Quantile(q); got != want {
			t.Fatalf("q%v: merged %d, want %d", q, got, want)
		}
	}
	if merged.Max() != all.Max() || merged.Count() != all.Count() {
		t.Fatalf("merged max %d count %d, want %d %d", merged.Max(), merged.Count(), all.Max(), all.Count())
	}
}
