package blockstore_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/storetest"
)

// seeded returns an opener whose stores hold their seed, written with a
// writable store and reopened with cfg.
func seeded(cfg blockstore.Config) storetest.Opener {
	return func(t *testing.T, seed ...block.Block) storetest.Target {
		b := storetest.Seeded(t, filepath.Join(t.TempDir(), "blocks"), cfg, seed...)
		return storetest.Target{Store: b, Disk: b, ReadOnly: cfg.ReadOnly}
	}
}

func TestSuite(t *testing.T) {
	t.Run("Default", func(t *testing.T) { storetest.Run(t, seeded(blockstore.Config{})) })
	t.Run("NoSync", func(t *testing.T) { storetest.Run(t, seeded(blockstore.Config{NoSync: true})) })
	t.Run("ReadOnly", func(t *testing.T) { storetest.Run(t, seeded(blockstore.Config{ReadOnly: true})) })
	t.Run("ShardsAhead", func(t *testing.T) { storetest.Run(t, seeded(blockstore.Config{ShardsAhead: true})) })
}

// TestShardsAhead: a store created with ShardsAhead has every shard
// directory before its first block, and blocks land in them: storing
// makes no new directory.
func TestShardsAhead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blocks")
	b, err := blockstore.Open(dir, blockstore.Config{NoSync: true, ShardsAhead: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	shards := func() []string {
		t.Helper()
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			if e.IsDir() && len(e.Name()) == 2 {
				names = append(names, e.Name())
			}
		}
		return names
	}
	before := shards()
	if len(before) != 1024 {
		t.Fatalf("%d shard directories after creation, want 1024", len(before))
	}
	for _, blk := range storetest.Blocks(t, 300) {
		if err := b.Put(context.Background(), blk); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(blockPath(dir, blk.CID)); err != nil {
			t.Fatalf("block %s: %v", blk.CID, err)
		}
	}
	if after := shards(); !slices.Equal(after, before) {
		t.Fatalf("storing made shard directories: %d before, %d after", len(before), len(after))
	}
}

// blockPath is where the store in dir keeps the block c names.
func blockPath(dir string, c cid.Cid) string {
	k := blockstore.Key(c.Hash())
	return filepath.Join(dir, k[len(k)-3:len(k)-1], k+".data")
}

func TestCorruptionDetected(t *testing.T) {
	ctx := context.Background()
	good := storetest.Blocks(t, 4)[3] // some hundred bytes
	corruptions := map[string]func([]byte) []byte{
		"FlipBit":  storetest.Flip,
		"Truncate": func(b []byte) []byte { return b[:len(b)-1] },
		"Empty":    func([]byte) []byte { return nil },
		"Append":   func(b []byte) []byte { return append(bytes.Clone(b), 0) },
	}
	for name, corrupt := range corruptions {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			b := storetest.Open(t, dir, blockstore.Config{NoSync: true})
			if err := b.Put(ctx, good); err != nil {
				t.Fatal(err)
			}
			path := blockPath(dir, good.CID)
			bad := corrupt(good.Data)
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, c := range []cid.Cid{good.CID, cid.NewCidV0(good.CID.Hash())} {
				got, err := b.Get(ctx, c)
				if !errors.Is(err, block.ErrHashMismatch) {
					t.Fatalf("Get of corrupt block = %v; want ErrHashMismatch", err)
				}
				if got.Data != nil || got.CID.Defined() {
					t.Fatalf("Get of corrupt block returned a block: %d bytes", len(got.Data))
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error does not name the corrupt file: %v", err)
				}
			}
			if s := b.Stats(); s.HashMismatches != 2 {
				t.Fatalf("HashMismatches = %d; want 2", s.HashMismatches)
			}

			// A read-only view of the same directory detects it too, and
			// NoVerify returns the stored bytes as they are.
			ro := storetest.Open(t, dir, blockstore.Config{ReadOnly: true})
			if _, err := ro.Get(ctx, good.CID); !errors.Is(err, block.ErrHashMismatch) {
				t.Fatalf("read-only Get of corrupt block = %v", err)
			}
			nv := storetest.Open(t, dir, blockstore.Config{ReadOnly: true, NoVerify: true})
			if got, err := nv.Get(ctx, good.CID); err != nil || !bytes.Equal(got.Data, bad) {
				t.Fatalf("NoVerify Get = %q, %v; want the stored bytes", got.Data, err)
			}

			// Putting the good block again repairs the store.
			if err := b.Put(ctx, good); err != nil {
				t.Fatal(err)
			}
			storetest.MustGet(t, b, good.CID, good.Data)
		})
	}
}

