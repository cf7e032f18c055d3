package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func at(ms int) Stamp { return NewStamp(t0.Add(time.Duration(ms) * time.Millisecond)) }

func TestStoreKeepsPointsMovingForward(t *testing.T) {
	s := NewStore()
	got := s.Apply([]Sample{
		{PointID: "b", Value: 1.0, UpdateAt: at(10)},
		{PointID: "a", Value: 1.0, UpdateAt: at(10)},
		{PointID: "a", Value: 2.0, UpdateAt: at(20)},
	})
	if len(got) != 3 {
		t.Fatalf("first samples: kept %d of 3", len(got))
	}
	got = s.Apply([]Sample{
		{PointID: "a", Value: 2.0, UpdateAt: at(20)}, // the same again, as after an OPC UA reconnect
		{PointID: "a", Value: 9.0, UpdateAt: at(15)}, // older
		{PointID: "b", Value: 3.0, UpdateAt: at(30)},
	})
	if len(got) != 1 || got[0].PointID != "b" || got[0].Value != 3.0 {
		t.Fatalf("kept %+v, want only b=3", got)
	}
	snap := s.Snapshot(nil)
	if len(snap) != 2 || snap[0].PointID != "b" || snap[1].PointID != "a" || snap[1].Value != 2.0 {
		t.Fatalf("snapshot %+v, want b then a=2 (first-seen order)", snap)
	}
	if snap := s.Snapshot([]string{"a", "zzz"}); len(snap) != 1 || snap[0].PointID != "a" {
		t.Fatalf("snapshot of a: %+v", snap)
	}
}

func TestSetKey(t *testing.T) {
	ab := []Sample{{PointID: "a"}, {PointID: "b"}}
	ba := []Sample{{PointID: "b"}, {PointID: "a"}, {PointID: "a"}}
	if setKey(ab) != setKey(ba) {
		t.Error("the same set of points gave different keys")
	}
	for _, other := range [][]Sample{{{PointID: "a"}}, {{PointID: "a"}, {PointID: "b"}, {PointID: "c"}}, {{PointID: "ab"}}} {
		if setKey(other) == setKey(ab) {
			t.Errorf("set %v has the key of {a, b}", other)
		}
	}
	// Length prefixes: {"a,b"} and {"a", "b"} must differ however IDs are joined.
	if setKey([]Sample{{PointID: "a\x00\x00\x00\x00\x00\x00\x00\x01b"}}) == setKey(ab) {
		t.Error("ambiguous encoding of the set")
	}
}

func TestStampJSON(t *testing.T) {
	cases := []time.Time{
		t0,
		t0.Add(123456789 * time.Nanosecond),
		time.Date(2026, 1, 2, 3, 4, 5, 100000, time.FixedZone("x", 3600)),
	}
	var prev string
	for i, c := range cases {
		b, err := json.Marshal(NewStamp(c))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if len(s) != len(`"2006-01-02T15:04:05.000000Z"`) || !strings.HasSuffix(s, `Z"`) {
			t.Errorf("%v encodes as %s, want fixed-width UTC", c, s)
		}
		var back Stamp
		if err := json.Unmarshal(b, &back); err != nil || !back.Equal(c.Truncate(time.Microsecond)) {
			t.Errorf("%s decodes to %v (%v)", s, back, err)
		}
		if i == 1 && s <= prev {
			t.Errorf("stamps do not sort as strings: %s after %s", s, prev)
		}
		prev = s
	}
}

func TestJSONValueAlwaysEncodes(t *testing.T) {
	for _, v := range []any{
		math.NaN(), math.Inf(1), float32(1.5), []float64{1, math.NaN()}, int64(1) << 60,
		&ua.LocalizedText{Text: "hi"}, time.Date(30000, 1, 1, 0, 0, 0, 0, time.UTC), []byte{1, 2},
		struct{ X int }{1}, nil, "ok", true,
	} {
		if _, err := json.Marshal(jsonValue(v)); err != nil {
			t.Errorf("%#v: %v", v, err)
		}
	}
}

func TestSampleOf(t *testing.T) {
	src := t0.Add(time.Second)
	s := sampleOf("ns=1;s=X", &ua.DataValue{
		EncodingMask:    ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueStatusCode,
		Value:           ua.MustVariant(42.5),
		Status:          ua.StatusBadCommunicationError,
		SourceTimestamp: src,
	}, t0)
	if s.Value != 42.5 || s.Status != "BadCommunicationError" || !s.UpdateAt.Equal(src) {
		t.Errorf("sample %+v", s)
	}
	if s := sampleOf("p", &ua.DataValue{Value: ua.MustVariant(true)}, t0); s.Status != "Good" || !s.UpdateAt.Equal(t0) {
		t.Errorf("no timestamps: %+v, want Good at the receive time", s)
	}
	if s := sampleOf("p", nil, t0); s.Value != nil || s.Status != "BadNoData" {
		t.Errorf("nil DataValue: %+v", s)
	}
}
