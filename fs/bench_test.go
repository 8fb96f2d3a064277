package fs_test

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bsfs/bsfs/block"
	bsfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/cputime"
	"github.com/bsfs/bsfs/internal/testnode"
)

// BenchmarkCat64MiB reads a 64 MiB file (256 KiB leaves, as `ipfs add`
// makes them) through the mount from the local store, as cat does, with
// the kernel's page cache of the file dropped before each read; "cold"
// drops the store's files from it too, so that each leaf comes from the
// disk.
func BenchmarkCat64MiB(b *testing.B) {
	for _, bufSize := range []int{128 << 10, 1 << 20} {
		b.Run(sizeName(bufSize), func(b *testing.B) {
			benchCat(b, bufSize, false)
		})
	}
	b.Run("cold-"+sizeName(128<<10), func(b *testing.B) {
		benchCat(b, 128<<10, true)
	})
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return "read1MiB"
	}
	return "read128KiB"
}

func benchCat(b *testing.B, bufSize int, cold bool) {
	n := newNode(b)
	data := blocktest.RandomBytes(b, 64<<20)
	f := buildFile(b, data, []int{256 << 10}, 174)
	n.put(b, f.blocks...)
	dir := mount(b, n.ex, bsfs.Config{})
	path := filepath.Join(dir, f.root.CID.String())
	buf := make([]byte, bufSize)
	b.SetBytes(int64(len(data)))
	cputime.Report(b)
	for b.Loop() {
		if cold {
			b.StopTimer()
			dropCache(b, n.dir)
			b.StartTimer()
		}
		fh, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		dropFile(b, fh)
		k, err := io.CopyBuffer(io.Discard, onlyReader{fh}, buf)
		fh.Close()
		if err != nil || k != int64(len(data)) {
			b.Fatalf("read %d bytes, %v; want %d", k, err, len(data))
		}
	}
}

// dropCache drops the files under dir from the kernel's page cache.
func dropCache(b *testing.B, dir string) {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fh, err := os.Open(path)
		if err != nil {
			return err
		}
		defer fh.Close()
		if err := fh.Sync(); err != nil { // dirty pages are not dropped
			return err
		}
		dropFile(b, fh)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// dropFile drops fh's pages from the kernel's page cache.
func dropFile(b *testing.B, fh *os.File) {
	if err := unix.Fadvise(int(fh.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		b.Fatal(err)
	}
}

// onlyReader hides os.File's WriteTo, so that reads use the buffer given.
type onlyReader struct{ io.Reader }

// BenchmarkCat64MiBFetched reads a 64 MiB file through the mount of a node
// that has none of it, from a peer over loopback TCP: each leaf comes over
// Bitswap.
func BenchmarkCat64MiBFetched(b *testing.B) {
	a := newNode(b)
	data := blocktest.RandomBytes(b, 64<<20)
	f := buildFile(b, data, []int{256 << 10}, 174)
	a.put(b, f.blocks...)
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		b.StopTimer()
		c := newNode(b)
		testnode.Connect(b, a.host, c.host)
		dir := mount(b, c.ex, bsfs.Config{})
		b.StartTimer()
		fh, err := os.Open(filepath.Join(dir, f.root.CID.String()))
		if err != nil {
			b.Fatal(err)
		}
		k, err := io.CopyBuffer(io.Discard, onlyReader{fh}, buf)
		fh.Close()
		if err != nil || k != int64(len(data)) {
			b.Fatalf("read %d bytes, %v; want %d", k, err, len(data))
		}
	}
}

// BenchmarkListDir5000 lists a directory of 5000 files of 4 KiB (raw
// leaves, as `add` makes them) with each entry's attributes, as `ls -l`
// does, through a fresh mount each time: "local" from the node's own
// store, dropped from the page cache; "fetched" through a node that has
// none of it, from a peer over loopback TCP.
func BenchmarkListDir5000(b *testing.B) {
	const files = 5000
	server := newNode(b)
	children := make(map[string]block.Block, files)
	tsize := make(map[string]uint64, files)
	for i := range files {
		name := fmt.Sprintf("file%05d", i)
		children[name] = blocktest.NewBlock(b, rawPrefix, blocktest.RandomBytes(b, 4<<10))
		tsize[name] = 4 << 10
		server.put(b, children[name])
	}
	dir := sizedDir(b, children, tsize)
	server.put(b, dir)
	b.Run("local", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			dropCache(b, server.dir)
			top := filepath.Join(mount(b, server.ex, bsfs.Config{}), dir.CID.String())
			b.StartTimer()
			listLong(b, top, files)
		}
	})
	b.Run("fetched", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			c := newNode(b)
			testnode.Connect(b, server.host, c.host)
			top := filepath.Join(mount(b, c.ex, bsfs.Config{}), dir.CID.String())
			b.StartTimer()
			listLong(b, top, files)
		}
	})
}

// listLong reads dir's entries and stats each, as `ls -l` does.
func listLong(b *testing.B, dir string, want int) {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != want {
		b.Fatalf("listed %d entries, %v; want %d", len(ents), err, want)
	}
	for _, e := range ents {
		if _, err := os.Lstat(filepath.Join(dir, e.Name())); err != nil {
			b.Fatal(err)
		}
	}
}
