package main

import "testing"

// The payload is a JSON string of the requested size whose sequence number
// and time parse back, as they appear in an sse data line and in a
// centrifuge push.
func TestPayload(t *testing.T) {
	p := payload(nil, 42, 1733061234567890123, 64)
	if len(p) != 64 || p[0] != '"' || p[63] != '"' {
		t.Fatalf("payload %q: %d bytes", p, len(p))
	}
	for _, line := range []string{
		" " + string(p) + "\n",
		` {"channel":"bench","pub":{"data":` + string(p) + `,"offset":7}}` + "\n",
	} {
		seq, nanos, ok := parsePayload([]byte(line))
		if !ok || seq != 42 || nanos != 1733061234567890123 {
			t.Fatalf("parsePayload(%q) = %d %d %v", line, seq, nanos, ok)
		}
	}
	if _, _, ok := parsePayload([]byte(` {"connect":{"client":"x"}}`)); ok {
		t.Fatal("parsed a connect push")
	}
}
