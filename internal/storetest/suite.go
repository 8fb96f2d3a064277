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
	"sync"
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

func testMissing(t *testing.T, open Opener) {
	tg := open(t)
	b := tg.Store
	c := blocktest.NewBlock(t, blocktest.RawV1(), []byte("never stored")).CID
	MustMiss(t, b, c)
	if d, ok := b.(deleter); ok {
		err := d.Delete(context.Background(), c)
		if tg.ReadOnly {
			if !errors.Is(err, blockstore.ErrReadOnly) {
				t.Fatalf("Delete on read-only store: %v; want ErrReadOnly", err)
			}
		} else if !errors.Is(err, block.ErrNotFound) {
			t.Fatalf("Delete(missing) = %v; want ErrNotFound", err)
		}
	}
	if s := tg.Disk.Stats(); s.Misses != 1 || s.Gets != 1 {
		t.Fatalf("stats after one missed Get: %+v", s)
	}
}

func testRoundTrip(t *testing.T, open Opener) {
	blks := Blocks(t, 5)
	big := blocktest.NewBlock(t, blocktest.RawV1(), bytes.Repeat([]byte{0xa5}, block.MaxSize))
	empty := blocktest.NewBlock(t, blocktest.RawV1(), []byte{})
	blks = append(blks, big, empty)
	tg := open(t, blks...)
	b := tg.Store
	for _, blk := range blks {
		MustGet(t, b, blk.CID, blk.Data)
	}
	var total uint64
	for _, blk := range blks {
		total += uint64(len(blk.Data))
	}
	if s := tg.Disk.Stats(); s.BytesRead != total || s.HashMismatches != 0 {
		t.Fatalf("stats: %+v; want BytesRead %d", s, total)
	}
}

func testCIDVersions(t *testing.T, open Opener) {
	data := []byte("\x0a\x02\x08\x01") // a dag-pb node: empty UnixFS directory
	blk := blocktest.NewBlock(t, v0(), data)
	tg := open(t, blk)
	b := tg.Store
	others := []cid.Cid{
		cid.NewCidV1(cid.DagProtobuf, blk.CID.Hash()),
		cid.NewCidV1(cid.Raw, blk.CID.Hash()),
		cid.NewCidV1(cid.DagCBOR, blk.CID.Hash()),
	}
	for _, c := range append([]cid.Cid{blk.CID}, others...) {
		MustGet(t, b, c, data)
	}
	if tg.ReadOnly {
		return
	}
	// A CIDv1 over the same multihash is the same stored block.
	if err := b.Put(context.Background(), block.Block{CID: others[0], Data: data}); err != nil {
		t.Fatal(err)
	}
	if s := tg.Disk.Stats(); s.PutsSkipped != 1 {
		t.Fatalf("Put of a CIDv1 over a stored multihash wrote again: %+v", s)
	}
	d, ok := b.(deleter)
	if !ok {
		return
	}
	if err := d.Delete(context.Background(), others[1]); err != nil {
		t.Fatal(err)
	}
	MustMiss(t, b, blk.CID)
}

func testHashes(t *testing.T, open Opener) {
	data := []byte("the same bytes under every hash")
	var blks []block.Block
	for _, code := range []uint64{mh.SHA2_256, mh.SHA2_512, mh.BLAKE2B_MIN + 31, mh.BLAKE3} {
		blks = append(blks, blocktest.NewBlock(t, cid.Prefix{Version: 1, Codec: cid.Raw, MhType: code, MhLength: -1}, data))
	}
	tg := open(t, blks...)
	b := tg.Store
	for _, blk := range blks {
		MustGet(t, b, blk.CID, data)
	}
	// An unsupported hash (sha3-256) is refused, not looked up.
	sha3, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA3_256, MhLength: -1}.Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(context.Background(), sha3); !errors.Is(err, block.ErrUnsupportedCID) {
		t.Fatalf("Get(sha3-256 CID) = %v; want ErrUnsupportedCID", err)
	}
	if has, err := b.Has(context.Background(), sha3); has || !errors.Is(err, block.ErrUnsupportedCID) {
		t.Fatalf("Has(sha3-256 CID) = %v, %v; want false, ErrUnsupportedCID", has, err)
	}
}

func testIdentity(t *testing.T, open Opener) {
	tg := open(t)
	b := tg.Store
	data := []byte("inline")
	blk := blocktest.NewBlock(t, cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.IDENTITY, MhLength: -1}, data)
	MustGet(t, b, blk.CID, data)
	if !tg.ReadOnly {
		if err := b.Put(context.Background(), blk); err != nil {
			t.Fatalf("Put(identity): %v", err)
		}
		if pm, ok := b.(putManyer); ok {
			if err := pm.PutMany(context.Background(), []block.Block{blk}); err != nil {
				t.Fatalf("PutMany(identity): %v", err)
			}
		}
		// An identity block whose data differs from its CID is refused.
		bad := block.Block{CID: blk.CID, Data: []byte("other")}
		if err := b.Put(context.Background(), bad); !errors.Is(err, block.ErrHashMismatch) {
			t.Fatalf("Put(bad identity) = %v; want ErrHashMismatch", err)
		}
	}
	if keys := AllKeys(t, tg.lister()); len(keys) != 0 {
		t.Fatalf("identity block was stored: %v", keys)
	}
	if s := tg.Disk.Stats(); s.Puts != 0 || s.Gets != 0 {
		t.Fatalf("identity operations touched the disk: %+v", s)
	}
}

