package api_test

import (
	"testing"

	"github.com/ipfs/go-cid"
	"golang.org/x/sys/unix"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/internal/blocktest"
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
	reportCPU(b)
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

// reportCPU reports the process's CPU time (user and system) per
// iteration from here to the end of b, a figure other work on the machine
// disturbs far less than the time taken.
func reportCPU(b *testing.B) {
	start := cpuTime(b)
	b.Cleanup(func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
		}
	})
}

func cpuTime(b *testing.B) int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
