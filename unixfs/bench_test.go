package unixfs

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/storetest"
	"github.com/bsfs/bsfs/internal/testnode"
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

// BenchmarkCatFromPeer reads a 64 MiB file that only another in-process
// node has, over loopback TCP: each iteration a fresh node fetches it
// through the exchange, with the prefetch window.
func BenchmarkCatFromPeer(b *testing.B) {
	server := testnode.New(b, exchange.Config{})
	c, err := AddFile(context.Background(), server.Store, bytes.NewReader(blocktest.SeededBytes(benchSize, 2)), AddOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		client := testnode.New(b, exchange.Config{})
		testnode.Connect(b, client.Host, server.Host)
		b.StartTimer()
		catFile(b, New(client.Ex, Config{}), c, benchSize)
	}
}