// The empty block, under any supported hash, is in every store without
// being written or read: its bytes are known from its CID.
func testEmpty(t *testing.T, open Opener) {
	tg := open(t)
	b := tg.Store
	ctx := context.Background()
	var blks []block.Block
	for _, p := range []cid.Prefix{
		blocktest.RawV1(), v0(),
		{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1},
		{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_512, MhLength: -1},
		{Version: 1, Codec: cid.Raw, MhType: mh.BLAKE2B_MIN + 31, MhLength: -1},
		{Version: 1, Codec: cid.Raw, MhType: mh.BLAKE3, MhLength: -1},
	} {
		blk := blocktest.NewBlock(t, p, nil)
		blks = append(blks, blk)
		MustGet(t, b, blk.CID, nil)
		if got, _ := b.Get(ctx, blk.CID); got.Data == nil {
			t.Fatalf("Get(%s) returned nil data: an empty block is not an absent one", blk.CID)
		}
	}
	if !tg.ReadOnly {
		for _, blk := range blks {
			if err := b.Put(ctx, blk); err != nil {
				t.Fatalf("Put(%s): %v", blk.CID, err)
			}
		}
		if pm, ok := b.(putManyer); ok {
			if err := pm.PutMany(ctx, blks); err != nil {
				t.Fatalf("PutMany(empty blocks): %v", err)
			}
		}
		// Empty data under another block's CID is still refused.
		other := blocktest.NewBlock(t, blocktest.RawV1(), []byte("x"))
		if err := b.Put(ctx, block.Block{CID: other.CID, Data: nil}); !errors.Is(err, block.ErrHashMismatch) {
			t.Fatalf("Put(no data under %s) = %v; want ErrHashMismatch", other.CID, err)
		}
	}
	if keys := AllKeys(t, tg.lister()); len(keys) != 0 {
		t.Fatalf("the empty block was stored: %v", keys)
	}
	if s := tg.Disk.Stats(); s.Puts != 0 || s.Gets != 0 || s.Misses != 0 {
		t.Fatalf("empty-block operations touched the disk: %+v", s)
	}
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

func testAllKeys(t *testing.T, open Opener) {
	blks := Blocks(t, 20)
	// The same multihash under two CIDs is listed once.
	blks = append(blks, block.Block{CID: cid.NewCidV0(blks[0].CID.Hash()), Data: blks[0].Data})
	tg := open(t, blks...)
	if got, want := AllKeys(t, tg.lister()), Hashes(blks...); !slices.Equal(got, want) {
		t.Fatalf("AllKeys:\n got %v\nwant %v", got, want)
	}

	// A listing abandoned by cancelling its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := tg.lister().AllKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.After(10 * time.Second)
	for n := 0; ; n++ {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
			if n > len(blks) {
				t.Fatal("cancelled AllKeys keeps sending")
			}
		case <-deadline:
			t.Fatal("cancelled AllKeys did not close its channel")
		}
	}
}

