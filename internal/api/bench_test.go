package api_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/cputime"
	"github.com/bsfs/bsfs/internal/unpack"
	"github.com/bsfs/bsfs/unixfs"
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

// BenchmarkCat reads a 64 MiB file (256 KiB leaves) through the daemon's
// socket into io.Discard, as `bsfs cat` does: "bytes" has the daemon read
// the file and send its content (Client.Cat), "blocks" has it send the
// blocks for the command line to read the file from.
func BenchmarkCat(b *testing.B) {
	c, _ := serve(b)
	ctx := b.Context()
	data := blocktest.RandomBytes(b, 64<<20)
	w, err := c.BlockWriter(ctx)
	if err != nil {
		b.Fatal(err)
	}
	root, err := unixfs.AddFile(ctx, w, bytes.NewReader(data), unixfs.AddOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cat  func(io.Writer) error
	}{
		{"bytes", func(w io.Writer) error { return c.Cat(ctx, root, w, func(int) {}) }},
		{"blocks", func(w io.Writer) error {
			f, err := unixfs.New(c, unixfs.Config{}).Open(ctx, root)
			if err != nil {
				return err
			}
			defer f.Close()
			return unpack.Copy(ctx, w, f, func(int) {})
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			cputime.Report(b)
			for b.Loop() {
				var n counter
				if err := tc.cat(&n); err != nil || int(n) != len(data) {
					b.Fatalf("cat: %d bytes, %v; want %d", n, err, len(data))
				}
			}
		})
	}
}

// counter counts the bytes written to it.
type counter int

func (n *counter) Write(p []byte) (int, error) {
	*n += counter(len(p))
	return len(p), nil
}
