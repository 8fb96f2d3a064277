package unixfs

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/network"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/storetest"
)

const benchSize = 64 << 20

// catFile reads the file c from start to end with 1 MiB reads, as `bsfs
// cat` does, and fails unless it gets size bytes.
func catFile(b *testing.B, r *Reader, c cid.Cid, size int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f, err := r.Open(ctx, c)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	n := 0
	for {
		k, err := f.ReadAt(ctx, buf, int64(n))
		n += k
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if n != size {
		b.Fatalf("read %d bytes, want %d", n, size)
	}
}

// BenchmarkReadAtSequentialLocal reads a 64 MiB file from a local
// blockstore, sequentially.
func BenchmarkReadAtSequentialLocal(b *testing.B) {
	bs := storetest.New(b)
	c, err := AddFile(context.Background(), bs, bytes.NewReader(blocktest.SeededBytes(benchSize, 1)), AddOptions{})
	if err != nil {
		b.Fatal(err)
	}
	r := New(Local(bs), Config{})
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		catFile(b, r, c, benchSize)
	}
}

type benchNode struct {
	h  host.Host
	bs *blockstore.Blockstore
	ex *exchange.Exchange
}

func newBenchNode(b *testing.B) *benchNode {
	b.Helper()
	h, err := network.NewHost(network.HostConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		b.Fatal(err)
	}
	bs := storetest.New(b)
	ex, err := exchange.New(h, bs, exchange.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ex.Close()
		h.Close()
	})
	return &benchNode{h: h, bs: bs, ex: ex}
}

// BenchmarkCatFromPeer reads a 64 MiB file that only another in-process
// node has, over loopback TCP: each iteration a fresh node fetches it
// through the exchange, with the prefetch window.
func BenchmarkCatFromPeer(b *testing.B) {
	server := newBenchNode(b)
	c, err := AddFile(context.Background(), server.bs, bytes.NewReader(blocktest.SeededBytes(benchSize, 2)), AddOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		client := newBenchNode(b)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := client.h.Connect(ctx, peer.AddrInfo{ID: server.h.ID(), Addrs: server.h.Addrs()})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		catFile(b, New(client.ex, Config{}), c, benchSize)
	}
}
