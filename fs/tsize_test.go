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
	format "github.com/ipfs/go-ipld-format"

	ft "github.com/ipfs/boxo/ipld/unixfs"

	"github.com/bsfs/bsfs/block"
	bsfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/testnode"
)

// sizedDir builds a UnixFS directory whose links record the given Tsizes.
func sizedDir(t testing.TB, children map[string]block.Block, tsize map[string]uint64) block.Block {
	t.Helper()
	var links []*format.Link
	for name, b := range children {
		links = append(links, &format.Link{Name: name, Cid: b.CID, Size: tsize[name]})
	}
	return protoBlock(t, ft.FolderPBData(), links...)
}

// TestListingFetchesNoRawChild lists a directory of raw-leaf files that only
// a peer has: `ls -l` shows every size and fetches the directory's block
// alone; reading a file then fetches it.
func TestListingFetchesNoRawChild(t *testing.T) {
	server, client := newNode(t), newNode(t)
	testnode.Connect(t, server.host, client.host)
	children := make(map[string]block.Block)
	tsize := make(map[string]uint64)
	for i := range 40 {
		name := fmt.Sprintf("f%02d", i)
		children[name] = blocktest.NewBlock(t, rawPrefix, blocktest.RandomBytes(t, 100+i))
		tsize[name] = uint64(100 + i)
	}
	dir := sizedDir(t, children, tsize)
	server.put(t, dir)
	for _, b := range children {
		server.put(t, b)
	}
	top := filepath.Join(mount(t, client.ex, bsfs.Config{UnixFS: unixfsConfig(client)}), dir.CID.String())

	ents, err := os.ReadDir(top)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(children) {
		t.Fatalf("listed %d entries, want %d", len(ents), len(children))
	}
	for _, e := range ents {
		fi, err := os.Lstat(filepath.Join(top, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() || uint64(fi.Size()) != tsize[e.Name()] {
			t.Errorf("%s: mode %v size %d, want a file of %d bytes", e.Name(), fi.Mode(), fi.Size(), tsize[e.Name()])
		}
	}
	for name, b := range children {
		if has, err := client.bs.Has(context.Background(), b.CID); err != nil || has {
			t.Fatalf("listing fetched %s (%s): has %v, %v", name, b.CID, has, err)
		}
	}
	got, err := os.ReadFile(filepath.Join(top, "f07"))
	if err != nil || !bytes.Equal(got, children["f07"].Data) {
		t.Fatalf("read f07: %d bytes, %v; want %d bytes", len(got), err, len(children["f07"].Data))
	}
}

// TestWrongTsize lists a directory whose links claim wrong sizes for raw
// children: the listing shows the claims, but opening a file reads its
// block's true bytes, stat then shows the true size, and a warning names
// the CID.
func TestWrongTsize(t *testing.T) {
	n := newNode(t)
	short := blocktest.NewBlock(t, rawPrefix, blocktest.RandomBytes(t, 9000))
	long := blocktest.NewBlock(t, rawPrefix, blocktest.RandomBytes(t, 1000))
	children := map[string]block.Block{"short": short, "long": long}
	claims := map[string]uint64{"short": 10, "long": 50_000}
	dir := sizedDir(t, children, claims)
	n.put(t, dir, short, long)
	var log testLog
	top := filepath.Join(mount(t, n.ex, bsfs.Config{UnixFS: unixfsConfig(n), Logger: log.logger()}), dir.CID.String())

	if _, err := os.ReadDir(top); err != nil {
		t.Fatal(err)
	}
	for name, b := range children {
		path := filepath.Join(top, name)
		fi, err := os.Lstat(path)
		if err != nil || uint64(fi.Size()) != claims[name] {
			t.Fatalf("lstat %s before opening: %v, %v; want the claimed %d bytes", name, fi, err, claims[name])
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, b.Data) {
			t.Errorf("read %s: %d bytes, %v; want its block's %d bytes", name, len(got), err, len(b.Data))
		}
		fi, err = os.Lstat(path)
		if err != nil || fi.Size() != int64(len(b.Data)) {
			t.Errorf("lstat %s after reading: %v, %v; want %d bytes", name, fi, err, len(b.Data))
		}
		if !strings.Contains(log.buf.String(), b.CID.String()) {
			t.Errorf("no warning names %s (%s); log:\n%s", name, b.CID, log.buf.String())
		}
	}
}

// TestTsizeZeroFetches lists a directory whose links record no sizes, as
// DAGs built by hand may: the child is fetched for its size rather than
// shown empty.
func TestTsizeZeroFetches(t *testing.T) {
	n := newNode(t)
	f := blocktest.NewBlock(t, rawPrefix, []byte("no size recorded\n"))
	dir := dirBlock(t, 0, time.Time{}, map[string]cid.Cid{"f": f.CID})
	n.put(t, dir, f)
	top := filepath.Join(mount(t, n.ex, bsfs.Config{UnixFS: unixfsConfig(n)}), dir.CID.String())
	if _, err := os.ReadDir(top); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(top, "f"))
	if err != nil || fi.Size() != int64(len(f.Data)) {
		t.Fatalf("lstat f: %v, %v; want %d bytes", fi, err, len(f.Data))
	}
}
