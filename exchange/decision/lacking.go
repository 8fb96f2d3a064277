package decision

import (
	"container/heap"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/exchange/wantlist"
)

// lacking is the set of a peer's wants whose block the store lacked when
// last looked up: the wants that give way when the peer's list is full and
// a want we can serve arrives. The least urgent gives way first: lowest
// priority, then the one found lacking earliest. It is a heap indexed by
// CID, so adding, removing and taking the first cost O(log n).
type lacking struct {
	byKey map[string]*lack
	heap  lackHeap
	seq   uint64
}

type lack struct {
	c        cid.Cid
	priority int32
	seq      uint64 // when it was found lacking, breaks priority ties
	index    int    // position in the heap
}

// add records that the store lacks w's block, or updates w's priority if
// already recorded.
func (s *lacking) add(w wantlist.Entry) {
	k := w.CID.KeyString()
	if x := s.byKey[k]; x != nil {
		if x.priority != w.Priority {
			x.priority = w.Priority
			heap.Fix(&s.heap, x.index)
		}
		return
	}
	if s.byKey == nil {
		s.byKey = make(map[string]*lack)
	}
	s.seq++
	x := &lack{c: w.CID, priority: w.Priority, seq: s.seq}
	s.byKey[k] = x
	heap.Push(&s.heap, x)
}

// remove forgets c, if recorded.
func (s *lacking) remove(c cid.Cid) {
	k := c.KeyString()
	if x := s.byKey[k]; x != nil {
		heap.Remove(&s.heap, x.index)
		delete(s.byKey, k)
	}
}

// pop forgets the want that gives way first and returns its CID, or false
// if there is none.
func (s *lacking) pop() (cid.Cid, bool) {
	if len(s.heap) == 0 {
		return cid.Undef, false
	}
	x := heap.Pop(&s.heap).(*lack)
	delete(s.byKey, x.c.KeyString())
	return x.c, true
}

func (s *lacking) clear() {
	clear(s.byKey)
	clear(s.heap)
	s.heap = s.heap[:0]
}

// lackHeap implements heap.Interface: the least urgent want first.
type lackHeap []*lack

func (h lackHeap) Len() int { return len(h) }

func (h lackHeap) Less(i, j int) bool {
	if h[i].priority != h[j].priority {
		return h[i].priority < h[j].priority
	}
	return h[i].seq < h[j].seq
}

func (h lackHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *lackHeap) Push(x any) {
	l := x.(*lack)
	l.index = len(*h)
	*h = append(*h, l)
}

func (h *lackHeap) Pop() any {
	old := *h
	n := len(old) - 1
	x := old[n]
	old[n] = nil
	*h = old[:n]
	return x
}
