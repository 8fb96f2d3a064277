package cache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/storetest"
	"github.com/bsfs/bsfs/unixfs"
)

func open(t testing.TB, dir string, st Store, quota int64) *Cache {
	t.Helper()
	c, err := Open(t.Context(), dir, st, Config{Quota: quota})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawBlocks makes n raw blocks of size bytes.
func rawBlocks(t testing.TB, n, size int, seed uint64) []block.Block {
	t.Helper()
	out := make([]block.Block, n)
	for i := range out {
		b, err := block.New(cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}, blocktest.SeededBytes(size, seed+uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// stored lists which of blks st has, as their indexes.
func stored(t testing.TB, st Store, blks []block.Block) []int {
	t.Helper()
	var out []int
	for i, b := range blks {
		has, err := st.Has(t.Context(), b.CID)
		if err != nil {
			t.Fatal(err)
		}
		if has {
			out = append(out, i)
		}
	}
	return out
}

// storeBytes adds up the sizes of every block in st, some of which may
// be evicted meanwhile.
func storeBytes(t testing.TB, st Store) int64 {
	t.Helper()
	keys, err := st.AllKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for h := range keys {
		n, err := st.GetSize(t.Context(), keyCID(h))
		if errors.Is(err, block.ErrNotFound) {
			continue // evicted meanwhile
		}
		if err != nil {
			t.Fatal(err)
		}
		total += int64(n)
	}
	return total
}

// order is c's eviction order as indexes into blks.
func order(c *Cache, blks []block.Block) []int {
	var out []int
	for _, h := range c.Order() {
		out = append(out, slices.IndexFunc(blks, func(b block.Block) bool { return bytes.Equal(b.CID.Hash(), h) }))
	}
	return out
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	ctx := t.Context()
	bs := storetest.New(t)
	blks := rawBlocks(t, 5, 1000, 1)
	c := open(t, t.TempDir(), bs, 3000)
	for _, b := range blks[:3] {
		if err := c.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// A read makes 0 the most recent: 1 is now the oldest.
	if _, err := c.Get(ctx, blks[0].CID); err != nil {
		t.Fatal(err)
	}
	if got := order(c, blks); !slices.Equal(got, []int{1, 2, 0}) {
		t.Fatalf("order %v, want [1 2 0]", got)
	}
	if err := c.Put(ctx, blks[3]); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, bs, blks); !slices.Equal(got, []int{0, 2, 3}) {
		t.Fatalf("stored %v after a fourth block, want [0 2 3] (1 evicted)", got)
	}
	// A held block is skipped: 2 is the oldest but held, so 0 goes.
	release := c.Hold(blks[2].CID)
	if err := c.Put(ctx, blks[4]); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, bs, blks); !slices.Equal(got, []int{2, 3, 4}) {
		t.Fatalf("stored %v, want [2 3 4] (0 evicted, 2 held)", got)
	}
	release()
	release() // a second call does nothing
	u := c.Usage()
	if u.Used != 3000 || u.Blocks != 3 || u.Held != 0 || u.Quota != 3000 {
		t.Fatalf("usage %+v, want 3000 bytes in 3 blocks, none held", u)
	}
}

func TestHoldsMayExceedTheQuota(t *testing.T) {
	ctx := t.Context()
	bs := storetest.New(t)
	blks := rawBlocks(t, 6, 1000, 2)
	c := open(t, t.TempDir(), bs, 2000)
	release := c.Hold(cidsOf(blks[:4])...)
	for _, b := range blks[:4] {
		if err := c.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if got := stored(t, bs, blks); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("stored %v, want the 4 held blocks", got)
	}
	release()
	if err := c.Put(ctx, blks[4]); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, bs, blks); !slices.Equal(got, []int{3, 4}) {
		t.Fatalf("stored %v once released, want the 2 newest", got)
	}
}

func cidsOf(blks []block.Block) []cid.Cid {
	out := make([]cid.Cid, len(blks))
	for i, b := range blks {
		out[i] = b.CID
	}
	return out
}

// addFile adds data as UnixFS (raw leaves of chunk bytes) to st.
func addFile(t testing.TB, st unixfs.BlockPutter, data []byte) cid.Cid {
	t.Helper()
	root, err := unixfs.AddFile(t.Context(), st, bytes.NewReader(data), unixfs.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// dagKeys lists the blocks of root's DAG in st.
func dagKeys(t testing.TB, c *Cache, root cid.Cid) []string {
	t.Helper()
	keys, err := c.walk(t.Context(), root, nil, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for k := range keys {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestPinsAreNeverEvictedAndGCKeepsThem(t *testing.T) {
	ctx := t.Context()
	bs := storetest.New(t)
	dir := t.TempDir()
	c := open(t, dir, bs, 3000)
	// A 1.2 MiB file: 5 leaves and a root.
	data := blocktest.SeededBytes(1200<<10, 3)
	root := addFile(t, bs, data)
	if err := c.Pin(ctx, root, nil); err != nil {
		t.Fatal(err)
	}
	keys := dagKeys(t, c, root)
	if len(keys) != 6 {
		t.Fatalf("the DAG has %d blocks, want 6", len(keys))
	}
	// Fetched blocks far beyond the quota evict each other, not the pin.
	blks := rawBlocks(t, 10, 1000, 4)
	for _, b := range blks {
		if err := c.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if got := stored(t, bs, blks); !slices.Equal(got, []int{7, 8, 9}) {
		t.Fatalf("stored %v, want the 3 newest fetched blocks", got)
	}
	checkFile(t, bs, root, data)

	// A block stored outside the cache, and a held one.
	loose, held := rawBlocks(t, 1, 10, 5)[0], blks[9]
	if err := bs.Put(ctx, loose); err != nil {
		t.Fatal(err)
	}
	release := c.Hold(held.CID)
	res, err := c.GC(ctx)
	release()
	if err != nil {
		t.Fatal(err)
	}
	if res.Blocks != 3 || res.Bytes != 2010 {
		t.Fatalf("GC removed %+v, want 3 blocks of 2010 bytes", res)
	}
	if got := stored(t, bs, append(blks, loose)); !slices.Equal(got, []int{9}) {
		t.Fatalf("after GC stored %v, want only the held block 9", got)
	}
	checkFile(t, bs, root, data)

	// Unpinned, the file is evictable: it counts against the quota and
	// goes, oldest first, as new blocks come.
	if err := c.Unpin(ctx, root); err != nil {
		t.Fatal(err)
	}
	if err := c.Unpin(ctx, root); !errors.Is(err, ErrNotPinned) {
		t.Fatalf("second unpin: %v, want ErrNotPinned", err)
	}
	var left int64
	for _, k := range keys {
		if n, err := bs.GetSize(ctx, keyCID(mh.Multihash(k))); err == nil {
			left += int64(n)
		}
	}
	if left > 3000 {
		t.Fatalf("%d bytes of the unpinned file, over the quota, are still stored", left)
	}
	if len(c.Pins()) != 0 || c.Usage().Used > 3000 {
		t.Fatalf("pins %v, usage %+v", c.Pins(), c.Usage())
	}
}

// checkFile reads root back from st.
func checkFile(t testing.TB, st unixfs.Store, root cid.Cid, want []byte) {
	t.Helper()
	f, err := unixfs.New(unixfs.Local(st), unixfs.Config{}).Open(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, len(want)+1)
	n, _ := f.ReadAt(t.Context(), got, 0)
	if !bytes.Equal(got[:n], want) {
		t.Fatalf("read %d bytes of %s, want the %d written", n, root, len(want))
	}
}

func TestPinFetchesTheDAGAndFailsOnMissingBlocks(t *testing.T) {
	ctx := t.Context()
	src, bs := storetest.New(t), storetest.New(t)
	data := blocktest.SeededBytes(700<<10, 6)
	root := addFile(t, src, data)
	c := open(t, t.TempDir(), bs, 1000) // smaller than one leaf
	if err := c.Pin(ctx, root, nil); !errors.Is(err, block.ErrNotFound) {
		t.Fatalf("pin of an absent DAG without a getter: %v, want ErrNotFound", err)
	}
	// Fetched through a getter that stores through the cache, as the
	// exchange does: the quota does not evict what is being pinned.
	if err := c.Pin(ctx, root, fetcher{src: src, dst: c}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, bs, root, data)
	if got := c.Pins(); len(got) != 1 || !got[0].Equals(root) {
		t.Fatalf("pins %v", got)
	}
	if u := c.Usage(); u.Used != 0 || u.Pinned != 4 {
		t.Fatalf("usage %+v, want 4 pinned blocks and nothing evictable", u)
	}
	// A DAG missing a leaf is not pinned.
	other := addFile(t, src, blocktest.SeededBytes(600<<10, 7))
	keys := dagKeys(t, &Cache{st: src}, other)
	for _, k := range keys {
		if k != keyOf(other) {
			if err := src.Delete(ctx, keyCID(mh.Multihash(k))); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if err := c.Pin(ctx, other, fetcher{src: src, dst: c}); !errors.Is(err, block.ErrNotFound) {
		t.Fatalf("pin of an incomplete DAG: %v, want ErrNotFound", err)
	}
	if len(c.Pins()) != 1 {
		t.Fatalf("pins %v after a failed pin", c.Pins())
	}
}

// fetcher "fetches" from src and stores into dst, as the exchange does.
type fetcher struct {
	src *blockstore.Blockstore
	dst *Cache
}

func (f fetcher) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	var blks []block.Block
	var missing error
	for _, k := range cids {
		b, err := f.src.Get(ctx, k)
		if err != nil {
			missing = err
			continue
		}
		if err := f.dst.Put(ctx, b); err != nil {
			return nil, err
		}
		blks = append(blks, b)
	}
	st := block.NewStream()
	go func() {
		for _, b := range blks {
			st.Send(b, ctx.Done())
		}
		st.Close(missing)
	}()
	return st, nil
}

func TestRestartKeepsPinsAndRecency(t *testing.T) {
	ctx := t.Context()
	bs := storetest.New(t)
	dir := t.TempDir()
	c, err := Open(ctx, dir, bs, Config{Quota: 5000})
	if err != nil {
		t.Fatal(err)
	}
	data := blocktest.SeededBytes(300<<10, 8)
	root := addFile(t, bs, data)
	if err := c.Pin(ctx, root, nil); err != nil {
		t.Fatal(err)
	}
	blks := rawBlocks(t, 6, 1000, 9)
	for _, b := range blks {
		if err := c.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range []int{3, 1} {
		if _, err := c.Get(ctx, blks[i].CID); err != nil {
			t.Fatal(err)
		}
	}
	want := order(c, blks)
	if !slices.Equal(want, []int{2, 4, 5, 3, 1}) {
		t.Fatalf("order %v, want [2 4 5 3 1]", want)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash cut the last record short: it is ignored.
	f, err := os.OpenFile(filepath.Join(dir, recencyFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("u AAAA")
	f.Close()

	c = open(t, dir, bs, 5000)
	if got := order(c, blks); !slices.Equal(got, want) {
		t.Fatalf("order after a restart %v, want %v", got, want)
	}
	if got := c.Pins(); len(got) != 1 || !got[0].Equals(root) || !c.Pinned(root) {
		t.Fatalf("pins after a restart %v", got)
	}
	if u := c.Usage(); u.Used != 5000 || u.Pinned != 3 {
		t.Fatalf("usage after a restart %+v, want 5000 bytes and 3 pinned blocks", u)
	}
	// The order goes on from where it was: 2 is evicted first.
	if err := c.Put(ctx, rawBlocks(t, 1, 1000, 20)[0]); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, bs, blks); !slices.Equal(got, []int{1, 3, 4, 5}) {
		t.Fatalf("stored %v, want 2 evicted", got)
	}
}

func TestRecencyLogIsCompacted(t *testing.T) {
	ctx := t.Context()
	bs := storetest.New(t)
	dir := t.TempDir()
	c := open(t, dir, bs, 3000)
	blks := rawBlocks(t, 4, 1000, 30)
	for _, b := range blks {
		if err := c.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// Many reads of one block: records, not entries.
	for range 3 * compactSlack {
		if _, err := c.Get(ctx, blks[1].CID); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = open(t, dir, bs, 3000)
	if got := order(c, blks); !slices.Equal(got, []int{2, 3, 1}) {
		t.Fatalf("order %v, want [2 3 1]", got)
	}
	fi, err := os.Stat(filepath.Join(dir, recencyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 1000 {
		t.Fatalf("the log of 3 entries is %d bytes after reopening: not compacted", fi.Size())
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"": 0, "none": -1, "1024": 1024, "10GiB": 10 << 30, "512M": 512 << 20, "2 MiB": 2 << 20, "1GB": 1e9, "3K": 3072, "7B": 7,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "ten", "1.5GiB", "0", "99999999999TiB", "10 XB"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

// The empty block takes no room and needs no fetching: putting it adds
// nothing to evict, and a DAG holding an empty file pins though no store
// or peer holds the empty block.
func TestEmptyBlockIsNeverStoredOrFetched(t *testing.T) {
	ctx := t.Context()
	src, bs := storetest.New(t), storetest.New(t)
	empty, err := block.New(cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := open(t, t.TempDir(), bs, 1<<20)
	if err := c.Put(ctx, empty); err != nil {
		t.Fatal(err)
	}
	if got := c.Order(); len(got) != 0 {
		t.Fatalf("eviction order after putting the empty block: %v, want nothing", got)
	}

	dir := filepath.Join(t.TempDir(), "tree")
	if err := os.MkdirAll(filepath.Join(dir, "pkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"pkg/__init__.py": "", "pkg/mod.py": "x = 1\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root, err := unixfs.AddPath(ctx, src, dir, unixfs.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := src.AllKeys(ctx); err != nil {
		t.Fatal(err)
	} else {
		for h := range keys {
			if bytes.Equal(h, empty.CID.Hash()) {
				t.Fatal("the empty block was stored")
			}
		}
	}
	if err := c.Pin(ctx, root, fetcher{src: src, dst: c}); err != nil {
		t.Fatalf("pin of a tree holding an empty file: %v", err)
	}
	if u := c.Usage(); u.Pinned != 3 {
		t.Fatalf("usage %+v, want 3 pinned blocks (the two directories and mod.py, nothing for the empty file)", u)
	}
}
