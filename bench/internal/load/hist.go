package load

import (
	"math/bits"
	"sync/atomic"
)

// Hist is a log-linear histogram of nanosecond values, safe for concurrent
// use: 64 buckets per power of two, so a quantile is off by at most 1/64
// (1.6 %). The maximum is kept exactly.
type Hist struct {
	counts [histBuckets]atomic.Uint64
	max    atomic.Uint64
}

const (
	subBits     = 6
	subCount    = 1 << subBits
	histBuckets = subCount * 42
)

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	exp := bits.Len64(v) - subBits - 1
	i := subCount + exp*subCount + int(v>>exp) - subCount
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// valueOf returns the middle of bucket i.
func valueOf(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	exp := (i - subCount) / subCount
	m := uint64(i-subCount-exp*subCount) + subCount
	return m<<exp + (uint64(1)<<exp)/2
}

// Record adds one value. Negative values (clock skew) count as zero.
func (h *Hist) Record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	v := uint64(ns)
	h.counts[bucketOf(v)].Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count returns how many values were recorded.
func (h *Hist) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// Max returns the largest value recorded.
func (h *Hist) Max() int64 { return int64(h.max.Load()) }

// Quantile returns the value at quantile q (0..1), or 0 if the histogram is
// empty.
func (h *Hist) Quantile(q float64) int64 {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5) // 1-based
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			v := int64(valueOf(i))
			if m := h.Max(); v > m {
				v = m
			}
			return v
		}
	}
	return h.Max()
}

// Reset empties the histogram. It must not race with Record.
func (h *Hist) Reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	h.max.Store(0)
}

// HistData is a histogram's contents as a value, for passing between
// processes (JSON): the non-empty buckets and the maximum.
type HistData struct {
	Counts map[int]uint64 `json:"counts"`
	Max    int64          `json:"max"`
}

// Data returns h's contents.
func (h *Hist) Data() HistData {
	d := HistData{Counts: map[int]uint64{}, Max: h.Max()}
	for i := range h.counts {
		if n := h.counts[i].Load(); n > 0 {
			d.Counts[i] = n
		}
	}
	return d
}

// Merge adds d's values to h.
func (h *Hist) Merge(d HistData) {
	for i, n := range d.Counts {
		if i >= 0 && i < histBuckets {
			h.counts[i].Add(n)
		}
	}
	for {
		m := h.max.Load()
		if uint64(d.Max) <= m || h.max.CompareAndSwap(m, uint64(d.Max)) {
			return
		}
	}
}
