// Package storetest checks that a block store behaves as bsfs's stores
// must (Run, the conformance suite), and holds the checks and blocks the
// stores' tests share.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/poll"
)

// Store is a block store under test.
type Store interface {
	Get(ctx context.Context, c cid.Cid) (block.Block, error)
	GetSize(ctx context.Context, c cid.Cid) (int, error)
	Has(ctx context.Context, c cid.Cid) (bool, error)
	Put(ctx context.Context, b block.Block) error
}

// What a Store may also do; the suite checks it where it does.
type (
	putManyer interface {
		PutMany(ctx context.Context, blks []block.Block) error
	}
	deleter interface {
		Delete(ctx context.Context, c cid.Cid) error
	}
	lister interface {
		AllKeys(ctx context.Context) (<-chan mh.Multihash, error)
	}
)

// Target is a store under test and the Blockstore that keeps its blocks,
// whose Stats count what reached the disk.
type Target struct {
	Store    Store
	Disk     *blockstore.Blockstore
	ReadOnly bool // Disk was opened read-only
}

// Opener returns a fresh store that already holds seed.
type Opener func(t *testing.T, seed ...block.Block) Target

// Run runs the behaviour every block store must have against stores made
// by open. A Store that lists no keys is listed through its Disk; checks
// of PutMany and Delete run only on a Store that has them, and those of
// Close only on a Blockstore itself.
func Run(t *testing.T, open Opener) {
	t.Run("Missing", func(t *testing.T) { testMissing(t, open) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, open) })
	t.Run("CIDVersions", func(t *testing.T) { testCIDVersions(t, open) })
	t.Run("Hashes", func(t *testing.T) { testHashes(t, open) })
	t.Run("Identity", func(t *testing.T) { testIdentity(t, open) })
	t.Run("Empty", func(t *testing.T) { testEmpty(t, open) })
	t.Run("AllKeys", func(t *testing.T) { testAllKeys(t, open) })
	t.Run("Writes", func(t *testing.T) { testWrites(t, open) })
	t.Run("Refused", func(t *testing.T) { testRefused(t, open) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, open) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, open) })
}

// Open opens a Blockstore in dir with cfg and closes it when the test
// ends.
func Open(t testing.TB, dir string, cfg blockstore.Config) *blockstore.Blockstore {
	t.Helper()
	b, err := blockstore.Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// New opens a writable Blockstore, without fsync, in a fresh temporary
// directory.
func New(t testing.TB) *blockstore.Blockstore {
	t.Helper()
	return Open(t, t.TempDir(), blockstore.Config{NoSync: true})
}

// Seeded opens a Blockstore in dir with cfg that holds seed, written
// first with a writable store.
func Seeded(t testing.TB, dir string, cfg blockstore.Config, seed ...block.Block) *blockstore.Blockstore {
	t.Helper()
	w, err := blockstore.Open(dir, blockstore.Config{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, blk := range seed {
		if err := w.Put(context.Background(), blk); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return Open(t, dir, cfg)
}

func v0() cid.Prefix {
	return cid.Prefix{Version: 0, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}
}

// Blocks returns n distinct raw blocks of varying sizes.
func Blocks(t testing.TB, n int) []block.Block {
	t.Helper()
	var out []block.Block
	for i := range n {
		data := bytes.Repeat([]byte(fmt.Sprintf("block %d;", i)), 1+i*37)
		out = append(out, blocktest.NewBlock(t, blocktest.RawV1(), data))
	}
	return out
}

// MustGet gets c and checks that the block carries c and want.
func MustGet(t *testing.T, b Store, c cid.Cid, want []byte) {
	t.Helper()
	got, err := b.Get(context.Background(), c)
	if err != nil {
		t.Fatalf("Get(%s): %v", c, err)
	}
	if !got.CID.Equals(c) {
		t.Fatalf("Get(%s) returned CID %s", c, got.CID)
	}
	if !bytes.Equal(got.Data, want) {
		t.Fatalf("Get(%s) returned %d bytes, want %d bytes %q...", c, len(got.Data), len(want), want[:min(len(want), 16)])
	}
	n, err := b.GetSize(context.Background(), c)
	if err != nil || n != len(want) {
		t.Fatalf("GetSize(%s) = %d, %v; want %d", c, n, err, len(want))
	}
	if has, err := b.Has(context.Background(), c); err != nil || !has {
		t.Fatalf("Has(%s) = %v, %v; want true", c, has, err)
	}
}

// MustMiss checks that c is not stored.
func MustMiss(t *testing.T, b Store, c cid.Cid) {
	t.Helper()
	ctx := context.Background()
	if got, err := b.Get(ctx, c); !errors.Is(err, block.ErrNotFound) || got.Data != nil {
		t.Fatalf("Get(%s) = %d bytes, %v; want ErrNotFound", c, len(got.Data), err)
	}
	if has, err := b.Has(ctx, c); err != nil || has {
		t.Fatalf("Has(%s) = %v, %v; want false", c, has, err)
	}
	if _, err := b.GetSize(ctx, c); !errors.Is(err, block.ErrNotFound) {
		t.Fatalf("GetSize(%s) error = %v; want ErrNotFound", c, err)
	}
}

// WaitTempEmpty waits up to a second for the .temp directory of the
// flatfs store in dir to be empty: flatfs writes its disk usage
// checkpoint through it too.
func WaitTempEmpty(t testing.TB, dir string) {
	t.Helper()
	poll.UntilNil(t, time.Second, func() error {
		left, err := os.ReadDir(filepath.Join(dir, ".temp"))
		if err != nil || len(left) != 0 {
			return fmt.Errorf("%s/.temp holds %v (%v), want nothing", dir, left, err)
		}
		return nil
	})
}

// lister returns what lists tg's keys: its Store if it can, else its Disk.
func (tg Target) lister() lister {
	if l, ok := tg.Store.(lister); ok {
		return l
	}
	return tg.Disk
}

// AllKeys drains l's AllKeys, bounded in count and time, and returns the
// keys sorted.
func AllKeys(t *testing.T, l interface {
	AllKeys(ctx context.Context) (<-chan mh.Multihash, error)
}) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := l.AllKeys(ctx)
	if err != nil {
		t.Fatalf("AllKeys: %v", err)
	}
	var keys []string
	for h := range ch {
		keys = append(keys, h.B58String())
		if len(keys) > 10000 {
			t.Fatal("AllKeys does not end")
		}
	}
	if ctx.Err() != nil {
		t.Fatal("AllKeys timed out")
	}
	slices.Sort(keys)
	return keys
}

// Hashes returns the multihashes of blks, sorted, deduplicated.
func Hashes(blks ...block.Block) []string {
	var out []string
	for _, blk := range blks {
		if !block.IsIdentity(blk.CID) {
			out = append(out, blk.CID.Hash().B58String())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Flip returns a copy of data with one bit changed.
func Flip(data []byte) []byte {
	out := bytes.Clone(data)
	out[len(out)/2] ^= 0x10
	return out
}
