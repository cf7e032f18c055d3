package sse

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestNewHubRejectsNegativeConfig(t *testing.T) {
	_, err := NewHub(Config{QueueBytes: -1, MaxStreamsPerAddress: -2})
	if err == nil || !strings.Contains(err.Error(), "QueueBytes") || !strings.Contains(err.Error(), "MaxStreamsPerAddress") {
		t.Fatalf("err = %v, want both fields named", err)
	}
}

// Every duration is validated up front: a positive one below a millisecond
// would otherwise reach the hub's goroutines (a Heartbeat of 1ns made the
// heartbeat's ticker panic once a stream connected).
func TestNewHubValidatesDurations(t *testing.T) {
	for _, tc := range []struct {
		field string
		cfg   Config
	}{
		{"Heartbeat", Config{Heartbeat: 1}},
		{"Heartbeat", Config{Heartbeat: time.Millisecond - 1}},
		{"WriteTimeout", Config{WriteTimeout: time.Microsecond}},
		{"WriteTimeout", Config{WriteTimeout: -time.Second}},
		{"Retry", Config{Retry: 999 * time.Microsecond}},
		{"RefuseRetry", Config{RefuseRetry: 1}},
		{"RefuseRetry", Config{RefuseRetry: -1}},
	} {
		h, err := NewHub(tc.cfg)
		if err == nil {
			h.Close()
			t.Errorf("NewHub(%+v) accepted it", tc.cfg)
			continue
		}
		if !strings.Contains(err.Error(), "Config."+tc.field) {
			t.Errorf("NewHub(%+v): %v; want it to name Config.%s", tc.cfg, err, tc.field)
		}
	}
	// What the fields allow: negative Heartbeat and Retry switch them off,
	// a millisecond is the shortest duration.
	for _, cfg := range []Config{
		{Heartbeat: -1, Retry: -1},
		{Heartbeat: time.Millisecond, WriteTimeout: time.Millisecond, Retry: time.Millisecond, RefuseRetry: time.Millisecond},
	} {
		h, err := NewHub(cfg)
		if err != nil {
			t.Fatalf("NewHub(%+v): %v", cfg, err)
		}
		h.Close()
	}
}

// With the zero Config the hub still bounds its streams: MaxStreams is
// derived from the process's open-file limit, keeping a tenth of it (at
// least 32) for the server's other work; negative lifts the bound.
func TestDefaultMaxStreams(t *testing.T) {
	for _, c := range []struct{ limit, want int }{
		{0, 0}, {20_000, 18_000}, {1024, 922}, {100, 68}, {20, 1},
	} {
		if got := defaultMaxStreams(c.limit); got != c.want {
			t.Errorf("defaultMaxStreams(%d) = %d, want %d", c.limit, got, c.want)
		}
	}
	h, err := NewHub(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	limit := openFileLimit()
	if runtime.GOOS == "linux" && limit == 0 {
		t.Fatal("no open-file limit read on Linux")
	}
	if h.cfg.MaxStreams != defaultMaxStreams(limit) {
		t.Fatalf("MaxStreams %d with an open-file limit of %d, want %d", h.cfg.MaxStreams, limit, defaultMaxStreams(limit))
	}
	u, err := NewHub(Config{MaxStreams: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if u.cfg.MaxStreams != 0 {
		t.Fatalf("MaxStreams -1 gave a bound of %d", u.cfg.MaxStreams)
	}
}
