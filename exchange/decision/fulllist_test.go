package decision

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/wantlist"
	"github.com/bsfs/bsfs/internal/blocktest"
)

func prio(e message.Entry, p int32) message.Entry {
	e.Priority = p
	return e
}

// checkFull fails the test unless p's list holds exactly want, and no more
// than limit.
func checkFull(t *testing.T, v *env, p peer.ID, limit int, want ...cid.Cid) {
	t.Helper()
	var ws []string
	for _, c := range want {
		ws = append(ws, c.String())
	}
	if got := wanted(v, p); !slices.Equal(got, sorted(ws...)) || len(got) > limit {
		t.Fatalf("wantlist %v, want %v", got, sorted(ws...))
	}
}

// When the list is full, each want we can serve takes the place of the
// least urgent want we cannot: lowest priority, then earliest found
// lacking. Wants we can serve never give way, and once none is left to give
// way a new want is ignored, even one we can serve.
func TestFullListEvictionOrder(t *testing.T) {
	run(t, Config{Workers: 1, MaxWantlistEntries: 4}, func(t *testing.T, v *env) {
		release := blockWorker(t, v) // served wants stay in the list
		m := []cid.Cid{blocktest.CID(t, "m0"), blocktest.CID(t, "m1"), blocktest.CID(t, "m2"), blocktest.CID(t, "m3")}
		v.receive("p", msg(prio(wantHave(m[0]), 5), prio(wantHave(m[1]), 1), prio(wantHave(m[2]), 3)))
		v.receive("p", msg(prio(wantHave(m[3]), 1)))
		var held []cid.Cid
		for i := range 5 {
			b := testBlock(t, fmt.Sprint("held ", i))
			v.store.put(b)
			held = append(held, b.CID)
		}
		steps := []struct {
			evicted cid.Cid
			left    []cid.Cid
		}{
			{m[1], []cid.Cid{m[0], m[2], m[3], held[0]}},          // priority 1, found lacking first
			{m[3], []cid.Cid{m[0], m[2], held[0], held[1]}},       // priority 1
			{m[2], []cid.Cid{m[0], held[0], held[1], held[2]}},    // priority 3
			{m[0], []cid.Cid{held[0], held[1], held[2], held[3]}}, // priority 5, over a servable want of priority 0
		}
		for i, s := range steps {
			v.receive("p", msg(prio(wantBlock(held[i]), 0)))
			checkFull(t, v, "p", 4, s.left...)
			if st := v.e.Stats(); st.WantsEvicted != uint64(i+1) || st.WantsIgnored != 0 {
				t.Fatalf("step %d: evicted %d, ignored %d", i, st.WantsEvicted, st.WantsIgnored)
			}
		}
		// Every want held can be served: the new one is ignored.
		v.receive("p", msg(prio(wantBlock(held[4]), 100)))
		checkFull(t, v, "p", 4, held[:4]...)
		if st := v.e.Stats(); st.WantsEvicted != 4 || st.WantsIgnored != 1 {
			t.Fatalf("evicted %d, ignored %d", st.WantsEvicted, st.WantsIgnored)
		}
		release()
		settle()
		var want []string
		for _, c := range held[:4] {
			want = append(want, "block "+c.String())
		}
		if got := sorted(v.net.answers("p")...); !slices.Equal(got, sorted(want...)) {
			t.Fatalf("answers %v, want %v", got, want)
		}
	})
}

