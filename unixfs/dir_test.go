package unixfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	ufs "github.com/ipfs/boxo/ipld/unixfs"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/storetest"
	"github.com/bsfs/bsfs/internal/treetest"
)

// writeTree makes a small tree: files, a nested directory, an empty one,
// a symlink and a hidden file.
func writeTree(t *testing.T) string {
	t.Helper()
	return treetest.Tree{
		Files: map[string]string{
			"a.txt":         "alpha\n",
			"sub/b.txt":     "bravo\n",
			"sub/deep/c":    string(blocktest.SeededBytes(3*chunkSize+1, 9)),
			".hidden":       "secret\n",
			"sub/.git/HEAD": "ref\n",
		},
		Dirs:  []string{"empty"},
		Links: map[string]string{"link": "sub/b.txt"},
	}.Write(t)
}

func TestAddPathTree(t *testing.T) {
	bs := storetest.New(t)
	root := writeTree(t)
	var added []string
	c, err := AddPath(t.Context(), bs, root, AddOptions{Added: func(p string, c cid.Cid) {
		added = append(added, p)
	}})
	if err != nil {
		t.Fatal(err)
	}
	wantAdded := []string{"tree/a.txt", "tree/empty", "tree/link", "tree/sub/b.txt", "tree/sub/deep/c", "tree/sub/deep", "tree/sub", "tree"}
	if !slices.Equal(added, wantAdded) {
		t.Errorf("Added calls %q, want %q", added, wantAdded)
	}
	r := New(Local(bs), Config{})
	ents, err := r.ReadDir(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	if want := []string{"a.txt", "empty", "link", "sub"}; !slices.Equal(names, want) {
		t.Errorf("ReadDir = %q, want %q (hidden files left out)", names, want)
	}

	nd, err := r.Resolve(t.Context(), c, "sub/deep/c")
	if err != nil {
		t.Fatal(err)
	}
	if nd.Kind != KindFile || nd.Size != 3*chunkSize+1 {
		t.Errorf("sub/deep/c: %+v", nd)
	}
	f := openT(t, r, nd.CID)
	if got := readAll(t, f, 1<<20); !bytes.Equal(got, blocktest.SeededBytes(3*chunkSize+1, 9)) {
		t.Error("sub/deep/c reads back different")
	}
	link, err := r.Resolve(t.Context(), c, "/link")
	if err != nil {
		t.Fatal(err)
	}
	if link.Kind != KindSymlink || link.Target != "sub/b.txt" {
		t.Errorf("link: %+v", link)
	}
	if nd, err := r.Resolve(t.Context(), c, ""); err != nil || nd.Kind != KindDirectory || !nd.CID.Equals(c) {
		t.Errorf("Resolve of the root: %+v, %v", nd, err)
	}
	if ents, err := r.ReadDir(t.Context(), mustResolve(t, r, c, "empty")); err != nil || len(ents) != 0 {
		t.Errorf("empty: %v, %v", ents, err)
	}

	for _, tc := range []struct {
		path string
		want error
	}{
		{"nope", ErrNotFound},
		{"sub/nope", ErrNotFound},
		{".hidden", ErrNotFound},
		{"a.txt/x", ErrNotDir},
	} {
		if _, err := r.Resolve(t.Context(), c, tc.path); !errors.Is(err, tc.want) {
			t.Errorf("Resolve(%q): %v, want %v", tc.path, err, tc.want)
		}
	}
	if _, err := r.Open(t.Context(), c); !errors.Is(err, ErrNotFile) {
		t.Errorf("Open of a directory: %v, want ErrNotFile", err)
	}
	if _, err := r.ReadDir(t.Context(), mustResolve(t, r, c, "a.txt")); !errors.Is(err, ErrNotDir) {
		t.Errorf("ReadDir of a file: %v, want ErrNotDir", err)
	}

	// With Hidden, dot files are added too, and the root differs.
	c2, err := AddPath(t.Context(), bs, root, AddOptions{Hidden: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(t.Context(), c2, "sub/.git/HEAD"); err != nil || c2.Equals(c) {
		t.Errorf("with Hidden: %v (root %s, without %s)", err, c2, c)
	}
}

func mustResolve(t *testing.T, r *Reader, root cid.Cid, path string) cid.Cid {
	t.Helper()
	nd, err := r.Resolve(t.Context(), root, path)
	if err != nil {
		t.Fatal(err)
	}
	return nd.CID
}

func TestAddCancelled(t *testing.T) {
	bs := storetest.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := AddFile(ctx, bs, bytes.NewReader(blocktest.SeededBytes(3*chunkSize, 1)), AddOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("AddFile with a cancelled context: %v", err)
	}
	if _, err := AddPath(ctx, bs, writeTree(t), AddOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("AddPath with a cancelled context: %v", err)
	}
	if _, err := AddPath(t.Context(), bs, filepath.Join(t.TempDir(), "missing"), AddOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("AddPath of a missing path: %v", err)
	}
}

// hamtDir builds a HAMT-sharded directory of n small files with boxo.
func hamtDir(t *testing.T, bs BlockPutter, n, fanout int) (cid.Cid, map[string]cid.Cid) {
	t.Helper()
	ds := &dagService{dst: bs, ctx: t.Context()}
	d, err := uio.NewHAMTDirectory(ds, 0, uio.WithMaxHAMTFanout(fanout), uio.WithCidBuilder(cidBuilder()))
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string]cid.Cid, n)
	for i := range n {
		name := fmt.Sprintf("entry-%04d", i)
		leaf, err := merkledag.NewRawNodeWPrefix([]byte(name), cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1})
		if err != nil {
			t.Fatal(err)
		}
		if err := ds.Add(t.Context(), leaf); err != nil {
			t.Fatal(err)
		}
		if err := d.AddChild(t.Context(), name, leaf); err != nil {
			t.Fatal(err)
		}
		want[name] = leaf.Cid()
	}
	nd, err := d.GetNode()
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.Add(t.Context(), nd); err != nil {
		t.Fatal(err)
	}
	return nd.Cid(), want
}

