package blockstore_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/internal/blocktest"
)

var benchSizes = []int{1 << 10, 256 << 10}

// benchBlocks returns n distinct random blocks of size bytes.
func benchBlocks(b *testing.B, n, size int) []block.Block {
	rng := rand.New(rand.NewPCG(uint64(size), uint64(n)))
	out := make([]block.Block, n)
	for i := range out {
		data := make([]byte, size)
		for j := 0; j+8 <= size; j += 8 {
			binary.LittleEndian.PutUint64(data[j:], rng.Uint64())
		}
		out[i] = blocktest.NewBlock(b, blocktest.RawV1(), data)
	}
	return out
}

func BenchmarkPut(b *testing.B) {
	for _, size := range benchSizes {
		for _, cfg := range []blockstore.Config{{NoSync: true}, {}} {
			b.Run(fmt.Sprintf("%dKiB/sync=%v", size>>10, !cfg.NoSync), func(b *testing.B) {
				bs, err := blockstore.Open(b.TempDir(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer bs.Close()
				// Distinct blocks, so every Put writes a file; generated
				// in rounds to bound memory.
				const round = 64
				ctx := context.Background()
				b.SetBytes(int64(size))
				var blks []block.Block
				for i := 0; b.Loop(); i++ {
					if i%round == 0 {
						b.StopTimer()
						blks = benchBlocks(b, round, size)
						for j := range blks { // distinct across rounds
							blks[j] = blocktest.NewBlock(b, blocktest.RawV1(), append(blks[j].Data[:size-8], byte(i), byte(i>>8), byte(i>>16), byte(i>>24), 0, 0, 0, 0))
						}
						b.StartTimer()
					}
					if err := bs.Put(ctx, blks[i%round]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkPutMany stores distinct blocks in batches of 64.
func BenchmarkPutMany(b *testing.B) {
	for _, size := range benchSizes {
		for _, cfg := range []blockstore.Config{{NoSync: true}, {}} {
			b.Run(fmt.Sprintf("%dKiB/sync=%v", size>>10, !cfg.NoSync), func(b *testing.B) {
				bs, err := blockstore.Open(b.TempDir(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer bs.Close()
				const batch = 64
				ctx := context.Background()
				b.SetBytes(int64(size) * batch)
				for i := 0; b.Loop(); i++ {
					b.StopTimer()
					blks := benchBlocks(b, batch, size)
					for j := range blks { // distinct across batches
						blks[j] = blocktest.NewBlock(b, blocktest.RawV1(), append(blks[j].Data[:size-8], byte(i), byte(i>>8), byte(i>>16), byte(i>>24), 0, 0, 0, 0))
					}
					b.StartTimer()
					if err := bs.PutMany(ctx, blks); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkGet(b *testing.B) {
	for _, size := range benchSizes {
		for _, cfg := range []blockstore.Config{{NoSync: true}, {NoSync: true, NoVerify: true}} {
			b.Run(fmt.Sprintf("%dKiB/verify=%v", size>>10, !cfg.NoVerify), func(b *testing.B) {
				bs, err := blockstore.Open(b.TempDir(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer bs.Close()
				ctx := context.Background()
				blks := benchBlocks(b, 64, size)
				if err := bs.PutMany(ctx, blks); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(size))
				for i := 0; b.Loop(); i++ {
					if _, err := bs.Get(ctx, blks[i%len(blks)].CID); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkFirstPuts stores 1024 blocks of 4 KiB in a store just created
// (NoSync), with and without its shard directories made ahead: the cost a
// fresh repository's first fetch pays.
func BenchmarkFirstPuts(b *testing.B) {
	for _, ahead := range []bool{false, true} {
		b.Run(fmt.Sprintf("shardsAhead=%v", ahead), func(b *testing.B) {
			ctx := context.Background()
			blks := benchBlocks(b, 1024, 4<<10)
			for b.Loop() {
				b.StopTimer()
				bs, err := blockstore.Open(filepath.Join(b.TempDir(), "blocks"), blockstore.Config{NoSync: true, ShardsAhead: ahead})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for _, blk := range blks {
					if err := bs.Put(ctx, blk); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				bs.Close()
				b.StartTimer()
			}
		})
	}
}
