package decision

import (
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// taskKind is what a task sends. A larger kind answers more: a queued task
// only ever moves up (DONT_HAVE -> HAVE -> block).
type taskKind uint8

const (
	kindDontHave taskKind = iota + 1
	kindHave
	kindBlock
)

// Overheads used to estimate a message's encoded size. They are upper
// bounds of the protobuf framing around a CID or a block (tags, lengths,
// the CID prefix) and of the PendingBytes field, so a batch estimated
// within budget encodes within it.
const (
	presenceOverhead = 8
	blockOverhead    = 16
	pendingOverhead  = 8 // a message's PendingBytes field
)

// task is one answer queued for a peer: a block, a HAVE or a DONT_HAVE for
// one CID. It holds the block's size, never its data: data is read from the
// store when the message is built.
type task struct {
	c        cid.Cid
	key      string // c.KeyString()
	kind     taskKind
	dontHave bool // a missing block is answered with DONT_HAVE
	priority int32
	size     int    // block size in bytes, for kindBlock
	seq      uint64 // arrival order, breaks priority ties
	index    int    // position in the peer's heap
}

// cost estimates the bytes the task adds to an encoded message.
func (t *task) cost() int {
	if t.kind == kindBlock {
		return t.size + t.c.ByteLen() + blockOverhead
	}
	return t.c.ByteLen() + presenceOverhead
}

// data is the block bytes the task sends.
func (t *task) data() int {
	if t.kind == kindBlock {
		return t.size
	}
	return 0
}

// taskHeap is a binary heap of a peer's tasks: priority, highest first,
// then arrival. Each slot holds its task's sort key, so comparisons do not
// chase pointers.
type taskHeap []heapSlot

type heapSlot struct {
	priority int32
	seq      uint64
	t        *task
}

func (h taskHeap) less(i, j int) bool {
	if h[i].priority != h[j].priority {
		return h[i].priority > h[j].priority
	}
	return h[i].seq < h[j].seq
}

func (h taskHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].t.index = i
	h[j].t.index = j
}

func (h *taskHeap) push(t *task) {
	t.index = len(*h)
	*h = append(*h, heapSlot{t.priority, t.seq, t})
	h.up(t.index)
}

// remove takes out the task at i and returns it.
func (h *taskHeap) remove(i int) *task {
	old := *h
	n := len(old) - 1
	t := old[i].t
	if i != n {
		old.swap(i, n)
	}
	old[n] = heapSlot{}
	*h = old[:n]
	if i != n {
		h.fix(i)
	}
	t.index = -1
	return t
}

// fix restores the order after the key of the task at i changed.
func (h taskHeap) fix(i int) {
	h[i].priority, h[i].seq = h[i].t.priority, h[i].t.seq
	if !h.down(i) {
		h.up(i)
	}
}

func (h taskHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

// down sifts i down and reports whether it moved.
func (h taskHeap) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h.less(r, c) {
			c = r
		}
		if !h.less(c, i) {
			break
		}
		h.swap(i, c)
		i = c
	}
	return i > i0
}

// peerTasks is one peer's queue. It exists while the peer has tasks or a
// worker is serving it, and is linked in the ready list while it has tasks
// and no worker.
type peerTasks struct {
	id    peer.ID
	byKey map[string]*task
	heap  taskHeap
	data  int  // block bytes of the queued tasks
	busy  bool // a worker is serving the peer

	prev, next *peerTasks // ready list links; nil when not linked
}

// taskQueue holds the tasks of every peer and decides which peer a worker
// serves next. Peers are served in turn (round robin): a peer that has
// just been served goes to the back of the ready list, so a newcomer waits
// behind at most one message to each peer already queued, however much
// those peers want. A peer being served is off the ready list, so at most
// one worker serves a peer at a time.
//
// taskQueue has no lock; the Engine's mutex guards it.
type taskQueue struct {
	peers  map[peer.ID]*peerTasks
	ready  peerTasks // sentinel of the ready list: ready.next is served first
	seq    uint64
	ntasks int
}

func newTaskQueue() *taskQueue {
	q := &taskQueue{peers: make(map[peer.ID]*peerTasks)}
	q.ready.next, q.ready.prev = &q.ready, &q.ready
	return q
}