func TestOversizedFileNotRead(t *testing.T) {
	dir := t.TempDir()
	b := storetest.Open(t, dir, blockstore.Config{NoSync: true})
	blk := blocktest.NewBlock(t, blocktest.RawV1(), []byte("small"))
	if err := b.Put(context.Background(), blk); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(blockPath(dir, blk.CID), block.MaxSize+1); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(context.Background(), blk.CID); !errors.Is(err, block.ErrTooLarge) || got.Data != nil {
		t.Fatalf("Get of an oversized file = %d bytes, %v; want ErrTooLarge", len(got.Data), err)
	}
}

// The empty UnixFS directory, as Kubo stores it in every repository.
const (
	emptyDirCID  = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
	emptyDirData = "\x0a\x02\x08\x01"
	emptyDirPath = "X3/CIQFTFEEHEDF6KLBT32BFAGLXEZL4UWFNWM4LFTLMXQBCERZ6CMLX3Y.data"
)

func TestKuboLayout(t *testing.T) {
	ctx := context.Background()
	c := cid.MustParse(emptyDirCID)

	t.Run("Put", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "blocks")
		b := storetest.Open(t, dir, blockstore.Config{})
		if err := b.Put(ctx, block.Block{CID: c, Data: []byte(emptyDirData)}); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(emptyDirPath)))
		if err != nil {
			t.Fatalf("block not at Kubo's path: %v", err)
		}
		if string(got) != emptyDirData {
			t.Fatalf("file holds %q", got)
		}
		sharding, err := os.ReadFile(filepath.Join(dir, "SHARDING"))
		if err != nil || string(sharding) != "/repo/flatfs/shard/v1/next-to-last/2\n" {
			t.Fatalf("SHARDING = %q, %v", sharding, err)
		}
	})

	t.Run("Read", func(t *testing.T) {
		// A blocks/ directory as Kubo leaves it, built by hand.
		dir := t.TempDir()
		mustWrite(t, filepath.Join(dir, "SHARDING"), "/repo/flatfs/shard/v1/next-to-last/2\n")
		mustWrite(t, filepath.Join(dir, "_README"), "kubo's readme")
		mustWrite(t, filepath.Join(dir, "diskUsage.cache"), `{"diskUsage":4,"accuracy":"initial-exact"}`)
		mustWrite(t, filepath.Join(dir, filepath.FromSlash(emptyDirPath)), emptyDirData)
		for _, cfg := range []blockstore.Config{{ReadOnly: true}, {}} {
			b := storetest.Open(t, dir, cfg)
			storetest.MustGet(t, b, c, []byte(emptyDirData))
			storetest.MustGet(t, b, cid.NewCidV1(cid.DagProtobuf, c.Hash()), []byte(emptyDirData))
			if got := storetest.AllKeys(t, b); !slices.Equal(got, []string{c.Hash().B58String()}) {
				t.Fatalf("AllKeys = %v", got)
			}
		}
	})
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLayoutRefused(t *testing.T) {
	cases := map[string]map[string]string{
		"OtherShard":    {"SHARDING": "/repo/flatfs/shard/v1/prefix/2\n"},
		"OtherLength":   {"SHARDING": "/repo/flatfs/shard/v1/next-to-last/3\n"},
		"Garbage":       {"SHARDING": "hello\n"},
		"NoSharding":    {"some-file": "x"},
		"NoShardingDir": {"AB/CIQAAAAB.data": "x"},
		"EmptySharding": {"SHARDING": ""},
		// Stores with blocks and a write in flight: flatfs's Open would
		// empty .temp and write a disk usage file; a refusal does neither.
		"NoShardingStore": {"AB/CIQAAAAB.data": "x", ".temp/temp-1": "half a blo", "diskUsage.cache": "{}"},
		"OtherShardStore": {"SHARDING": "/repo/flatfs/shard/v1/suffix/2\n", "AB/CIQAAAAB.data": "x", ".temp/temp-1": "half"},
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			for _, cfg := range []blockstore.Config{{}, {ReadOnly: true}} {
				dir := t.TempDir()
				for p, data := range files {
					mustWrite(t, filepath.Join(dir, p), data)
				}
				before := snapshot(t, dir)
				b, err := blockstore.Open(dir, cfg)
				if err == nil {
					b.Close()
					t.Fatalf("Open(%+v) accepted the directory", cfg)
				}
				if !errors.Is(err, blockstore.ErrLayout) {
					t.Fatalf("Open(%+v) = %v; want ErrLayout", cfg, err)
				}
				if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "SHARDING") {
					t.Errorf("Open(%+v) = %q; want it to name %s and its SHARDING file", cfg, err, dir)
				}
				if after := snapshot(t, dir); !slices.Equal(before, after) {
					t.Fatalf("Open changed the directory:\nbefore %v\nafter  %v", before, after)
				}
			}
		})
	}
}