func TestHAMT(t *testing.T) {
	bs := storetest.New(t)
	root, want := hamtDir(t, bs, 500, 16)
	p := &probe{g: Local(bs)}
	r := New(p, Config{Parallelism: 8})
	nd, err := r.Stat(t.Context(), root)
	if err != nil || nd.Kind != KindDirectory {
		t.Fatalf("Stat: %+v, %v", nd, err)
	}

	ents, err := r.ReadDir(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(want) {
		t.Fatalf("ReadDir: %d entries, want %d", len(ents), len(want))
	}
	for i, e := range ents {
		if !e.CID.Equals(want[e.Name]) {
			t.Errorf("entry %q: %s, want %s", e.Name, e.CID, want[e.Name])
		}
		if i > 0 && ents[i-1].Name >= e.Name {
			t.Errorf("entries not sorted: %q before %q", ents[i-1].Name, e.Name)
		}
	}
	_, batches, all := p.counts()
	shards := len(all) - 1 // the root came by GetBlock
	if shards < 17 {
		t.Fatalf("only %d sub-shards: the test needs a deeper HAMT", shards)
	}
	if batches >= shards {
		t.Errorf("%d GetBlocks calls for %d sub-shards, want them fetched in batches", batches, shards)
	}

	// Lookup fetches exactly the shards from the root to the entry.
	depth := shardDepths(t, bs, root)
	deepest := 0
	for name, c := range want {
		p := &probe{g: Local(bs)}
		e, err := New(p, Config{}).Lookup(t.Context(), root, name)
		if err != nil || !e.CID.Equals(c) || e.Name != name {
			t.Fatalf("Lookup(%q) = %+v, %v; want %s", name, e, err, c)
		}
		if single, _, all := p.counts(); len(all) != depth[name] || single != len(all) {
			t.Fatalf("Lookup(%q) fetched %d blocks (%d alone), want the %d shards on its path", name, len(all), single, depth[name])
		}
		deepest = max(deepest, depth[name])
	}
	if deepest < 3 {
		t.Errorf("deepest entry %d shards down: the test needs a deeper HAMT", deepest)
	}
	for _, name := range []string{"entry-9999", "", "entry-0001x"} {
		p := &probe{g: Local(bs)}
		if _, err := New(p, Config{}).Lookup(t.Context(), root, name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lookup(%q): %v, want ErrNotFound", name, err)
		}
		if _, _, all := p.counts(); len(all) > deepest {
			t.Errorf("Lookup(%q) fetched %d blocks", name, len(all))
		}
	}
	// Resolve goes through the shards too.
	if nd, err := New(Local(bs), Config{}).Resolve(t.Context(), root, "entry-0042"); err != nil || !nd.CID.Equals(want["entry-0042"]) {
		t.Errorf("Resolve: %+v, %v", nd, err)
	}
}

// shardDepths walks a whole HAMT and returns, for each entry, how many
// shards lead to it (the root included).
func shardDepths(t *testing.T, s Store, root cid.Cid) map[string]int {
	t.Helper()
	out := map[string]int{}
	var walk func(c cid.Cid, depth int)
	walk = func(c cid.Cid, depth int) {
		d, err := decode(mustGet(t, s, c))
		if err != nil || !d.isHAMT() {
			t.Fatalf("shard %s: %v", c, err)
		}
		pad := padLen(d.fanout)
		for _, l := range d.links {
			if len(l.name) == pad {
				walk(l.cid, depth+1)
			} else {
				out[l.name[pad:]] = depth
			}
		}
	}
	walk(root, 1)
	return out
}

func TestModeMtimeSymlinkOpaque(t *testing.T) {
	bs := storetest.New(t)
	put := func(prefix cid.Prefix, data []byte) cid.Cid {
		t.Helper()
		b, err := block.New(prefix, data)
		if err != nil {
			t.Fatal(err)
		}
		if err := bs.Put(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		return b.CID
	}
	dagpb := cidBuilder()
	mtime := time.Unix(1700000000, 123456789)

	fsn := ufs.NewFSNode(ufs.TFile)
	fsn.SetData([]byte("hello"))
	fsn.SetMode(0o640)
	fsn.SetModTime(mtime)
	data, err := fsn.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	file := put(dagpb, mustEncode(t, merkledag.NodeWithData(data)))

	dir := put(dagpb, mustEncode(t, merkledag.NodeWithData(ufs.FolderPBDataWithStat(0o750|fs.ModeDir, mtime))))
	sdata, err := ufs.SymlinkData("../target")
	if err != nil {
		t.Fatal(err)
	}
	link := put(dagpb, mustEncode(t, merkledag.NodeWithData(sdata)))
	cbor := put(cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}, []byte{0xa1, 0x61, 0x61, 0x01})
	notUnixFS := put(dagpb, mustEncode(t, merkledag.NodeWithData([]byte("not a UnixFS message"))))

	r := New(Local(bs), Config{})
	for _, tc := range []struct {
		c    cid.Cid
		want Node
	}{
		{file, Node{Kind: KindFile, Size: 5, Mode: 0o640, ModTime: mtime}},
		{dir, Node{Kind: KindDirectory, Mode: 0o750, ModTime: mtime}},
		{link, Node{Kind: KindSymlink, Size: 9, Target: "../target"}},
		{cbor, Node{Kind: KindOpaque, Size: 4}},
		{notUnixFS, Node{Kind: KindOpaque, Size: uint64(len(mustGet(t, bs, notUnixFS).Data))}},
	} {
		got, err := r.Stat(t.Context(), tc.c)
		if err != nil {
			t.Fatal(err)
		}
		tc.want.CID = tc.c
		if got.CID != tc.want.CID || got.Kind != tc.want.Kind || got.Size != tc.want.Size || got.Mode != tc.want.Mode ||
			!got.ModTime.Equal(tc.want.ModTime) || got.Target != tc.want.Target {
			t.Errorf("Stat(%s) = %+v, want %+v", tc.c, got, tc.want)
		}
	}
	for _, c := range []cid.Cid{cbor, notUnixFS, file} {
		f := openT(t, r, c)
		want := mustGet(t, bs, c).Data
		if c == file {
			want = []byte("hello")
		}
		if got := readAll(t, f, 3); !bytes.Equal(got, want) {
			t.Errorf("read %s: %q, want %q", c, got, want)
		}
	}
	if _, err := r.Open(t.Context(), link); !errors.Is(err, ErrNotFile) {
		t.Errorf("Open of a symlink: %v", err)
	}
}

func mustEncode(t *testing.T, n *merkledag.ProtoNode) []byte {
	t.Helper()
	data, err := n.EncodeProtobuf(false)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestStatMany(t *testing.T) {
	bs := storetest.New(t)
	var cids []cid.Cid
	for i := range 40 {
		c, err := AddFile(t.Context(), bs, bytes.NewReader(fmt.Appendf(nil, "file %d", i)), AddOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cids = append(cids, c)
	}
	absent, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum([]byte("absent"))
	if err != nil {
		t.Fatal(err)
	}
	cids[17] = absent
	p := &probe{g: Local(bs)}
	nodes, errs := New(p, Config{Parallelism: 8}).StatMany(t.Context(), cids)
	for i := range cids {
		if i == 17 {
			if !errors.Is(errs[i], block.ErrNotFound) {
				t.Errorf("absent block: %v, want block.ErrNotFound", errs[i])
			}
			continue
		}
		if errs[i] != nil || nodes[i].Kind != KindFile || nodes[i].Size != uint64(len(fmt.Sprintf("file %d", i))) {
			t.Errorf("StatMany[%d] = %+v, %v", i, nodes[i], errs[i])
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// The absent block's GetBlocks call says why it left it out: it is
	// not asked again.
	if len(p.getBlock) != 0 || len(p.getBlocks) != 20 {
		t.Errorf("GetBlock calls %v and %d GetBlocks calls, want none and 20 (batches of 2)", p.getBlock, len(p.getBlocks))
	}
	for _, b := range p.getBlocks {
		if len(b) > 2 {
			t.Errorf("a GetBlocks call of %d blocks, want at most 2", len(b))
		}
	}
	// Up to Parallelism blocks go in one call.
	p.getBlocks = nil
	p.mu.Unlock()
	New(p, Config{Parallelism: 8}).StatMany(t.Context(), cids[:8])
	p.mu.Lock()
	if len(p.getBlocks) != 1 {
		t.Errorf("%d GetBlocks calls for 8 blocks, want 1", len(p.getBlocks))
	}
}