// A want over the cap whose block we lack takes no place, whatever its
// priority; a want renewed with another priority moves in the order.
func TestFullListLackingWantIgnored(t *testing.T) {
	run(t, Config{MaxWantlistEntries: 2}, func(t *testing.T, v *env) {
		a, b, c := blocktest.CID(t, "a"), blocktest.CID(t, "b"), blocktest.CID(t, "c")
		v.receive("p", msg(prio(wantHave(a), 1), prio(wantHave(b), 2)))
		v.receive("p", msg(prio(wantBlock(c), 99)))
		checkFull(t, v, "p", 2, a, b)
		if st := v.e.Stats(); st.WantsEvicted != 0 || st.WantsIgnored != 1 {
			t.Fatalf("evicted %d, ignored %d", st.WantsEvicted, st.WantsIgnored)
		}
		v.receive("p", msg(prio(wantHave(a), 3))) // now b is the least urgent
		x := testBlock(t, "x")
		v.store.put(x)
		v.receive("p", msg(wantBlock(x.CID)))
		settle()
		checkFull(t, v, "p", 2, a)
		if got := v.net.answers("p"); !slices.Equal(got, []string{"block " + x.CID.String()}) {
			t.Fatalf("answers %v", got)
		}
	})
}

// The DONT_HAVE queued for a want that gives way is dropped with it.
func TestFullListEvictedDontHaveDropped(t *testing.T) {
	run(t, Config{Workers: 1, MaxWantlistEntries: 2}, func(t *testing.T, v *env) {
		release := blockWorker(t, v)
		a, b := blocktest.CID(t, "a"), blocktest.CID(t, "b")
		ea, eb := prio(wantHave(a), 2), prio(wantHave(b), 1)
		ea.SendDontHave, eb.SendDontHave = true, true
		v.receive("p", msg(ea, eb))
		x := testBlock(t, "x")
		v.store.put(x)
		v.receive("p", msg(wantBlock(x.CID)))
		if st := v.e.Stats(); st.QueuedTasks != 2 {
			t.Fatalf("%d tasks queued, want 2 (a's DONT_HAVE, x's block)", st.QueuedTasks)
		}
		release()
		settle()
		want := sorted("dont-have "+a.String(), "block "+x.CID.String())
		if got := sorted(v.net.answers("p")...); !slices.Equal(got, want) {
			t.Fatalf("answers %v, want %v", got, want)
		}
	})
}

// A want whose block is added later is one we can serve: it no longer
// gives way.
func TestFullListBlockAddedKeepsPlace(t *testing.T) {
	run(t, Config{Workers: 1, MaxWantlistEntries: 2}, func(t *testing.T, v *env) {
		release := blockWorker(t, v)
		a, b := testBlock(t, "a"), testBlock(t, "b")
		v.receive("p", msg(prio(wantBlock(a.CID), 1), prio(wantBlock(b.CID), 2)))
		v.store.put(a)
		v.e.BlocksAdded([]block.Block{a})
		x := testBlock(t, "x")
		v.store.put(x)
		v.receive("p", msg(wantBlock(x.CID)))
		checkFull(t, v, "p", 2, a.CID, x.CID)
		release()
		settle()
		want := sorted("block "+a.CID.String(), "block "+x.CID.String())
		if got := sorted(v.net.answers("p")...); !slices.Equal(got, want) {
			t.Fatalf("answers %v, want %v", got, want)
		}
	})
}

// A block added while its want is being looked up: the lookup says it is
// lacking, but its block is queued, so the want does not give way.
func TestFullListBlockAddedDuringLookup(t *testing.T) {
	run(t, Config{Workers: 1, MaxWantlistEntries: 2}, func(t *testing.T, v *env) {
		release := blockWorker(t, v)
		a, b := testBlock(t, "a"), blocktest.CID(t, "b")
		// a is looked up first and missed; a is added while b is looked up.
		v.store.onSize = func(c cid.Cid) {
			if c.Equals(b) {
				v.store.put(a)
				v.e.BlocksAdded([]block.Block{a})
			}
		}
		v.receive("p", msg(prio(wantBlock(a.CID), 1), prio(wantHave(b), 2)))
		v.store.onSize = nil
		x := testBlock(t, "x")
		v.store.put(x)
		v.receive("p", msg(wantBlock(x.CID)))
		checkFull(t, v, "p", 2, a.CID, x.CID)
		release()
		settle()
		want := sorted("block "+a.CID.String(), "block "+x.CID.String())
		if got := sorted(v.net.answers("p")...); !slices.Equal(got, want) {
			t.Fatalf("answers %v, want %v", got, want)
		}
	})
}

