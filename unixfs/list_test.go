package unixfs

import (
	"testing"

	"github.com/bsfs/bsfs/internal/storetest"
)

// List gives a directory's entries, basic or sharded, with their links'
// Tsizes; a file's chunks in order, without names; nothing for a leaf.
func TestList(t *testing.T) {
	ctx := t.Context()
	bs := storetest.New(t)
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	file := addSmall(t, bs, data, 1000, 4, false)
	r := New(Local(bs), Config{})
	chunks, err := r.List(ctx, file)
	if err != nil || len(chunks) != 3 {
		t.Fatalf("List of a file of 10 leaves in nodes of 4 links: %v, %v; want its 3 children", chunks, err)
	}
	var total uint64
	for _, c := range chunks {
		if c.Name != "" || c.Tsize == 0 {
			t.Errorf("chunk %+v: want no name and its Tsize", c)
		}
		total += c.Tsize
	}
	if total < uint64(len(data)) {
		t.Errorf("the chunks' Tsizes add up to %d, less than the file's %d bytes", total, len(data))
	}
	leaves, err := r.List(ctx, chunks[2].CID)
	if err != nil || len(leaves) != 2 {
		t.Fatalf("List of the last child: %v, %v; want its 2 leaves", leaves, err)
	}
	if sub, err := r.List(ctx, leaves[0].CID); err != nil || len(sub) != 0 {
		t.Errorf("List of a raw leaf: %v, %v", sub, err)
	}

	root, want := hamtDir(t, bs, 300, 16)
	ents, err := r.List(ctx, root)
	if err != nil || len(ents) != len(want) {
		t.Fatalf("List of a HAMT of %d entries: %d, %v", len(want), len(ents), err)
	}
	for _, e := range ents {
		b, err := bs.Get(ctx, e.CID)
		if err != nil || !e.CID.Equals(want[e.Name]) || e.Tsize != uint64(len(b.Data)) {
			t.Errorf("entry %+v: want %s of Tsize %d (%v)", e, want[e.Name], len(b.Data), err)
		}
	}
}
