package fs_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	bsfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/mounttest"
	"github.com/bsfs/bsfs/unixfs"
)

// TestMountKuboTree mounts content that only a Kubo peer has, added by
// Kubo: a multi-block file read whole and by pread across block
// boundaries, a nested path, a symlink, and a 5000-entry sharded directory
// listed with its attributes. bsfs adding the same tree gives Kubo's CID.
func TestMountKuboTree(t *testing.T) {
	mounttest.RequireFUSE(t)
	kubo := kubotest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	src := filepath.Join(t.TempDir(), "tree")
	big := blocktest.RandomBytes(t, 3<<20+12345) // 13 leaves of 256 KiB
	small := []byte("nested file\n")
	const entries = 5000
	mustWrite(t, filepath.Join(src, "big.bin"), big)
	mustWrite(t, filepath.Join(src, "sub", "deeper", "small.txt"), small)
	if err := os.Symlink("big.bin", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	for i := range entries {
		mustWrite(t, filepath.Join(src, "many", fmt.Sprintf("file-%04d.txt", i)), fmt.Appendf(nil, "entry %d\n", i))
	}
	out, err := kubo.Run(ctx, "add", "-r", "-Q", "--cid-version=1", src)
	if err != nil {
		t.Fatal(err)
	}
	root, err := cid.Decode(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("kubo add printed %q: %v", out, err)
	}

	// The same tree added by bsfs: the same root, sharded directory and all.
	store := newNode(t)
	mine, err := unixfs.AddPath(ctx, store.bs, src, unixfs.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !mine.Equals(root) {
		t.Fatalf("bsfs add gives %s, Kubo %s", mine, root)
	}

	n := newNode(t) // an empty store: everything comes from Kubo
	kubo.Dial(ctx, t, n.host)
	dir := mount(t, n.ex, bsfs.Config{UnixFS: unixfsConfig(n)})
	top := filepath.Join(dir, root.String())

	checkBigFile(t, top, big)
	if got, err := os.ReadFile(filepath.Join(top, "sub", "deeper", "small.txt")); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("nested path: %q, %v", got, err)
	}
	if target, err := os.Readlink(filepath.Join(top, "link")); err != nil || target != "big.bin" {
		t.Fatalf("symlink: %q, %v", target, err)
	}

	checkShardedDir(t, filepath.Join(top, "many"), entries)
}

// checkBigFile checks the multi-block file at top/big.bin holds big, read
// whole and by pread across block boundaries.
func checkBigFile(t *testing.T, top string, big []byte) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(top, "big.bin"))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("big.bin: %d bytes, %v", len(got), err)
	}
	f, err := os.Open(filepath.Join(top, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range []int64{0, 256<<10 - 7, 256 << 10, 5*256<<10 - 1, int64(len(big)) - 100} {
		buf := make([]byte, 300)
		m, err := f.ReadAt(buf, off)
		if m == 0 || (err != nil && m < len(buf) && off+int64(m) != int64(len(big))) {
			t.Fatalf("pread at %d: %d bytes, %v", off, m, err)
		}
		if !bytes.Equal(buf[:m], big[off:off+int64(m)]) {
			t.Fatalf("pread at %d: wrong bytes", off)
		}
	}
}

// checkShardedDir checks ls -l of the sharded directory dir: every name
// and its size.
func checkShardedDir(t *testing.T, dir string, entries int) {
	t.Helper()
	start := time.Now()
	list, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != entries {
		t.Fatalf("the sharded directory lists %d entries, want %d", len(list), entries)
	}
	for _, e := range list {
		fi, err := e.Info()
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		var i int
		fmt.Sscanf(e.Name(), "file-%04d.txt", &i)
		if want := int64(len(fmt.Sprintf("entry %d\n", i))); fi.Size() != want {
			t.Fatalf("%s: size %d, want %d", e.Name(), fi.Size(), want)
		}
	}
	t.Logf("ls -l of %d entries fetched from Kubo through the mount: %v", entries, time.Since(start).Round(time.Millisecond))
	if got, err := os.ReadFile(filepath.Join(dir, "file-4321.txt")); err != nil || string(got) != "entry 4321\n" {
		t.Fatalf("a file of the sharded directory: %q, %v", got, err)
	}
}

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
