package blockstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	flatfs "github.com/ipfs/go-ds-flatfs"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/storetest"
)

// The suite passes with every write going through flatfs, as on a system
// without unnamed files.
func TestSuiteFlatfsWrites(t *testing.T) {
	for name, cfg := range map[string]blockstore.Config{"Default": {}, "NoSync": {NoSync: true}} {
		t.Run(name, func(t *testing.T) {
			open := seeded(cfg)
			storetest.Run(t, func(t *testing.T, seed ...block.Block) storetest.Target {
				tg := open(t, seed...)
				blockstore.WriteThroughFlatfs(tg.Disk)
				return tg
			})
		})
	}
}

// storeFiles returns the files under dir, but for flatfs's temporary
// directory and disk usage record, as path -> mode and contents.
func storeFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == ".temp" {
			return filepath.SkipDir
		}
		if rel == flatfs.DiskUsageFile {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[rel] = info.Mode().String()
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out[rel] = info.Mode().String() + " " + string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// diskUsage returns the disk usage flatfs records in dir.
func diskUsage(t *testing.T, dir string) int64 {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, flatfs.DiskUsageFile))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		DiskUsage int64 `json:"diskUsage"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	return rec.DiskUsage
}

// A store written by flatfs alone, as Kubo writes its blocks, and one
// written by the Blockstore hold the same files, with the same modes, and
// record the same disk usage.
func TestSameFilesAsFlatfs(t *testing.T) {
	ctx := context.Background()
	blks := storetest.Blocks(t, 40)
	for name, cfg := range map[string]blockstore.Config{"Default": {}, "NoSync": {NoSync: true}} {
		t.Run(name, func(t *testing.T) {
			kubo := filepath.Join(t.TempDir(), "blocks")
			d, err := flatfs.CreateOrOpen(kubo, flatfs.NextToLast(2), !cfg.NoSync)
			if err != nil {
				t.Fatal(err)
			}
			for _, blk := range blks {
				if _, ok := block.Inline(blk.CID); ok {
					continue
				}
				if err := d.Put(ctx, ds.RawKey("/"+blockstore.Key(blk.CID.Hash())), blk.Data); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}

			ours := filepath.Join(t.TempDir(), "blocks")
			b, err := blockstore.Open(ours, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, blk := range blks[:20] {
				if err := b.Put(ctx, blk); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.PutMany(ctx, blks[20:]); err != nil {
				t.Fatal(err)
			}
			if blockstore.WroteThroughFlatfs(b) {
				t.Fatal("the blocks were written through flatfs")
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}

			want, got := storeFiles(t, kubo), storeFiles(t, ours)
			if !maps.Equal(got, want) {
				t.Errorf("files differ:\nflatfs %v\nbsfs   %v", slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)))
				for k, v := range want {
					if got[k] != v {
						t.Errorf("%s: flatfs %.20q, bsfs %.20q", k, v, got[k])
					}
				}
			}
			if w, g := diskUsage(t, kubo), diskUsage(t, ours); w != g {
				t.Errorf("recorded disk usage %d, flatfs records %d", g, w)
			}
		})
	}
}

// A shard directory removed behind the store's back is made again by the
// next write into it.
func TestShardRemoved(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := storetest.Open(t, dir, blockstore.Config{})
	blk := storetest.Blocks(t, 4)[3]
	if err := b.Put(ctx, blk); err != nil {
		t.Fatal(err)
	}
	shard := filepath.Dir(blockPath(dir, blk.CID))
	if err := os.RemoveAll(shard); err != nil {
		t.Fatal(err)
	}
	storetest.MustMiss(t, b, blk.CID)
	if err := b.Put(ctx, blk); err != nil {
		t.Fatalf("Put into a removed shard directory: %v", err)
	}
	storetest.MustGet(t, b, blk.CID, blk.Data)
	if err := os.RemoveAll(shard); err != nil {
		t.Fatal(err)
	}
	if err := b.PutMany(ctx, []block.Block{blk}); err != nil {
		t.Fatalf("PutMany into a removed shard directory: %v", err)
	}
	storetest.MustGet(t, b, blk.CID, blk.Data)
}

// A reader walking the shard directories while blocks are written sees
// only whole block files, and no other file.
func TestNoPartialFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := storetest.Open(t, dir, blockstore.Config{NoSync: true})
	var blks []block.Block
	for i := range 64 {
		data := bytes.Repeat([]byte{byte(i)}, 256<<10)
		data[0] = byte(i >> 8)
		blks = append(blks, blocktest.NewBlock(t, blocktest.RawV1(), data))
	}
	files := make(map[string]cid.Cid, len(blks)) // the file name of each block
	for _, blk := range blks {
		files[filepath.Base(blockPath(dir, blk.CID))] = blk.CID
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i, blk := range blks {
			var err error
			if i%2 == 0 {
				err = b.Put(ctx, blk)
			} else {
				err = b.PutMany(ctx, []block.Block{blk})
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	})
	seen := make(map[string]bool)
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		shards, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range shards {
			if !s.IsDir() || strings.HasPrefix(s.Name(), ".") {
				continue
			}
			names, err := os.ReadDir(filepath.Join(dir, s.Name()))
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				c, ok := files[n.Name()]
				if !ok {
					t.Fatalf("shard %s holds %s, not a block file", s.Name(), n.Name())
				}
				data, err := os.ReadFile(filepath.Join(dir, s.Name(), n.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := block.Verified(c, data); err != nil {
					t.Fatalf("%s read while written: %v", n.Name(), err)
				}
				seen[n.Name()] = true
			}
		}
	}
	wg.Wait()
	if blockstore.WroteThroughFlatfs(b) {
		t.Fatal("the blocks were written through flatfs")
	}
	if len(seen) != len(blks) {
		t.Errorf("saw %d block files, want %d", len(seen), len(blks))
	}
}

// Concurrent Puts of one new block all succeed and store it once.
func TestConcurrentCreate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := storetest.Open(t, dir, blockstore.Config{NoSync: true})
	blk := storetest.Blocks(t, 4)[3]
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := b.Put(ctx, blk); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	storetest.MustGet(t, b, blk.CID, blk.Data)
	if got := storetest.AllKeys(t, b); !slices.Equal(got, storetest.Hashes(blk)) {
		t.Errorf("store lists %v", got)
	}
}

// openFiles counts the process's open file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Once a block is written the store makes unnamed files ahead; a write
// that takes one stores its block like any other, and Close closes those
// left, leaving no file behind.
func TestSpareFiles(t *testing.T) {
	ctx := context.Background()
	before := openFiles(t)
	dir := filepath.Join(t.TempDir(), "blocks")
	b, err := blockstore.Open(dir, blockstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if n := blockstore.SpareFiles(b); n != 0 {
		t.Fatalf("%d spare files made before any write", n)
	}
	var blks []block.Block
	for range 3 {
		blk := blocktest.NewBlock(t, blocktest.RawV1(), blocktest.RandomBytes(t, 1024))
		blks = append(blks, blk)
		if err := b.Put(ctx, blk); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 10*time.Second, "spare files made", func() bool { return blockstore.SpareFiles(b) == blockstore.SpareFileCount })
	}
	if blockstore.WroteThroughFlatfs(b) {
		t.Fatal("the blocks were written through flatfs")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if after := openFiles(t); after != before {
		t.Errorf("%d files open after Close, %d before Open", after, before)
	}
	files := storeFiles(t, dir)
	for _, blk := range blks {
		rel, _ := filepath.Rel(dir, blockPath(dir, blk.CID))
		if got := files[rel]; !strings.HasSuffix(got, " "+string(blk.Data)) {
			t.Errorf("block %s: file holds %.20q", blk.CID, got)
		}
	}
	regular := 0
	for name, mode := range files {
		if !strings.HasPrefix(mode, "d") && name != "SHARDING" && name != "_README" {
			regular++
		}
	}
	if regular != len(blks) {
		t.Errorf("%d files in the store, want the %d blocks': %v", regular, len(blks), slices.Sorted(maps.Keys(files)))
	}
}

// Expect makes the shard directories of the blocks expected, without a
// write; a read-only or closed store ignores it.
func TestExpect(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blocks")
	b := storetest.Open(t, dir, blockstore.Config{NoSync: true})
	blk := blocktest.NewBlock(t, blocktest.RawV1(), blocktest.RandomBytes(t, 1024))
	shard := filepath.Dir(blockPath(dir, blk.CID))
	if _, err := os.Stat(shard); !os.IsNotExist(err) {
		t.Fatalf("shard directory before Expect: %v", err)
	}
	ro, err := blockstore.Open(dir, blockstore.Config{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	ro.Expect([]cid.Cid{blk.CID})
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	b.Expect([]cid.Cid{blk.CID})
	poll.Until(t, 10*time.Second, "shard directory made", func() bool {
		st, err := os.Stat(shard)
		return err == nil && st.IsDir()
	})
	storetest.MustMiss(t, b, blk.CID)
	if err := b.Put(context.Background(), blk); err != nil {
		t.Fatal(err)
	}
	storetest.MustGet(t, b, blk.CID, blk.Data)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b.Expect([]cid.Cid{blk.CID})
}
