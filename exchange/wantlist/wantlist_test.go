package wantlist

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/ipfs/go-cid"
)

func TestAddGetRemove(t *testing.T) {
	w := New()
	a, b := blocktest.CID(t, "a"), blocktest.CID(t, "b")
	if w.Has(a) || w.Len() != 0 {
		t.Fatal("new list is not empty")
	}
	if !w.Add(Entry{CID: a, Priority: 3, WantType: WantHave}) {
		t.Fatal("Add of a new entry reported no change")
	}
	if w.Add(Entry{CID: a, Priority: 3, WantType: WantHave}) {
		t.Fatal("Add of the same entry reported a change")
	}
	if e, ok := w.Get(a); !ok || e != (Entry{CID: a, Priority: 3, WantType: WantHave}) {
		t.Fatalf("Get = %+v, %v", e, ok)
	}
	if _, ok := w.Get(b); ok || w.Has(b) {
		t.Fatal("b found before it was added")
	}
	if w.Remove(b) {
		t.Fatal("Remove of an absent entry reported true")
	}
	if !w.Remove(a) || w.Has(a) || w.Len() != 0 {
		t.Fatal("Remove did not remove")
	}
}

func TestAddMerges(t *testing.T) {
	c := blocktest.CID(t, "c")
	tests := []struct {
		name    string
		old, e  Entry
		want    Entry
		changed bool
	}{
		{"upgrade have to block",
			Entry{Priority: 1, WantType: WantHave},
			Entry{Priority: 1, WantType: WantBlock},
			Entry{Priority: 1, WantType: WantBlock}, true},
		{"no downgrade",
			Entry{Priority: 1, WantType: WantBlock},
			Entry{Priority: 1, WantType: WantHave},
			Entry{Priority: 1, WantType: WantBlock}, false},
		{"priority updated",
			Entry{Priority: 1, WantType: WantBlock},
			Entry{Priority: 9, WantType: WantHave},
			Entry{Priority: 9, WantType: WantBlock}, true},
		{"send-dont-have set",
			Entry{Priority: 1, WantType: WantBlock},
			Entry{Priority: 1, WantType: WantHave, SendDontHave: true},
			Entry{Priority: 1, WantType: WantBlock, SendDontHave: true}, true},
		{"send-dont-have kept",
			Entry{Priority: 1, WantType: WantHave, SendDontHave: true},
			Entry{Priority: 1, WantType: WantBlock},
			Entry{Priority: 1, WantType: WantBlock, SendDontHave: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New()
			tt.old.CID, tt.e.CID, tt.want.CID = c, c, c
			w.Add(tt.old)
			if changed := w.Add(tt.e); changed != tt.changed {
				t.Errorf("Add changed = %v, want %v", changed, tt.changed)
			}
			if got, _ := w.Get(c); got != tt.want || w.Len() != 1 {
				t.Errorf("entry = %+v (len %d), want %+v", got, w.Len(), tt.want)
			}
		})
	}
}

func TestRemoveType(t *testing.T) {
	w := New()
	blk, have := blocktest.CID(t, "block"), blocktest.CID(t, "have")
	w.Add(Entry{CID: blk, WantType: WantBlock})
	w.Add(Entry{CID: have, WantType: WantHave})
	if w.RemoveType(blk, WantHave) || !w.Has(blk) {
		t.Fatal("removing WantHave removed a WantBlock")
	}
	if w.RemoveType(have, WantBlock) || !w.Has(have) {
		t.Fatal("removing WantBlock removed a WantHave")
	}
	if w.RemoveType(blocktest.CID(t, "absent"), WantBlock) {
		t.Fatal("RemoveType of an absent CID reported true")
	}
	if !w.RemoveType(blk, WantBlock) || w.Has(blk) {
		t.Fatal("RemoveType(WantBlock) kept the want-block")
	}
	if !w.RemoveType(have, WantHave) || w.Len() != 0 {
		t.Fatal("RemoveType(WantHave) kept the want-have")
	}
}

// A CIDv0 and a CIDv1 of the same multihash are different wants.
func TestKeyedByWholeCID(t *testing.T) {
	v1 := blocktest.CID(t, "same")
	v0 := cid.NewCidV0(v1.Hash())
	w := New()
	w.Add(Entry{CID: v1})
	if w.Has(v0) {
		t.Fatal("CIDv0 found under the CIDv1 of the same multihash")
	}
	w.Add(Entry{CID: v0})
	if w.Len() != 2 {
		t.Fatalf("Len = %d, want 2", w.Len())
	}
}

func TestEntriesOrder(t *testing.T) {
	w := New()
	var cids []cid.Cid
	for i := range 50 {
		c := blocktest.CID(t, fmt.Sprint(i))
		cids = append(cids, c)
		w.Add(Entry{CID: c, Priority: int32(i % 5)})
	}
	got := w.Entries()
	if len(got) != 50 {
		t.Fatalf("%d entries, want 50", len(got))
	}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if a.Priority < b.Priority || (a.Priority == b.Priority && strings.Compare(a.CID.KeyString(), b.CID.KeyString()) >= 0) {
			t.Fatalf("entries %d and %d out of order: %v, %v", i-1, i, a, b)
		}
	}
	// The same set added in another order gives the same slice.
	w2 := New()
	for i := len(cids) - 1; i >= 0; i-- {
		w2.Add(Entry{CID: cids[i], Priority: int32(i % 5)})
	}
	if !slices.Equal(got, w2.Entries()) {
		t.Fatal("Entries depends on insertion order")
	}
	// The returned slice is a copy.
	got[0].Priority = 100
	if e, _ := w.Get(got[0].CID); e.Priority == 100 {
		t.Fatal("changing the returned slice changed the list")
	}
	w.Clear()
	if w.Len() != 0 || len(w.Entries()) != 0 || w.Has(cids[0]) {
		t.Fatal("Clear left entries")
	}
	if !w.Add(Entry{CID: cids[0]}) {
		t.Fatal("Add after Clear reported no change")
	}
}

func BenchmarkWantlist(b *testing.B) {
	const n = 1000
	cids := make([]cid.Cid, n)
	for i := range cids {
		cids[i] = blocktest.CID(b, fmt.Sprint(i))
	}
	b.Run("Add", func(b *testing.B) {
		w := New()
		b.ReportAllocs()
		for b.Loop() {
			for i, c := range cids {
				w.Add(Entry{CID: c, Priority: int32(i)})
			}
			w.Clear()
		}
	})
	b.Run("Remove", func(b *testing.B) {
		w := New()
		for b.Loop() {
			b.StopTimer()
			for i, c := range cids {
				w.Add(Entry{CID: c, Priority: int32(i)})
			}
			b.StartTimer()
			for _, c := range cids {
				w.Remove(c)
			}
		}
	})
	b.Run("Entries", func(b *testing.B) {
		w := New()
		for i, c := range cids {
			w.Add(Entry{CID: c, Priority: int32(i % 10)})
		}
		b.ReportAllocs()
		for b.Loop() {
			if len(w.Entries()) != n {
				b.Fatal("wrong length")
			}
		}
	})
}
