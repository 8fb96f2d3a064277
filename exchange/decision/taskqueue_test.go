package decision

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/internal/blocktest"
)

func qtask(c cid.Cid, kind taskKind, prio int32, size int) task {
	return task{c: c, key: c.KeyString(), kind: kind, priority: prio, size: size}
}

// names maps popped tasks back to the strings their CIDs were made from.
func names(tasks []*task, byKey map[string]string) []string {
	var out []string
	for _, t := range tasks {
		out = append(out, byKey[t.key])
	}
	return out
}

// checkQueue verifies the queue's bookkeeping against its contents.
func checkQueue(t *testing.T, q *taskQueue) {
	t.Helper()
	n := 0
	for id, pt := range q.peers {
		if pt.id != id {
			t.Fatalf("peer %q filed under %q", pt.id, id)
		}
		if len(pt.heap) == 0 && !pt.busy {
			t.Errorf("peer %q kept with no tasks and no worker", id)
		}
		if len(pt.heap) != len(pt.byKey) {
			t.Errorf("peer %q: heap %d, index %d", id, len(pt.heap), len(pt.byKey))
		}
		data := 0
		for i, slot := range pt.heap {
			tk := slot.t
			if tk.index != i || pt.byKey[tk.key] != tk || slot.priority != tk.priority || slot.seq != tk.seq {
				t.Errorf("peer %q: task %d misfiled", id, i)
			}
			if i > 0 && pt.heap.less(i, (i-1)/2) {
				t.Errorf("peer %q: heap order broken at %d", id, i)
			}
			data += tk.data()
		}
		if data != pt.data {
			t.Errorf("peer %q: data %d, tasks hold %d", id, pt.data, data)
		}
		if linked := pt.next != nil; linked != (len(pt.heap) > 0 && !pt.busy) {
			t.Errorf("peer %q: linked %v with %d tasks, busy %v", id, linked, len(pt.heap), pt.busy)
		}
		n += len(pt.heap)
	}
	if n != q.ntasks {
		t.Errorf("ntasks %d, peers hold %d", q.ntasks, n)
	}
}

func TestQueueOrder(t *testing.T) {
	q := newTaskQueue()
	byKey := map[string]string{}
	add := func(name string, prio int32) {
		c := blocktest.CID(t, name)
		byKey[c.KeyString()] = name
		q.push("p", qtask(c, kindHave, prio, 0))
	}
	add("low", 1)
	add("high1", 9)
	add("mid", 5)
	add("high2", 9)
	checkQueue(t, q)
	pt, got := q.pop(1<<20, 1<<20)
	if pt.id != "p" {
		t.Fatalf("popped peer %q", pt.id)
	}
	if want := []string{"high1", "high2", "mid", "low"}; !slices.Equal(names(got, byKey), want) {
		t.Fatalf("order %v, want %v", names(got, byKey), want)
	}
	checkQueue(t, q)
	if q.done(pt) || len(q.peers) != 0 || q.hasReady() {
		t.Fatal("an emptied peer was kept")
	}
}

func TestQueueMerge(t *testing.T) {
	q := newTaskQueue()
	a, b := blocktest.CID(t, "a"), blocktest.CID(t, "b")
	if !q.push("p", qtask(a, kindDontHave, 1, 0)) {
		t.Fatal("first task did not make the peer ready")
	}
	if q.push("p", qtask(b, kindHave, 2, 0)) {
		t.Fatal("second task reported the peer newly ready")
	}
	// a moves up to a block and to the top priority.
	q.push("p", qtask(a, kindBlock, 3, 100))
	// A lesser kind does not move a back down.
	q.push("p", task{c: a, key: a.KeyString(), kind: kindHave, priority: 3, dontHave: true})
	checkQueue(t, q)
	if q.ntasks != 2 || q.pending("p") != 100 {
		t.Fatalf("ntasks %d pending %d, want 2 and 100", q.ntasks, q.pending("p"))
	}
	_, got := q.pop(1<<20, 1<<20)
	if len(got) != 2 || !got[0].c.Equals(a) || got[0].kind != kindBlock || got[0].size != 100 || !got[0].dontHave {
		t.Fatalf("merged task %+v", got[0])
	}
}