func testWrites(t *testing.T, open Opener) {
	ctx := context.Background()
	tg := open(t)
	b := tg.Store
	blks := Blocks(t, 8)
	if tg.ReadOnly {
		if err := b.Put(ctx, blks[0]); !errors.Is(err, blockstore.ErrReadOnly) {
			t.Fatalf("Put on read-only store = %v; want ErrReadOnly", err)
		}
		if pm, ok := b.(putManyer); ok {
			if err := pm.PutMany(ctx, blks); !errors.Is(err, blockstore.ErrReadOnly) {
				t.Fatalf("PutMany on read-only store = %v; want ErrReadOnly", err)
			}
		}
		MustMiss(t, b, blks[0].CID)
		return
	}
	if err := b.Put(ctx, blks[0]); err != nil {
		t.Fatal(err)
	}
	MustGet(t, b, blks[0].CID, blks[0].Data)
	if err := b.Put(ctx, blks[0]); err != nil {
		t.Fatal(err)
	}
	// PutMany writes the rest, skips the one stored and the duplicate.
	if pm, ok := b.(putManyer); ok {
		if err := pm.PutMany(ctx, append(blks, blks[3])); err != nil {
			t.Fatal(err)
		}
		s := tg.Disk.Stats()
		if s.Puts != uint64(len(blks)) || s.PutsSkipped != 2 {
			t.Fatalf("stats after writes: %+v; want %d puts, 2 skipped", s, len(blks))
		}
	} else {
		for _, blk := range blks[1:] {
			if err := b.Put(ctx, blk); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, blk := range blks {
		MustGet(t, b, blk.CID, blk.Data)
	}
	if got, want := AllKeys(t, tg.lister()), Hashes(blks...); !slices.Equal(got, want) {
		t.Fatalf("AllKeys after writes:\n got %v\nwant %v", got, want)
	}
	d, ok := b.(deleter)
	if !ok {
		return
	}
	for _, blk := range blks[:4] {
		if err := d.Delete(ctx, blk.CID); err != nil {
			t.Fatal(err)
		}
		MustMiss(t, b, blk.CID)
	}
	if got, want := AllKeys(t, tg.lister()), Hashes(blks[4:]...); !slices.Equal(got, want) {
		t.Fatalf("AllKeys after deletes:\n got %v\nwant %v", got, want)
	}
	// A deleted block can be stored again.
	if err := b.Put(ctx, blks[0]); err != nil {
		t.Fatal(err)
	}
	MustGet(t, b, blks[0].CID, blks[0].Data)
}

func testRefused(t *testing.T, open Opener) {
	ctx := context.Background()
	tg := open(t)
	b := tg.Store
	good := Blocks(t, 3)
	if tg.ReadOnly {
		// Every write is refused as a whole, good blocks included.
		if err := b.Put(ctx, good[0]); !errors.Is(err, blockstore.ErrReadOnly) {
			t.Fatalf("Put on a read-only store: %v, want ErrReadOnly", err)
		}
		return
	}
	over := bytes.Repeat([]byte{1}, block.MaxSize+1)
	overCID, err := blocktest.RawV1().Sum(over)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		blk  block.Block
		want error
	}{
		{"TooLarge", block.Block{CID: overCID, Data: over}, block.ErrTooLarge},
		{"WrongData", block.Block{CID: good[0].CID, Data: []byte("not the data")}, block.ErrHashMismatch},
		{"FlippedBit", block.Block{CID: good[1].CID, Data: Flip(good[1].Data)}, block.ErrHashMismatch},
		{"Undefined", block.Block{Data: []byte("x")}, block.ErrUnsupportedCID},
	}
	for _, tc := range cases {
		if err := b.Put(ctx, tc.blk); !errors.Is(err, tc.want) {
			t.Errorf("%s: Put = %v; want %v", tc.name, err, tc.want)
		}
		// One bad block in a batch fails the whole batch.
		if pm, ok := b.(putManyer); ok {
			if err := pm.PutMany(ctx, []block.Block{good[2], tc.blk}); !errors.Is(err, tc.want) {
				t.Errorf("%s: PutMany = %v; want %v", tc.name, err, tc.want)
			}
		}
	}
	for _, blk := range good {
		MustMiss(t, b, blk.CID)
	}
	if keys := AllKeys(t, tg.lister()); len(keys) != 0 {
		t.Fatalf("refused blocks were stored: %v", keys)
	}
}

// Flip returns a copy of data with one bit changed.
func Flip(data []byte) []byte {
	out := bytes.Clone(data)
	out[len(out)/2] ^= 0x10
	return out
}

func testConcurrent(t *testing.T, open Opener) {
	blks := Blocks(t, 16)
	tg := open(t, blks[:8]...)
	b := tg.Store
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 4 {
		wg.Go(func() {
			for i := range 8 {
				blk := blks[(i+w)%8]
				got, err := b.Get(ctx, blk.CID)
				if err == nil && !bytes.Equal(got.Data, blk.Data) {
					err = fmt.Errorf("Get(%s) returned other bytes", blk.CID)
				}
				if err != nil {
					errs <- err
					return
				}
				if !tg.ReadOnly {
					// All workers write the same 8 new blocks.
					if err := b.Put(ctx, blks[8+(i+w)%8]); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !tg.ReadOnly {
		for _, blk := range blks {
			MustGet(t, b, blk.CID, blk.Data)
		}
	}
}

func testClosed(t *testing.T, open Opener) {
	blks := Blocks(t, 1)
	tg := open(t, blks...)
	b, ok := tg.Store.(*blockstore.Blockstore)
	if !ok {
		t.Skip("closing is checked on a Blockstore itself")
	}
	ctx := context.Background()
	// An undrained listing must not keep Close waiting.
	if _, err := b.AllKeys(ctx); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while an AllKeys listing was undrained")
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.Get(ctx, blks[0].CID); !errors.Is(err, blockstore.ErrClosed) {
		t.Fatalf("Get after Close = %v; want ErrClosed", err)
	}
	if _, err := b.Has(ctx, blks[0].CID); !errors.Is(err, blockstore.ErrClosed) {
		t.Fatalf("Has after Close = %v; want ErrClosed", err)
	}
	if err := b.Put(ctx, blks[0]); !errors.Is(err, blockstore.ErrClosed) {
		t.Fatalf("Put after Close = %v; want ErrClosed", err)
	}
	if _, err := b.AllKeys(ctx); !errors.Is(err, blockstore.ErrClosed) {
		t.Fatalf("AllKeys after Close = %v; want ErrClosed", err)
	}
}
