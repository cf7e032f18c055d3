package main

import (
	"reflect"
	"testing"
)

// TestEntryBodies: the soak reads sseredis's entries as its documentation
// describes them (a batch's records, or an earlier version's four fields),
// and refuses what does not match.
func TestEntryBodies(t *testing.T) {
	batch := map[string]any{"n": "2", "d": " 2 1 0 3\ne:7xyz 3 2 0 0\nt:aid"}
	if got, err := entryBodies(batch); err != nil || !reflect.DeepEqual(got, []string{"xyz", ""}) {
		t.Fatalf("batch: %q %v", got, err)
	}
	lone := map[string]any{"d": " 2 0 0 5\ne:hello"}
	if got, err := entryBodies(lone); err != nil || !reflect.DeepEqual(got, []string{"hello"}) {
		t.Fatalf("lone event: %q %v", got, err)
	}
	old := map[string]any{"a": "e:", "i": "", "k": "", "b": "hi"}
	if got, err := entryBodies(old); err != nil || !reflect.DeepEqual(got, []string{"hi"}) {
		t.Fatalf("earlier version's entry: %q %v", got, err)
	}
	for _, bad := range []map[string]any{
		{"d": " 2 0 0 9\ne:hello"},
		{"d": " 2 0 5\ne:hello"},
		{"n": "3", "d": " 2 0 0 5\ne:hello"},
	} {
		if got, err := entryBodies(bad); err == nil {
			t.Errorf("%v read as %q", bad, got)
		}
	}
}
