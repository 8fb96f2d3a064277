package api_test

import (
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/cputime"
)

// BenchmarkGetBlocks streams 64 MiB of 256 KiB blocks from the daemon's
// store through its socket, 64 blocks a call, as `bsfs cat` reads a
// file's leaves.
func BenchmarkGetBlocks(b *testing.B) {
	const size, blockSize = 64 << 20, 256 << 10
	c, _ := serve(b)
	ctx := b.Context()
	w, err := c.BlockWriter(ctx)
	if err != nil {
		b.Fatal(err)
	}
	data := blocktest.RandomBytes(b, size)
	var cids []cid.Cid
	for off := 0; off < size; off += blockSize {
		blk, err := block.New(rawPrefix, data[off:off+blockSize])
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Put(ctx, blk); err != nil {
			b.Fatal(err)
		}
		cids = append(cids, blk.CID)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	cputime.Report(b)
	for b.Loop() {
		for i := 0; i < len(cids); i += 64 {
			st, err := c.GetBlocks(ctx, cids[i:min(i+64, len(cids))])
			if err != nil {
				b.Fatal(err)
			}
			for range st.C() {
			}
			if err := st.Err(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
