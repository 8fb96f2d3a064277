package fs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multibase"
	mh "github.com/multiformats/go-multihash"

	bsfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/testnode"
)

func TestRawBlock(t *testing.T) {
	n := newNode(t)
	data := blocktest.RandomBytes(t, 100_000)
	b := blocktest.NewBlock(t, rawPrefix, data)
	// Another codec: not UnixFS, so its content is its bytes too.
	cbor := blocktest.NewBlock(t, cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}, []byte("\xa1ahb"))
	n.put(t, b, cbor)
	dir := mount(t, n.ex, bsfs.Config{})
	for _, tc := range []struct {
		path string
		want []byte
	}{
		{filepath.Join(dir, "raw", b.CID.String()), data},
		{filepath.Join(dir, b.CID.String()), data},
		{filepath.Join(dir, cbor.CID.String()), cbor.Data},
		{filepath.Join(dir, "raw", cbor.CID.String()), cbor.Data},
	} {
		got, err := os.ReadFile(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s: %d bytes differ from the block's %d", tc.path, len(got), len(tc.want))
		}
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o444 || fi.Size() != int64(len(tc.want)) {
			t.Errorf("%s: mode %v size %d, want -r--r--r-- %d", tc.path, fi.Mode(), fi.Size(), len(tc.want))
		}
	}
	// The raw block of a dag-pb node is its encoding, not its content.
	f := buildFile(t, blocktest.RandomBytes(t, 10_000), []int{3000}, 2)
	n.put(t, f.blocks...)
	got, err := os.ReadFile(filepath.Join(dir, "raw", f.root.CID.String()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, f.root.Data) {
		t.Errorf("raw/<dag-pb root>: got %d bytes, want the block's %d", len(got), len(f.root.Data))
	}
	// A CIDv0 and a base36 spelling name the same content.
	v0 := cid.NewCidV0(f.root.CID.Hash())
	b36, err := f.root.CID.StringOfBase('k')
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{v0.String(), b36} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Size() != 10_000 {
			t.Errorf("stat %s: %v, %v; want a file of 10000 bytes", name, fi, err)
		}
	}
}