func TestReadOnlyMissingOrEmpty(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nothing")
	if _, err := blockstore.Open(missing, blockstore.Config{ReadOnly: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read-only Open of a missing dir = %v; want ErrNotExist", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("read-only Open created the directory")
	}
	empty := t.TempDir()
	if _, err := blockstore.Open(empty, blockstore.Config{ReadOnly: true}); !errors.Is(err, blockstore.ErrLayout) {
		t.Fatalf("read-only Open of an empty dir = %v; want ErrLayout", err)
	}
	if got := snapshot(t, empty); len(got) != 1 { // the directory itself
		t.Fatalf("read-only Open wrote %v", got)
	}
}

// A read-only store must leave a directory another process writes to
// exactly as it is: flatfs's own Open would delete its .temp directory.
func TestReadOnlyWritesNothing(t *testing.T) {
	dir := t.TempDir()
	blks := storetest.Blocks(t, 3)
	w, err := blockstore.Open(dir, blockstore.Config{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.PutMany(context.Background(), blks); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	inFlight := filepath.Join(dir, ".temp", "temp-in-flight")
	mustWrite(t, inFlight, "half a blo")
	before := snapshot(t, dir)

	r := storetest.Open(t, dir, blockstore.Config{ReadOnly: true})
	for _, blk := range blks {
		storetest.MustGet(t, r, blk.CID, blk.Data)
	}
	storetest.AllKeys(t, r)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, dir); !slices.Equal(before, after) {
		t.Fatalf("read-only store changed the directory:\nbefore %v\nafter  %v", before, after)
	}
}

// A crash mid-write leaves at most a temporary file, never a block file:
// it is not listed, not read as a block, and cleared on the next Open.
func TestCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	blk := blocktest.NewBlock(t, blocktest.RawV1(), []byte("the block being written at the crash"))
	b, err := blockstore.Open(dir, blockstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// What doPut and a batch leave behind when the process dies before
	// the rename.
	mustWrite(t, filepath.Join(dir, ".temp", "temp-12345"), string(blk.Data[:10]))
	mustWrite(t, filepath.Join(dir, ".temp", "batch-1-2", blockstore.Key(blk.CID.Hash())+".data"), string(blk.Data[:10]))

	b = storetest.Open(t, dir, blockstore.Config{})
	storetest.MustMiss(t, b, blk.CID)
	if keys := storetest.AllKeys(t, b); len(keys) != 0 {
		t.Fatalf("leftovers listed as blocks: %v", keys)
	}
	left, err := os.ReadDir(filepath.Join(dir, ".temp"))
	if err != nil || len(left) != 0 {
		t.Fatalf(".temp after Open: %v, %v; want empty", left, err)
	}
	if err := b.Put(context.Background(), blk); err != nil {
		t.Fatal(err)
	}
	storetest.MustGet(t, b, blk.CID, blk.Data)
}

// snapshot lists every file under dir with its size and contents' prefix,
// sorted.
func snapshot(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		entry := rel + " " + info.Mode().String() + " " + info.ModTime().String()
		if !d.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			entry += " " + string(data)
		}
		out = append(out, entry)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
