package sse

// keyStore is the memory broker's keyed state: the newest message of each
// state (a Key within its audience), for the snapshots that fresh streams
// start with. Each audience keeps at most maxPer states, forgetting its
// least recently updated; all of them together hold at most maxBytes,
// forgetting the least recently updated state of a client ID first and
// shared state (broadcasts and topics) only when no client's is left, so
// per-client keys can never push out what every stream shares.
//
// An audience's states are kept in the order they were last updated, which
// is position order, so a snapshot reads its streams' audiences without
// sorting or scanning anyone else's. A keyStore is not safe for concurrent
// use: the broker guards it.
type keyStore struct {
	maxPer    int
	maxBytes  int
	bytes     int
	audiences map[Target]*audienceKeys
	private   stateList // every client ID's states, least recently updated first
	shared    stateList // the broadcast's and the topics' states, the same way
}

// audienceKeys are one audience's states.
type audienceKeys struct {
	byKey map[string]*keyState
	order stateList // least recently updated first
}

// keyState is the newest message of one state, linked into its audience's
// order and into its class's (private or shared).
type keyState struct {
	to   Target
	key  string
	seq  uint64
	m    *envelope
	size int
	in   [2]links // in[inAudience], in[inClass]
}

type links struct{ prev, next *keyState }

// The lists a keyState is linked into.
const (
	inAudience = iota
	inClass
)

func newKeyStore(maxPer, maxBytes int) keyStore {
	return keyStore{
		maxPer:    maxPer,
		maxBytes:  maxBytes,
		audiences: make(map[Target]*audienceKeys),
		private:   stateList{which: inClass},
		shared:    stateList{which: inClass},
	}
}

// class returns the class list of states of audience to.
func (ks *keyStore) class(to Target) *stateList {
	if to.Kind == ToClient {
		return &ks.private
	}
	return &ks.shared
}

// remember makes m, at sequence number seq, the newest message of its
// state, forgetting what the bounds then require.
func (ks *keyStore) remember(m *envelope, seq uint64) {
	if ks.maxPer <= 0 {
		return
	}
	aud := ks.audiences[m.To]
	if aud == nil {
		aud = &audienceKeys{byKey: make(map[string]*keyState), order: stateList{which: inAudience}}
		ks.audiences[m.To] = aud
	}
	size := messageSize(m)
	k := aud.byKey[m.Key]
	if k != nil {
		ks.bytes += size - k.size
		k.seq, k.m, k.size = seq, m, size
		aud.order.remove(k)
		ks.class(k.to).remove(k)
	} else {
		k = &keyState{to: m.To, key: m.Key, seq: seq, m: m, size: size}
		aud.byKey[m.Key] = k
		ks.bytes += size
	}
	aud.order.push(k)
	ks.class(k.to).push(k)
	if len(aud.byKey) > ks.maxPer {
		ks.forget(aud.order.head)
	}
	for ks.bytes > ks.maxBytes {
		oldest := ks.private.head
		if oldest == nil {
			oldest = ks.shared.head
		}
		if oldest == nil {
			break
		}
		ks.forget(oldest)
	}
}

// forget drops state k.
func (ks *keyStore) forget(k *keyState) {
	aud := ks.audiences[k.to]
	aud.order.remove(k)
	ks.class(k.to).remove(k)
	delete(aud.byKey, k.key)
	if len(aud.byKey) == 0 {
		delete(ks.audiences, k.to)
	}
	ks.bytes -= k.size
	k.m = nil
}

// collect returns copies of the states of the audiences in to last updated
// at or before sequence number end, each audience's in position order.
func (ks *keyStore) collect(end uint64, to []Target) []keyState {
	var out []keyState
	for _, t := range to {
		aud := ks.audiences[t]
		if aud == nil {
			continue
		}
		for k := aud.order.head; k != nil && k.seq <= end; k = k.in[inAudience].next {
			out = append(out, keyState{to: k.to, key: k.key, seq: k.seq, m: k.m})
		}
	}
	return out
}

// stateList is a doubly linked list of keyStates through their links
// in[which].
type stateList struct {
	head, tail *keyState
	which      int
}

// push appends k.
func (l *stateList) push(k *keyState) {
	k.in[l.which] = links{prev: l.tail}
	if l.tail != nil {
		l.tail.in[l.which].next = k
	} else {
		l.head = k
	}
	l.tail = k
}

// remove unlinks k.
func (l *stateList) remove(k *keyState) {
	ln := k.in[l.which]
	if ln.prev != nil {
		ln.prev.in[l.which].next = ln.next
	} else {
		l.head = ln.next
	}
	if ln.next != nil {
		ln.next.in[l.which].prev = ln.prev
	} else {
		l.tail = ln.prev
	}
	k.in[l.which] = links{}
}
