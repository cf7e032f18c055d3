package sse

import (
	"fmt"
	"testing"
)

// The eviction record stays within its bounds, forgets the least recently
// updated keys first, and never forgets a key without raising its bound.
func TestSeqIndexBounds(t *testing.T) {
	x := newSeqIndex(3, 1<<20, func(k string) int { return len(k) })
	for i, k := range []string{"a", "b", "c"} {
		x.set(k, uint64(i+1))
	}
	x.set("a", 4) // b is now the least recently updated
	x.set("d", 5)
	if _, ok := x.get("b"); ok || len(x.at) != 3 {
		t.Fatalf("kept %v, want b forgotten", x.at)
	}
	if x.forgot != 2 || x.bound("b") != 2 || x.bound("never") != 2 {
		t.Fatalf("forgot %d, bound(b) %d", x.forgot, x.bound("b"))
	}
	if x.bound("a") != 4 || x.bound("d") != 5 {
		t.Fatalf("bounds a %d d %d", x.bound("a"), x.bound("d"))
	}

	// By bytes: keys of 10 bytes within 25.
	y := newSeqIndex(100, 25, func(k string) int { return len(k) })
	for i := range 5 {
		y.set(fmt.Sprintf("key-%06d", i), uint64(i+1))
	}
	if len(y.at) != 2 || y.bytes != 20 || y.forgot != 3 {
		t.Fatalf("by bytes: %d keys, %d bytes, forgot %d", len(y.at), y.bytes, y.forgot)
	}

	// Ever new keys, each forgetting the oldest: the log does not grow.
	w := newSeqIndex(10, 1<<20, func(k string) int { return len(k) })
	for i := range 10_000 {
		w.set(fmt.Sprint("k", i), uint64(i+1))
	}
	if len(w.log) > 3*len(w.at)+130 || len(w.at) != 10 || w.forgot != 9_990 {
		t.Fatalf("log of %d entries (head %d) for %d keys; forgot %d", len(w.log), w.head, len(w.at), w.forgot)
	}

	// One key updated again and again: the log does not grow with it.
	z := newSeqIndex(10, 1<<20, func(k string) int { return len(k) })
	for i := range 10_000 {
		z.set("hot", uint64(i+1))
	}
	if n := len(z.log) - z.head; n > 2*len(z.at)+65 || z.forgot != 0 || z.bound("hot") != 10_000 {
		t.Fatalf("log holds %d entries for %d keys; forgot %d", n, len(z.at), z.forgot)
	}
}
