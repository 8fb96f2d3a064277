package exchange_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/testnode"
)

const (
	benchBlockSize = 256 << 10
	benchBlocks    = 256 // 64 MiB
)

// fetchAll fetches cids into n with one GetBlocks call and fails unless
// every block arrives.
func fetchAll(b *testing.B, n *testNode, cids []cid.Cid) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, err := n.ex.GetBlocks(ctx, cids)
	if err != nil {
		b.Fatal(err)
	}
	got := 0
	for range st.C() {
		got++
	}
	if got != len(cids) {
		b.Fatalf("fetched %d of %d blocks: %v", got, len(cids), ctx.Err())
	}
}

// BenchmarkFetch64MiBFromBsfs fetches 64 MiB in 256 KiB blocks from another
// bsfs node over loopback TCP, into a fresh store each iteration.
func BenchmarkFetch64MiBFromBsfs(b *testing.B) {
	server := newNode(b)
	cids := make([]cid.Cid, 0, benchBlocks)
	for range benchBlocks {
		blk, err := block.New(rawV1, blocktest.RandomBytes(b, benchBlockSize))
		if err != nil {
			b.Fatal(err)
		}
		if err := server.bs.Put(context.Background(), blk); err != nil {
			b.Fatal(err)
		}
		cids = append(cids, blk.CID)
	}
	b.SetBytes(benchBlocks * benchBlockSize)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		client := newNode(b)
		testnode.Connect(b, client.host, server.host)
		b.StartTimer()
		fetchAll(b, client, cids)
	}
}

// BenchmarkFetchSmallBlocks fetches 2000 blocks of 4 KiB from another bsfs
// node over loopback TCP, into a fresh store each iteration: the cost of a
// block, not of its bytes, as when getting a directory of small files.
func BenchmarkFetchSmallBlocks(b *testing.B) {
	const n, size = 1000, 4 << 10
	server := newNode(b)
	cids := seed(b, []*testNode{server}, n, size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		client := newNode(b)
		testnode.Connect(b, client.host, server.host)
		b.StartTimer()
		fetchAll(b, client, cids)
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "blocks/s")
}

// BenchmarkFetch64MiBFromKubo fetches the 256 KiB raw leaves of a 64 MiB
// file that a Kubo node added.
func BenchmarkFetch64MiBFromKubo(b *testing.B) {
	kubo := kubotest.Start(b)
	ctx := context.Background()
	root, err := kubo.Add(ctx, blocktest.RandomBytes(b, benchBlocks*benchBlockSize), 1, true)
	if err != nil {
		b.Fatal(err)
	}
	out, err := kubo.Run(ctx, "refs", "-r", "--unique", root.String())
	if err != nil {
		b.Fatal(err)
	}
	var cids []cid.Cid
	for _, line := range strings.Fields(string(out)) {
		c, err := cid.Decode(line)
		if err != nil {
			b.Fatal(err)
		}
		cids = append(cids, c)
	}
	b.SetBytes(benchBlocks * benchBlockSize)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		client := newNode(b)
		kubo.Dial(ctx, b, client.host)
		b.StartTimer()
		fetchAll(b, client, cids)
	}
}

// BenchmarkSessionPeers fetches 8 MiB (128 blocks of 64 KiB) with a session
// from 1, 2 and 3 peers that all have it, and reports the duplicate blocks
// received per fetch: they must not rise as peers are added.
func BenchmarkSessionPeers(b *testing.B) {
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			servers := make([]*testNode, n)
			for i := range servers {
				servers[i] = newNode(b)
			}
			cids := seed(b, servers, 128, 64<<10)
			b.SetBytes(128 * 64 << 10)
			var dups uint64
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				client := newNode(b)
				for _, s := range servers {
					testnode.Connect(b, client.host, s.host)
				}
				sess := client.ex.NewSession(context.Background())
				b.StartTimer()
				st, err := sess.GetBlocks(context.Background(), cids)
				if err != nil {
					b.Fatal(err)
				}
				got := 0
				for range st.C() {
					got++
				}
				b.StopTimer()
				if got != len(cids) {
					b.Fatalf("fetched %d of %d", got, len(cids))
				}
				waitCopiesCounted(b, client, servers)
				dups += client.ex.Stats().DupBlksReceived
				sess.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(dups)/float64(b.N), "dups/op")
		})
	}
}

// BenchmarkGetOneBlock fetches single 1 KiB blocks, each new to the
// client, from a connected peer that has them, one GetBlock call after the
// other: the latency of `bsfs block get`, in ns/op.
func BenchmarkGetOneBlock(b *testing.B) {
	const batch = 256
	server, client := newNode(b), newNode(b)
	testnode.Connect(b, client.host, server.host)
	ctx := b.Context()
	var cids []cid.Cid
	for i := 0; b.Loop(); i++ {
		if i%batch == 0 {
			b.StopTimer()
			cids = seed(b, []*testNode{server}, batch, 1<<10)
			b.StartTimer()
		}
		if _, err := client.ex.GetBlock(ctx, cids[i%batch]); err != nil {
			b.Fatal(err)
		}
	}
}
