package unpack_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/testnode"
	"github.com/bsfs/bsfs/internal/unpack"
	"github.com/bsfs/bsfs/unixfs"
)

// BenchmarkWriteTree2000 writes a directory of 2000 files of 4 KiB (one
// raw block each, as `add` makes them) to disk, as `bsfs get` does,
// through a node that has none of it, from a peer over loopback TCP.
func BenchmarkWriteTree2000(b *testing.B) {
	const files = 2000
	src := filepath.Join(b.TempDir(), "tree")
	if err := os.Mkdir(src, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range files {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%05d", i)), blocktest.RandomBytes(b, 4<<10), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	server := testnode.New(b, exchange.Config{})
	root, err := unixfs.AddPath(ctx, server.Store, src, unixfs.AddOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		client := testnode.New(b, exchange.Config{})
		testnode.Connect(b, client.Host, server.Host)
		r := unixfs.New(client.Ex, unixfs.Config{})
		dst := filepath.Join(b.TempDir(), "out")
		b.StartTimer()
		nd, err := r.Stat(ctx, root)
		if err != nil {
			b.Fatal(err)
		}
		if err := unpack.WriteTree(ctx, r, nd, dst, func(int64) {}); err != nil {
			b.Fatal(err)
		}
	}
}