func TestQueueBudget(t *testing.T) {
	q := newTaskQueue()
	for i := range 10 {
		q.push("p", qtask(blocktest.CID(t, fmt.Sprint(i)), kindBlock, 0, 1000))
	}
	q.push("p", qtask(blocktest.CID(t, "big"), kindBlock, -1, 5000))
	per := 1000 + blocktest.CID(t, "x").ByteLen() + blockOverhead
	// The message budget admits three blocks.
	pt, got := q.pop(3*per+per/2, 1<<20)
	if len(got) != 3 {
		t.Fatalf("message budget: %d tasks, want 3", len(got))
	}
	q.done(pt)
	// The data budget admits two.
	pt, got = q.pop(1<<20, 2500)
	if len(got) != 2 {
		t.Fatalf("data budget: %d tasks, want 2", len(got))
	}
	q.done(pt)
	pt, got = q.pop(1<<20, 5000)
	if len(got) != 5 {
		t.Fatalf("stops before the big block: %d tasks, want 5", len(got))
	}
	q.done(pt)
	// A task over budget still goes out, alone.
	pt, got = q.pop(10, 10)
	if len(got) != 1 || got[0].size != 5000 {
		t.Fatalf("oversize task: %d tasks", len(got))
	}
	q.done(pt)
	checkQueue(t, q)
	if len(q.peers) != 0 {
		t.Fatal("queue not empty")
	}
}

// Peers are served in turn, and a peer being served is not served again
// until done.
func TestQueueRoundRobin(t *testing.T) {
	q := newTaskQueue()
	for i := range 100 {
		q.push("greedy", qtask(blocktest.CID(t, fmt.Sprint("g", i)), kindBlock, 100, 1<<20))
	}
	g, _ := q.pop(1<<20, 1<<20)
	if q.hasReady() {
		t.Fatal("a peer being served is ready again")
	}
	q.push("greedy", qtask(blocktest.CID(t, "more"), kindBlock, 100, 1<<20))
	if q.hasReady() {
		t.Fatal("a push made a peer being served ready")
	}
	q.push("b", qtask(blocktest.CID(t, "b"), kindBlock, 0, 10))
	q.push("c", qtask(blocktest.CID(t, "c"), kindBlock, 0, 10))
	if !q.done(g) {
		t.Fatal("greedy peer with tasks left not requeued")
	}
	var order []peer.ID
	for i := 0; i < 6 && q.hasReady(); i++ {
		pt, _ := q.pop(1<<20, 1<<20)
		order = append(order, pt.id)
		q.done(pt)
		checkQueue(t, q)
	}
	if want := []peer.ID{"b", "c", "greedy", "greedy", "greedy", "greedy"}; !slices.Equal(order, want) {
		t.Fatalf("served %v, want %v", order, want)
	}
}

func TestQueueRemove(t *testing.T) {
	q := newTaskQueue()
	a, b := blocktest.CID(t, "a"), blocktest.CID(t, "b")
	q.push("p", qtask(a, kindBlock, 0, 10))
	q.push("p", qtask(b, kindBlock, 0, 20))
	q.push("q", qtask(a, kindBlock, 0, 10))
	q.remove("p", a.KeyString())
	q.remove("p", blocktest.CID(t, "absent").KeyString())
	q.remove("nobody", a.KeyString())
	checkQueue(t, q)
	if q.ntasks != 2 || q.pending("p") != 20 {
		t.Fatalf("ntasks %d pending %d", q.ntasks, q.pending("p"))
	}
	q.remove("p", b.KeyString())
	checkQueue(t, q)
	if _, ok := q.peers["p"]; ok {
		t.Fatal("peer without tasks kept")
	}
	pt, got := q.pop(1<<20, 1<<20)
	if pt.id != "q" || len(got) != 1 || q.hasReady() {
		t.Fatal("removing p's tasks disturbed q")
	}
}