// All in one message: wants that fill the list, then a want we can serve,
// which takes the place of the least urgent, then one we cannot serve.
func TestFullListOneMessage(t *testing.T) {
	run(t, Config{MaxWantlistEntries: 3}, func(t *testing.T, v *env) {
		m := []cid.Cid{blocktest.CID(t, "m0"), blocktest.CID(t, "m1"), blocktest.CID(t, "m2"), blocktest.CID(t, "m3")}
		x := testBlock(t, "x")
		v.store.put(x)
		full := msg(prio(wantHave(m[0]), 3), prio(wantHave(m[1]), 2), prio(wantHave(m[2]), 1), prio(wantBlock(x.CID), 0), prio(wantHave(m[3]), 9))
		full.Full = true
		v.receive("p", full)
		settle()
		checkFull(t, v, "p", 3, m[0], m[1])
		if got := v.net.answers("p"); !slices.Equal(got, []string{"block " + x.CID.String()}) {
			t.Fatalf("answers %v", got)
		}
		if st := v.e.Stats(); st.WantsEvicted != 1 || st.WantsIgnored != 1 {
			t.Fatalf("evicted %d, ignored %d", st.WantsEvicted, st.WantsIgnored)
		}
	})
}

// A flood over a full list costs at most a list's worth of store lookups
// per message: wants past that are ignored unread, even one we could serve.
func TestFullListLookupsBounded(t *testing.T) {
	const limit = 8
	run(t, Config{MaxWantlistEntries: limit}, func(t *testing.T, v *env) {
		var fill []message.Entry
		for i := range limit {
			fill = append(fill, wantHave(blocktest.CID(t, fmt.Sprint("fill ", i))))
		}
		v.receive("p", msg(fill...))
		x, y := testBlock(t, "x"), testBlock(t, "y")
		v.store.put(x)
		v.store.put(y)
		flood := msg(wantBlock(x.CID))
		for i := range 10_000 {
			flood.Wants = append(flood.Wants, wantHave(blocktest.CID(t, fmt.Sprint("flood ", i))))
		}
		flood.Wants = append(flood.Wants, wantBlock(y.CID))
		before := v.store.lookupCount()
		v.receive("p", flood)
		settle()
		if n := v.store.lookupCount() - before; n != limit {
			t.Fatalf("%d store lookups for a flood, want %d", n, limit)
		}
		if got := v.net.answers("p"); !slices.Equal(got, []string{"block " + x.CID.String()}) {
			t.Fatalf("answers %v, want x's block alone", got)
		}
		if l, _ := v.e.Ledger("p"); l.WantlistSize != limit-1 {
			t.Fatalf("wantlist of %d after x was sent, want %d", l.WantlistSize, limit-1)
		}
	})
}

func TestLacking(t *testing.T) {
	var s lacking
	if _, ok := s.pop(); ok {
		t.Fatal("pop from an empty set")
	}
	c := func(i int) cid.Cid { return blocktest.CID(t, fmt.Sprint(i)) }
	for i, p := range []int32{3, 1, 2, 1, 5, 0} {
		s.add(wantlist.Entry{CID: c(i), Priority: p})
	}
	s.add(wantlist.Entry{CID: c(5), Priority: 4}) // priority changed: 0 -> 4
	s.add(wantlist.Entry{CID: c(1), Priority: 1}) // unchanged, keeps its place
	s.remove(c(2))
	s.remove(c(99)) // absent
	var got []cid.Cid
	for {
		x, ok := s.pop()
		if !ok {
			break
		}
		got = append(got, x)
	}
	if want := []cid.Cid{c(1), c(3), c(0), c(5), c(4)}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	s.add(wantlist.Entry{CID: c(0)})
	s.clear()
	if _, ok := s.pop(); ok || len(s.byKey) != 0 {
		t.Fatal("clear left wants")
	}
}
