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

// TestStoreKeepsTheReadersOrder: the rows follow the browse order the
// reader gives, whichever values arrive first (a server may split the
// initial values over several notifications, as gopcua's does under load).
func TestStoreKeepsTheReadersOrder(t *testing.T) {
	s := NewStore()
	s.Apply([]Sample{{PointID: "x", UpdateAt: at(1)}, {PointID: "c", UpdateAt: at(1)}}) // before any order
	s.Order([]string{"a", "b", "c"})
	if got := s.IDs(); strings.Join(got, ",") != "c,x" {
		t.Fatalf("after Order: %v, want c,x (ranked first, then unranked as first seen)", got)
	}
	s.Apply([]Sample{{PointID: "y", UpdateAt: at(2)}})
	s.Apply([]Sample{{PointID: "b", UpdateAt: at(2)}})
	s.Apply([]Sample{{PointID: "a", UpdateAt: at(3)}})
	if got := s.IDs(); strings.Join(got, ",") != "a,b,c,x,y" {
		t.Fatalf("ids %v, want a,b,c,x,y", got)
	}
	var ids []string
	for _, x := range s.Snapshot(nil) {
		ids = append(ids, x.PointID)
	}
	if strings.Join(ids, ",") != "a,b,c,x,y" {
		t.Fatalf("snapshot order %v, want a,b,c,x,y", ids)
	}
	s.Order([]string{"y", "c"}) // a new browse at a reconnect
	if got := s.IDs(); strings.Join(got, ",") != "y,c,a,b,x" {
		t.Fatalf("after a new order: %v, want y,c,a,b,x", got)
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
