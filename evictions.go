package sse

// seqIndex maps keys to the sequence number of their newest update, in
// bounded memory: past max keys or maxBytes it forgets the keys updated
// least recently, and remembers the newest sequence number it forgot
// (forgot). Updates must come in increasing sequence order, so the key
// updated least recently is also the one with the smallest number.
//
// The memory broker keeps two: per audience, the newest message it evicted
// from history (so a resume from before the history is exact when no
// audience of the stream lost anything since), and the application-set IDs
// of messages (so such an ID still resumes after its message left history).
// Not safe for concurrent use: the broker's lock guards it.
type seqIndex[K comparable] struct {
	at     map[K]uint64
	log    []seqEntry[K] // updates in order, from head on; some outdated (at says)
	head   int
	bytes  int // size of the keys in at
	forgot uint64

	max, maxBytes int
	size          func(K) int
}

type seqEntry[K comparable] struct {
	key K
	seq uint64
}

func newSeqIndex[K comparable](max, maxBytes int, size func(K) int) seqIndex[K] {
	return seqIndex[K]{at: make(map[K]uint64), max: max, maxBytes: maxBytes, size: size}
}

// get returns the newest sequence number of k, if remembered.
func (x *seqIndex[K]) get(k K) (uint64, bool) {
	seq, ok := x.at[k]
	return seq, ok
}

// bound returns the newest sequence number of k, or, if k is not
// remembered, the newest of any key forgotten: an upper bound either way.
func (x *seqIndex[K]) bound(k K) uint64 {
	if seq, ok := x.at[k]; ok {
		return seq
	}
	return x.forgot
}

// set records that k was updated at seq, later than every earlier update.
func (x *seqIndex[K]) set(k K, seq uint64) {
	if _, ok := x.at[k]; !ok {
		x.bytes += x.size(k)
	}
	x.at[k] = seq
	x.log = append(x.log, seqEntry[K]{k, seq})
	for len(x.at) > x.max || x.bytes > x.maxBytes {
		x.forgetOldest()
	}
	// Compact when outdated entries make up most of what is left, or the
	// forgotten ones most of the log, so it stays within a few times the
	// keys remembered.
	if live := len(x.log) - x.head; live > 2*len(x.at)+64 || x.head > live+64 {
		x.compact()
	}
}

// forgetOldest forgets the key updated least recently.
func (x *seqIndex[K]) forgetOldest() {
	for x.head < len(x.log) {
		e := x.log[x.head]
		x.log[x.head] = seqEntry[K]{}
		x.head++
		if x.at[e.key] == e.seq {
			delete(x.at, e.key)
			x.bytes -= x.size(e.key)
			x.forgot = max(x.forgot, e.seq)
			return
		}
	}
}

// compact drops the forgotten and outdated entries of the log. It runs
// only once they outnumber the rest, so each update costs O(1) amortized.
func (x *seqIndex[K]) compact() {
	kept := x.log[:0]
	for _, e := range x.log[x.head:] {
		if x.at[e.key] == e.seq {
			kept = append(kept, e)
		}
	}
	clear(x.log[len(kept):])
	x.log, x.head = kept, 0
}