// TestMultiLeafFile reads a file of uneven leaves, three levels deep, whole
// and by preads across leaf boundaries from many goroutines on one handle.
func TestMultiLeafFile(t *testing.T) {
	n := newNode(t)
	data := blocktest.RandomBytes(t, 1_000_000)
	f := buildFile(t, data, []int{4096, 1000, 65536, 7, 12345}, 3)
	n.put(t, f.blocks...)
	dir := mount(t, n.ex, bsfs.Config{})
	path := filepath.Join(dir, f.root.CID.String())

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != int64(len(data)) || fi.Mode() != 0o444 || !fi.Mode().IsRegular() {
		t.Fatalf("stat: size %d mode %v, want %d -r--r--r--", fi.Size(), fi.Mode(), len(data))
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("content differs (%d bytes read of %d)", len(got), len(data))
	}

	// Preads around every leaf boundary; each handle fresh from the page
	// cache's point of view does not matter: content is checked either way.
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var offsets []int64
	var pos int64
	for _, l := range f.leaves {
		offsets = append(offsets, pos-1, pos, pos+1)
		pos += int64(len(l.Data))
	}
	offsets = append(offsets, pos-1, pos, pos+10)
	var wg sync.WaitGroup
	errs := make(chan error, len(offsets))
	for i, off := range offsets {
		if off < 0 {
			continue
		}
		wg.Go(func() {
			buf := make([]byte, 1+i%3*5000)
			k, err := fh.ReadAt(buf, off)
			want := data[min(off, int64(len(data))):min(off+int64(len(buf)), int64(len(data)))]
			if k != len(want) || !bytes.Equal(buf[:k], want) {
				errs <- fmt.Errorf("pread %d bytes at %d: got %d bytes (%v), want %d", len(buf), off, k, err, len(want))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestDirectory walks nested directories with modes and times, a symlink,
// and errors of paths.
func TestDirectory(t *testing.T) {
	n := newNode(t)
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	aData := []byte("hello from a.txt\n")
	a := protoBlock(t, ft.FilePBDataWithStat(aData, uint64(len(aData)), 0o640, mtime))
	bData := blocktest.RandomBytes(t, 300_000)
	bFile := buildFile(t, bData, []int{100_000}, 2)
	linkData, err := ft.SymlinkData("../a.txt")
	if err != nil {
		t.Fatal(err)
	}
	link := protoBlock(t, linkData)
	sub := dirBlock(t, 0o750, mtime, map[string]cid.Cid{"b.bin": bFile.root.CID, "link": link.CID})
	root := dirBlock(t, 0, time.Time{}, map[string]cid.Cid{"a.txt": a.CID, "sub": sub.CID})
	n.put(t, a, link, sub, root)
	n.put(t, bFile.blocks...)
	dir := mount(t, n.ex, bsfs.Config{})
	top := filepath.Join(dir, root.CID.String())

	ents, err := os.ReadDir(top)
	if err != nil {
		t.Fatal(err)
	}
	var listing []string
	for _, e := range ents {
		listing = append(listing, fmt.Sprintf("%s %v", e.Name(), e.Type()))
	}
	if want := []string{"a.txt ----------", "sub d---------"}; !slices.Equal(listing, want) {
		t.Errorf("listing %q, want %q", listing, want)
	}
	for _, tc := range []struct {
		path  string
		mode  fs.FileMode
		size  int64
		mtime time.Time
	}{
		{"", fs.ModeDir | 0o555, -1, time.Time{}},
		{"a.txt", 0o640, int64(len(aData)), mtime},
		{"sub", fs.ModeDir | 0o750, -1, mtime},
		{"sub/b.bin", 0o444, int64(len(bData)), time.Time{}},
		{"sub/link", fs.ModeSymlink | 0o777, int64(len("../a.txt")), time.Time{}},
	} {
		fi, err := os.Lstat(filepath.Join(top, tc.path))
		if err != nil {
			t.Errorf("lstat %q: %v", tc.path, err)
			continue
		}
		if fi.Mode() != tc.mode || (tc.size >= 0 && fi.Size() != tc.size) {
			t.Errorf("lstat %q: mode %v size %d, want %v %d", tc.path, fi.Mode(), fi.Size(), tc.mode, tc.size)
		}
		if !tc.mtime.IsZero() && !fi.ModTime().Equal(tc.mtime) {
			t.Errorf("lstat %q: mtime %v, want %v", tc.path, fi.ModTime(), tc.mtime)
		}
	}
	if target, err := os.Readlink(filepath.Join(top, "sub/link")); err != nil || target != "../a.txt" {
		t.Errorf("readlink: %q, %v; want ../a.txt", target, err)
	}
	for path, want := range map[string][]byte{"a.txt": aData, "sub/b.bin": bData, "sub/link": aData} {
		got, err := os.ReadFile(filepath.Join(top, path))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("read %q: %d bytes, %v; want %d bytes", path, len(got), err, len(want))
		}
	}
	for path, want := range map[string]error{
		"missing":       syscall.ENOENT,
		"sub/missing":   syscall.ENOENT,
		"a.txt/x":       syscall.ENOTDIR,
		"sub/b.bin/foo": syscall.ENOTDIR,
	} {
		if _, err := os.Stat(filepath.Join(top, path)); !errors.Is(err, want) {
			t.Errorf("stat %q: %v, want %v", path, err, want)
		}
	}
	if err := os.WriteFile(filepath.Join(top, "a.txt"), nil, 0o644); err == nil {
		t.Error("writing a file succeeded on a read-only mount")
	}
	if got := getxattr(t, filepath.Join(top, "sub"), "user.bsfs.cid"); got != sub.CID.String() {
		t.Errorf("user.bsfs.cid of sub: %q, want %s", got, sub.CID)
	}
}

// TestRootListing lists the roots the node added, each with its type, once.
// A CID whose base32 name is too long for the kernel (an identity CID of
// 160 bytes) is listed in base58btc, a name its Lookup accepts.
func TestRootListing(t *testing.T) {
	n := newNode(t)
	file := blocktest.NewBlock(t, rawPrefix, []byte("a root file"))
	d := dirBlock(t, 0, time.Time{}, nil)
	n.put(t, file, d)
	long := blocktest.NewBlock(t, cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.IDENTITY, MhLength: -1}, bytes.Repeat([]byte("inline "), 160/7))
	longName, err := long.CID.StringOfBase(multibase.Base58BTC)
	if err != nil {
		t.Fatal(err)
	}
	if len(long.CID.String()) <= 255 || len(longName) > 255 {
		t.Fatalf("test CID's names: base32 %d bytes, base58 %d", len(long.CID.String()), len(longName))
	}
	dir := mount(t, n.ex, bsfs.Config{Roots: fixedRoots{file.CID, d.CID, long.CID, file.CID}})
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range ents {
		got[e.Name()] = e.IsDir()
	}
	want := map[string]bool{file.CID.String(): false, d.CID.String(): true, longName: false}
	if len(got) != len(want) || len(ents) != len(want) {
		t.Fatalf("listing %v, want %v", got, want)
	}
	for name, isDir := range want {
		if g, ok := got[name]; !ok || g != isDir {
			t.Errorf("listing %v, want %v", got, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, longName)); err != nil || !bytes.Equal(b, long.Data) {
		t.Errorf("reading the listed %s: %q, %v; want %q", longName, b, err, long.Data)
	}
}

type fixedRoots []cid.Cid

func (r fixedRoots) Roots(context.Context) ([]cid.Cid, error) { return r, nil }

// TestNotACID checks that names that are not CIDs fail at once, without a
// want on the wire.
func TestNotACID(t *testing.T) {
	n := newNode(t)
	dir := mount(t, n.ex, bsfs.Config{})
	md5, err := mh.Sum([]byte("x"), mh.MD5, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"hello", "raw/hello", "Qm", "bafy", cid.NewCidV1(cid.Raw, md5).String(), ".Trash", "autorun.inf"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, syscall.ENOENT) {
			t.Errorf("stat %q: %v, want ENOENT", name, err)
		}
	}
	if w := n.ex.Wantlist(); len(w) != 0 {
		t.Errorf("wantlist %v, want empty", w)
	}
	if s := n.ex.Stats(); s.Wantlist != 0 {
		t.Errorf("exchange stats report %d wants, want 0", s.Wantlist)
	}
}

func getxattr(t *testing.T, path, name string) string {
	t.Helper()
	buf := make([]byte, 256)
	k, err := syscall.Getxattr(path, name, buf)
	if err != nil {
		t.Fatalf("getxattr %s %s: %v", path, name, err)
	}
	return string(buf[:k])
}

// TestXattrs reads the CID and the local fraction of a file half of whose
// leaves are local, and watches it reach 1 as the rest is fetched.
func TestXattrs(t *testing.T) {
	a, b := newNode(t), newNode(t)
	data := blocktest.RandomBytes(t, 4000)
	f := buildFile(t, data, []int{1000}, 4)
	a.put(t, f.blocks...)
	b.put(t, f.root, f.leaves[0], f.leaves[2])
	testnode.Connect(t, a.host, b.host)
	dir := mount(t, b.ex, bsfs.Config{UnixFS: unixfsConfig(b)})
	path := filepath.Join(dir, f.root.CID.String())

	if got := getxattr(t, path, "user.bsfs.cid"); got != f.root.CID.String() {
		t.Errorf("user.bsfs.cid: %q, want %s", got, f.root.CID)
	}
	if got := getxattr(t, path, "user.bsfs.local"); got != "0.5" {
		t.Errorf("user.bsfs.local before reading: %q, want 0.5", got)
	}
	buf := make([]byte, 256)
	k, err := syscall.Listxattr(path, buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:k]); got != "user.bsfs.cid\x00user.bsfs.local\x00" {
		t.Errorf("listxattr: %q", got)
	}
	if _, err := syscall.Getxattr(path, "user.other", buf); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("getxattr user.other: %v, want ENODATA", err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %d bytes, %v", len(got), err)
	}
	if got := getxattr(t, path, "user.bsfs.local"); got != "1" {
		t.Errorf("user.bsfs.local after reading: %q, want 1", got)
	}
	raw := filepath.Join(dir, "raw", f.leaves[1].CID.String())
	if got := getxattr(t, raw, "user.bsfs.local"); got != "1" {
		t.Errorf("user.bsfs.local of a fetched raw block: %q, want 1", got)
	}
}

// TestTwoNodes mounts node B and reads a file only node A has: every leaf
// comes over Bitswap.
func TestTwoNodes(t *testing.T) {
	a, b := newNode(t), newNode(t)
	data := blocktest.RandomBytes(t, 3<<20+12345)
	f := buildFile(t, data, []int{256 << 10}, 174)
	a.put(t, f.blocks...)
	testnode.Connect(t, a.host, b.host)
	dir := mount(t, b.ex, bsfs.Config{UnixFS: unixfsConfig(b)})
	got, err := os.ReadFile(filepath.Join(dir, f.root.CID.String()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("content differs (%d bytes of %d)", len(got), len(data))
	}
	for _, l := range f.leaves {
		if has, err := b.bs.Has(context.Background(), l.CID); err != nil || !has {
			t.Fatalf("leaf %s not stored on B after the read (%v)", l.CID, err)
		}
	}
	if s := b.ex.Stats(); s.BlocksReceived < uint64(len(f.blocks)) {
		t.Errorf("B received %d blocks, want at least %d", s.BlocksReceived, len(f.blocks))
	}
}
