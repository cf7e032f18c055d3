package sseprom

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/ssehub/sse"
)

// scrape reads the metrics endpoint at url and returns each sample line's
// value by its name and labels.
func scrape(t *testing.T, url string) map[string]string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	samples := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, _ := strings.Cut(line, " ")
		samples[name] = value
	}
	return samples
}

// The metrics endpoint serves the hub's Stats as they are at each scrape:
// a stream connecting and an event published show in the next one.
func TestMetricsEndpointFollowsTheHub(t *testing.T) {
	hub, err := sse.NewHub(sse.Config{Heartbeat: -1})
	if err != nil {
		t.Fatal(err)
	}
	hubSrv := httptest.NewServer(hub)
	defer hubSrv.Close()
	defer hub.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(hub, prometheus.Labels{"hub": "test"}))
	metrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer metrics.Close()

	before := scrape(t, metrics.URL)
	for name, want := range map[string]string{
		`sse_streams{hub="test"}`:                         "0",
		`sse_events_published_total{hub="test"}`:          "0",
		`sse_frames_written_total{hub="test"}`:            "0",
		`sse_resets_total{hub="test",reason="expired"}`:   "0",
		`sse_unflushable_requests_total{hub="test"}`:      "0",
		`sse_server_write_timeouts_total{hub="test"}`:     "0",
		`sse_no_write_deadline_streams_total{hub="test"}`: "0",
		`sse_compressed_streams_total{hub="test"}`:        "0",
	} {
		if got := before[name]; got != want {
			t.Fatalf("before: %s = %q, want %q", name, got, want)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, hubSrv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for hub.Stats().Streams != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the stream did not register")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := hub.Broadcast(sse.Event{Data: []byte("counted")}); err != nil {
		t.Fatal(err)
	}
	d := sse.NewDecoder(resp.Body)
	for {
		ev, err := d.Decode()
		if err != nil {
			t.Fatal(err)
		}
		if string(ev.Data) == "counted" {
			break // written: the counters have moved
		}
	}

	after := scrape(t, metrics.URL)
	for name, want := range map[string]string{
		`sse_streams{hub="test"}`:                "1",
		`sse_clients{hub="test"}`:                "1",
		`sse_events_published_total{hub="test"}`: "1",
		`sse_frames_queued_total{hub="test"}`:    "1",
	} {
		if got := after[name]; got != want {
			t.Fatalf("after: %s = %q, want %q", name, got, want)
		}
	}
	if after[`sse_frames_written_total{hub="test"}`] == "0" {
		t.Fatal("frames written did not move")
	}
}

// The metrics follow Prometheus's naming rules (promlint), and every one
// has help text.
func TestMetricsLint(t *testing.T) {
	hub, err := sse.NewHub(sse.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	c := NewCollector(hub, nil)
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	if n := testutil.CollectAndCount(c); n != 23+4 {
		t.Fatalf("%d metrics, want 27 (23 plain, resets by 4 reasons)", n)
	}
	var help strings.Builder
	reg := prometheus.NewPedanticRegistry() // checks Describe against Collect
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetHelp() == "" {
			help.WriteString(mf.GetName() + " ")
		}
	}
	if help.Len() > 0 {
		t.Fatalf("no help text: %s", help.String())
	}
}
