package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"
)

// sampleOf turns an OPC UA DataValue of a point into a Sample. The time is
// the source timestamp, else the server timestamp, else recv (the time the
// notification arrived).
func sampleOf(pointID string, dv *ua.DataValue, recv time.Time) Sample {
	if dv == nil {
		return Sample{PointID: pointID, Status: statusName(ua.StatusBadNoData), UpdateAt: NewStamp(recv)}
	}
	at := recv
	switch {
	case !dv.SourceTimestamp.IsZero():
		at = dv.SourceTimestamp
	case !dv.ServerTimestamp.IsZero():
		at = dv.ServerTimestamp
	}
	var v any
	if dv.Value != nil {
		v = jsonValue(dv.Value.Value())
	}
	return Sample{PointID: pointID, Value: v, Status: statusName(dv.Status), UpdateAt: NewStamp(at)}
}

// statusName names an OPC UA status code the way OPC UA tools show it:
// "Good", "BadCommunicationError", or the code in hex if it is unknown.
func statusName(c ua.StatusCode) string {
	if c == ua.StatusGood {
		return "Good"
	}
	if d, ok := ua.StatusCodes[c]; ok {
		return strings.TrimPrefix(d.Name, "Status")
	}
	if d, ok := ua.StatusCodes[c&0xFFFF0000]; ok { // without the info bits
		return strings.TrimPrefix(d.Name, "Status")
	}
	return fmt.Sprintf("0x%08X", uint32(c))
}

// jsonValue converts a variant's Go value into one encoding/json can always
// write: numbers, bools, strings and times as they are, NaN and infinities
// as strings, localized text and qualified names as their text, arrays
// element by element, anything else as its fmt form.
func jsonValue(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int8, int16, int32, int64, uint8, uint16, uint32, uint64:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano) // a string even where encoding/json refuses the year
	case float32:
		return jsonFloat(float64(x))
	case float64:
		return jsonFloat(x)
	case *ua.LocalizedText:
		if x == nil {
			return nil
		}
		return x.Text
	case *ua.QualifiedName:
		if x == nil {
			return nil
		}
		return x.Name
	case []byte:
		return fmt.Sprintf("%x", x)
	case []bool, []string, []int8, []int16, []int32, []int64, []uint16, []uint32, []uint64:
		return x
	case []float32:
		out := make([]any, len(x))
		for i, f := range x {
			out[i] = jsonFloat(float64(f))
		}
		return out
	case []float64:
		out := make([]any, len(x))
		for i, f := range x {
			out[i] = jsonFloat(f)
		}
		return out
	}
	return fmt.Sprint(v)
}

// jsonFloat returns f, or its name if JSON cannot carry it.
func jsonFloat(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Sprint(f)
	}
	return f
}