// Dropping a peer being served keeps the claim until done, so a peer that
// comes back is not served by two workers at once.
func TestQueueDropBusyPeer(t *testing.T) {
	q := newTaskQueue()
	for i := range 5 {
		q.push("p", qtask(blocktest.CID(t, fmt.Sprint(i)), kindBlock, 0, 1<<20))
	}
	pt, _ := q.pop(1<<20, 1<<20)
	q.dropPeer("p")
	checkQueue(t, q)
	if q.ntasks != 0 || q.peers["p"] != pt {
		t.Fatal("drop of a busy peer lost its claim or kept tasks")
	}
	q.push("p", qtask(blocktest.CID(t, "again"), kindHave, 0, 0))
	if q.hasReady() {
		t.Fatal("busy peer became ready")
	}
	if !q.done(pt) {
		t.Fatal("peer with a new task not requeued after done")
	}
	pt, got := q.pop(1<<20, 1<<20)
	if len(got) != 1 {
		t.Fatalf("%d tasks after drop and push, want 1", len(got))
	}
	q.done(pt)
	q.dropPeer("p")
	q.dropPeer("p")
	if len(q.peers) != 0 || q.hasReady() {
		t.Fatal("queue not empty")
	}
}

// BenchmarkTaskQueue pushes 100,000 tasks across 100 peers and pops them
// all in messages of up to 16 tasks.
func BenchmarkTaskQueue(b *testing.B) {
	const peers, tasks = 100, 100_000
	ids := make([]peer.ID, peers)
	for i := range ids {
		ids[i] = peer.ID(fmt.Sprint("peer", i))
	}
	ts := make([]task, tasks)
	for i := range ts {
		c := blocktest.CID(b, fmt.Sprint(i))
		ts[i] = qtask(c, kindBlock, int32(i%7), 1000)
	}
	budget := 16 * ts[0].cost()
	b.ReportAllocs()
	for b.Loop() {
		q := newTaskQueue()
		for i := range ts {
			q.push(ids[i%peers], ts[i])
		}
		popped := 0
		for q.hasReady() {
			pt, got := q.pop(budget, 1<<20)
			popped += len(got)
			q.done(pt)
		}
		if popped != tasks {
			b.Fatalf("popped %d of %d", popped, tasks)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tasks), "ns/task")
}

// A task's cost bounds the bytes it adds to a message in every version,
// and pendingOverhead bounds the PendingBytes field.
func TestTaskCostBoundsEncoding(t *testing.T) {
	var cids []cid.Cid
	for _, code := range []uint64{mh.SHA2_256, mh.SHA2_512, mh.BLAKE3} {
		h, err := mh.Sum([]byte("x"), code, -1)
		if err != nil {
			t.Fatal(err)
		}
		cids = append(cids, cid.NewCidV1(cid.Raw, h), cid.NewCidV1(cid.DagProtobuf, h))
		if code == mh.SHA2_256 {
			cids = append(cids, cid.NewCidV0(h))
		}
	}
	for _, c := range cids {
		for _, size := range []int{0, 1, 127, 128, 16383, 16384, 2 << 20} {
			tk := qtask(c, kindBlock, 0, size)
			m := &message.Message{Blocks: []block.Block{{CID: c, Data: make([]byte, size)}}}
			for _, ver := range []message.Version{message.V100, message.V110, message.V120} {
				if n := m.Size(ver); n > tk.cost() {
					t.Errorf("%v block of %d bytes: %d encoded, cost %d", ver, size, n, tk.cost())
				}
			}
		}
		for _, kind := range []taskKind{kindHave, kindDontHave} {
			tk := qtask(c, kind, 0, 0)
			m := &message.Message{Presences: []message.Presence{{CID: c, Type: message.DontHave}}}
			if n := m.Size(message.V120); n > tk.cost() {
				t.Errorf("presence: %d encoded, cost %d", n, tk.cost())
			}
		}
	}
	m := &message.Message{PendingBytes: math.MaxInt32}
	if n := m.Size(message.V120); n > pendingOverhead {
		t.Errorf("PendingBytes: %d encoded, overhead %d", n, pendingOverhead)
	}
}
