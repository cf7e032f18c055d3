package sse

import (
	"strings"
	"testing"
	"time"
)

func TestNewHubRejectsNegativeConfig(t *testing.T) {
	_, err := NewHub(Config{QueueBytes: -1, MaxStreams: -2})
	if err == nil || !strings.Contains(err.Error(), "QueueBytes") || !strings.Contains(err.Error(), "MaxStreams") {
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