// push queues t for p, merging it with a task already queued for the same
// CID (the kind only moves up, the priority is the latest). It reports
// whether p became ready to be served.
func (q *taskQueue) push(p peer.ID, t task) bool {
	pt := q.peers[p]
	if pt == nil {
		pt = &peerTasks{id: p, byKey: make(map[string]*task)}
		q.peers[p] = pt
	}
	if old := pt.byKey[t.key]; old != nil {
		if t.kind > old.kind {
			pt.data += t.data() - old.data()
			old.kind, old.size = t.kind, t.size
		}
		old.dontHave = old.dontHave || t.dontHave
		if old.priority != t.priority {
			old.priority = t.priority
			pt.heap.fix(old.index)
		}
		return false
	}
	q.seq++
	nt := new(task)
	*nt = t
	nt.seq = q.seq
	pt.byKey[t.key] = nt
	pt.heap.push(nt)
	pt.data += nt.data()
	q.ntasks++
	if pt.busy || pt.next != nil {
		return false
	}
	q.link(pt)
	return true
}

// remove drops p's task for the CID with key, if queued.
func (q *taskQueue) remove(p peer.ID, key string) {
	pt := q.peers[p]
	if pt == nil {
		return
	}
	t := pt.byKey[key]
	if t == nil {
		return
	}
	pt.heap.remove(t.index)
	delete(pt.byKey, key)
	pt.data -= t.data()
	q.ntasks--
	q.tidy(pt)
}

// dropPeer drops every task of p. A worker serving p keeps its claim on
// the peer until done.
func (q *taskQueue) dropPeer(p peer.ID) {
	pt := q.peers[p]
	if pt == nil {
		return
	}
	q.ntasks -= len(pt.heap)
	clear(pt.byKey)
	clear(pt.heap)
	pt.heap = pt.heap[:0]
	pt.data = 0
	q.tidy(pt)
}

// hasReady reports whether some peer waits to be served.
func (q *taskQueue) hasReady() bool { return q.ready.next != &q.ready }

// pop claims the peer that has waited longest and takes its most urgent
// tasks: at least one, then more while the estimated message stays within
// maxBytes and its block data within maxData. The caller serves them and
// then calls done. pop returns nil when no peer is ready.
func (q *taskQueue) pop(maxBytes, maxData int) (*peerTasks, []*task) {
	if !q.hasReady() {
		return nil, nil
	}
	pt := q.ready.next
	q.unlink(pt)
	pt.busy = true
	var out []*task
	bytes, data := 0, 0
	for len(pt.heap) > 0 {
		t := pt.heap[0].t
		c, d := t.cost(), t.data()
		if len(out) > 0 && (bytes+c > maxBytes || data+d > maxData) {
			break
		}
		pt.heap.remove(0)
		delete(pt.byKey, t.key)
		pt.data -= d
		q.ntasks--
		bytes += c
		data += d
		out = append(out, t)
	}
	return pt, out
}

// done releases the claim pop took on pt. The peer goes to the back of the
// ready list if it has tasks left, and reports whether it did.
func (q *taskQueue) done(pt *peerTasks) bool {
	pt.busy = false
	if q.peers[pt.id] != pt {
		return false
	}
	if len(pt.heap) == 0 {
		delete(q.peers, pt.id)
		return false
	}
	q.link(pt)
	return true
}

// tidy forgets pt once it has no tasks and no worker.
func (q *taskQueue) tidy(pt *peerTasks) {
	if len(pt.heap) > 0 {
		return
	}
	if pt.next != nil {
		q.unlink(pt)
	}
	if !pt.busy {
		delete(q.peers, pt.id)
	}
}

// link appends pt to the back of the ready list.
func (q *taskQueue) link(pt *peerTasks) {
	last := q.ready.prev
	pt.prev, pt.next = last, &q.ready
	last.next = pt
	q.ready.prev = pt
}

func (q *taskQueue) unlink(pt *peerTasks) {
	pt.prev.next = pt.next
	pt.next.prev = pt.prev
	pt.prev, pt.next = nil, nil
}

// answers reports whether a block or a HAVE is queued for p's want of the
// CID with key.
func (q *taskQueue) answers(p peer.ID, key string) bool {
	if pt := q.peers[p]; pt != nil {
		t := pt.byKey[key]
		return t != nil && t.kind >= kindHave
	}
	return false
}

// pending returns the block bytes still queued for p.
func (q *taskQueue) pending(p peer.ID) int {
	if pt := q.peers[p]; pt != nil {
		return pt.data
	}
	return 0
}
