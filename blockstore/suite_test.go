package blockstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
)

// opener returns a fresh store that already holds seed. A read-only opener
// seeds through a writable store and reopens the directory read-only.
type opener func(t *testing.T, seed ...block.Block) *Blockstore

// runSuite runs the behaviour every Blockstore must have, whatever its
// Config, against stores made by open.
func runSuite(t *testing.T, open opener) {
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

var (
	v1Raw = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}
	v0    = cid.Prefix{Version: 0, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}
)

// newBlock builds a valid block of data under prefix.
func newBlock(t testing.TB, prefix cid.Prefix, data []byte) block.Block {
	t.Helper()
	b, err := block.New(prefix, data)
	if err != nil {
		t.Fatalf("block.New: %v", err)
	}
	return b
}

// someBlocks returns n distinct raw blocks of varying sizes.
func someBlocks(t testing.TB, n int) []block.Block {
	t.Helper()
	var out []block.Block
	for i := range n {
		data := bytes.Repeat([]byte(fmt.Sprintf("block %d;", i)), 1+i*37)
		out = append(out, newBlock(t, v1Raw, data))
	}
	return out
}

// mustGet gets c and checks that the block carries c and want.
func mustGet(t *testing.T, b *Blockstore, c cid.Cid, want []byte) {
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

// mustMiss checks that c is not stored.
func mustMiss(t *testing.T, b *Blockstore, c cid.Cid) {
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

func testMissing(t *testing.T, open opener) {
	b := open(t)
	c := newBlock(t, v1Raw, []byte("never stored")).CID
	mustMiss(t, b, c)
	err := b.Delete(context.Background(), c)
	if b.cfg.ReadOnly {
		if !errors.Is(err, ErrReadOnly) {
			t.Fatalf("Delete on read-only store: %v; want ErrReadOnly", err)
		}
	} else if !errors.Is(err, block.ErrNotFound) {
		t.Fatalf("Delete(missing) = %v; want ErrNotFound", err)
	}
	if s := b.Stats(); s.Misses != 1 || s.Gets != 1 {
		t.Fatalf("stats after one missed Get: %+v", s)
	}
}

func testRoundTrip(t *testing.T, open opener) {
	blks := someBlocks(t, 5)
	big := newBlock(t, v1Raw, bytes.Repeat([]byte{0xa5}, block.MaxSize))
	empty := newBlock(t, v1Raw, []byte{})
	blks = append(blks, big, empty)
	b := open(t, blks...)
	for _, blk := range blks {
		mustGet(t, b, blk.CID, blk.Data)
	}
	var total uint64
	for _, blk := range blks {
		total += uint64(len(blk.Data))
	}
	if s := b.Stats(); s.BytesRead != total || s.HashMismatches != 0 {
		t.Fatalf("stats: %+v; want BytesRead %d", s, total)
	}
}

func testCIDVersions(t *testing.T, open opener) {
	data := []byte("\x0a\x02\x08\x01") // a dag-pb node: empty UnixFS directory
	blk := newBlock(t, v0, data)
	b := open(t, blk)
	others := []cid.Cid{
		cid.NewCidV1(cid.DagProtobuf, blk.CID.Hash()),
		cid.NewCidV1(cid.Raw, blk.CID.Hash()),
		cid.NewCidV1(cid.DagCBOR, blk.CID.Hash()),
	}
	for _, c := range append([]cid.Cid{blk.CID}, others...) {
		mustGet(t, b, c, data)
	}
	if b.cfg.ReadOnly {
		return
	}
	// A CIDv1 over the same multihash is the same stored block.
	if err := b.Put(context.Background(), block.Block{CID: others[0], Data: data}); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.PutsSkipped != 1 {
		t.Fatalf("Put of a CIDv1 over a stored multihash wrote again: %+v", s)
	}
	if err := b.Delete(context.Background(), others[1]); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, b, blk.CID)
}

func testHashes(t *testing.T, open opener) {
	data := []byte("the same bytes under every hash")
	var blks []block.Block
	for _, code := range []uint64{mh.SHA2_256, mh.SHA2_512, mh.BLAKE2B_MIN + 31, mh.BLAKE3} {
		blks = append(blks, newBlock(t, cid.Prefix{Version: 1, Codec: cid.Raw, MhType: code, MhLength: -1}, data))
	}
	b := open(t, blks...)
	for _, blk := range blks {
		mustGet(t, b, blk.CID, data)
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

func testIdentity(t *testing.T, open opener) {
	b := open(t)
	data := []byte("inline")
	blk := newBlock(t, cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.IDENTITY, MhLength: -1}, data)
	mustGet(t, b, blk.CID, data)
	if !b.cfg.ReadOnly {
		if err := b.Put(context.Background(), blk); err != nil {
			t.Fatalf("Put(identity): %v", err)
		}
		if err := b.PutMany(context.Background(), []block.Block{blk}); err != nil {
			t.Fatalf("PutMany(identity): %v", err)
		}
		// An identity block whose data differs from its CID is refused.
		bad := block.Block{CID: blk.CID, Data: []byte("other")}
		if err := b.Put(context.Background(), bad); !errors.Is(err, block.ErrHashMismatch) {
			t.Fatalf("Put(bad identity) = %v; want ErrHashMismatch", err)
		}
	}
	if keys := allKeys(t, b); len(keys) != 0 {
		t.Fatalf("identity block was stored: %v", keys)
	}
	if s := b.Stats(); s.Puts != 0 || s.Gets != 0 {
		t.Fatalf("identity operations touched the disk: %+v", s)
	}
}

// The empty block, under any supported hash, is in every store without
// being written or read: its bytes are known from its CID.
func testEmpty(t *testing.T, open opener) {
	b := open(t)
	ctx := context.Background()
	var blks []block.Block
	for _, p := range []cid.Prefix{
		v1Raw, v0,
		{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1},
		{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_512, MhLength: -1},
		{Version: 1, Codec: cid.Raw, MhType: mh.BLAKE2B_MIN + 31, MhLength: -1},
		{Version: 1, Codec: cid.Raw, MhType: mh.BLAKE3, MhLength: -1},
	} {
		blk := newBlock(t, p, nil)
		blks = append(blks, blk)
		mustGet(t, b, blk.CID, nil)
		if got, _ := b.Get(ctx, blk.CID); got.Data == nil {
			t.Fatalf("Get(%s) returned nil data: an empty block is not an absent one", blk.CID)
		}
	}
	if !b.cfg.ReadOnly {
		for _, blk := range blks {
			if err := b.Put(ctx, blk); err != nil {
				t.Fatalf("Put(%s): %v", blk.CID, err)
			}
		}
		if err := b.PutMany(ctx, blks); err != nil {
			t.Fatalf("PutMany(empty blocks): %v", err)
		}
		// Empty data under another block's CID is still refused.
		other := newBlock(t, v1Raw, []byte("x"))
		if err := b.Put(ctx, block.Block{CID: other.CID, Data: nil}); !errors.Is(err, block.ErrHashMismatch) {
			t.Fatalf("Put(no data under %s) = %v; want ErrHashMismatch", other.CID, err)
		}
	}
	if keys := allKeys(t, b); len(keys) != 0 {
		t.Fatalf("the empty block was stored: %v", keys)
	}
	if s := b.Stats(); s.Puts != 0 || s.Gets != 0 || s.Misses != 0 {
		t.Fatalf("empty-block operations touched the disk: %+v", s)
	}
}

// allKeys drains AllKeys, bounded in count and time, and returns the keys
// sorted.
func allKeys(t *testing.T, b *Blockstore) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := b.AllKeys(ctx)
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

// hashes returns the multihashes of blks, sorted, deduplicated.
func hashes(blks ...block.Block) []string {
	var out []string
	for _, blk := range blks {
		if !block.IsIdentity(blk.CID) {
			out = append(out, blk.CID.Hash().B58String())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func testAllKeys(t *testing.T, open opener) {
	blks := someBlocks(t, 20)
	// The same multihash under two CIDs is listed once.
	blks = append(blks, block.Block{CID: cid.NewCidV0(blks[0].CID.Hash()), Data: blks[0].Data})
	b := open(t, blks...)
	if got, want := allKeys(t, b), hashes(blks...); !slices.Equal(got, want) {
		t.Fatalf("AllKeys:\n got %v\nwant %v", got, want)
	}

	// A listing abandoned by cancelling its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := b.AllKeys(ctx)
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

func testWrites(t *testing.T, open opener) {
	ctx := context.Background()
	b := open(t)
	blks := someBlocks(t, 8)
	if b.cfg.ReadOnly {
		if err := b.Put(ctx, blks[0]); !errors.Is(err, ErrReadOnly) {
			t.Fatalf("Put on read-only store = %v; want ErrReadOnly", err)
		}
		if err := b.PutMany(ctx, blks); !errors.Is(err, ErrReadOnly) {
			t.Fatalf("PutMany on read-only store = %v; want ErrReadOnly", err)
		}
		mustMiss(t, b, blks[0].CID)
		return
	}
	if err := b.Put(ctx, blks[0]); err != nil {
		t.Fatal(err)
	}
	mustGet(t, b, blks[0].CID, blks[0].Data)
	if err := b.Put(ctx, blks[0]); err != nil {
		t.Fatal(err)
	}
	// PutMany writes the rest, skips the one stored and the duplicate.
	if err := b.PutMany(ctx, append(blks, blks[3])); err != nil {
		t.Fatal(err)
	}
	for _, blk := range blks {
		mustGet(t, b, blk.CID, blk.Data)
	}
	s := b.Stats()
	if s.Puts != uint64(len(blks)) || s.PutsSkipped != 2 {
		t.Fatalf("stats after writes: %+v; want %d puts, 2 skipped", s, len(blks))
	}
	if got, want := allKeys(t, b), hashes(blks...); !slices.Equal(got, want) {
		t.Fatalf("AllKeys after writes:\n got %v\nwant %v", got, want)
	}
	for _, blk := range blks[:4] {
		if err := b.Delete(ctx, blk.CID); err != nil {
			t.Fatal(err)
		}
		mustMiss(t, b, blk.CID)
	}
	if got, want := allKeys(t, b), hashes(blks[4:]...); !slices.Equal(got, want) {
		t.Fatalf("AllKeys after deletes:\n got %v\nwant %v", got, want)
	}
	// A deleted block can be stored again.
	if err := b.Put(ctx, blks[0]); err != nil {
		t.Fatal(err)
	}
	mustGet(t, b, blks[0].CID, blks[0].Data)
}

func testRefused(t *testing.T, open opener) {
	ctx := context.Background()
	b := open(t)
	good := someBlocks(t, 3)
	if b.cfg.ReadOnly {
		// Every write is refused as a whole, good blocks included.
		if err := b.Put(ctx, good[0]); !errors.Is(err, ErrReadOnly) {
			t.Fatalf("Put on a read-only store: %v, want ErrReadOnly", err)
		}
		return
	}
	over := bytes.Repeat([]byte{1}, block.MaxSize+1)
	overCID, err := v1Raw.Sum(over)
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
		{"FlippedBit", block.Block{CID: good[1].CID, Data: flip(good[1].Data)}, block.ErrHashMismatch},
		{"Undefined", block.Block{Data: []byte("x")}, block.ErrUnsupportedCID},
	}
	for _, tc := range cases {
		if err := b.Put(ctx, tc.blk); !errors.Is(err, tc.want) {
			t.Errorf("%s: Put = %v; want %v", tc.name, err, tc.want)
		}
		// One bad block in a batch fails the whole batch.
		if err := b.PutMany(ctx, []block.Block{good[2], tc.blk}); !errors.Is(err, tc.want) {
			t.Errorf("%s: PutMany = %v; want %v", tc.name, err, tc.want)
		}
	}
	for _, blk := range good {
		mustMiss(t, b, blk.CID)
	}
	if keys := allKeys(t, b); len(keys) != 0 {
		t.Fatalf("refused blocks were stored: %v", keys)
	}
}

// flip returns a copy of data with one bit changed.
func flip(data []byte) []byte {
	out := bytes.Clone(data)
	out[len(out)/2] ^= 0x10
	return out
}

func testConcurrent(t *testing.T, open opener) {
	blks := someBlocks(t, 16)
	b := open(t, blks[:8]...)
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
				if !b.cfg.ReadOnly {
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
	if !b.cfg.ReadOnly {
		for _, blk := range blks {
			mustGet(t, b, blk.CID, blk.Data)
		}
	}
}

func testClosed(t *testing.T, open opener) {
	blks := someBlocks(t, 1)
	b := open(t, blks...)
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
	if _, err := b.Get(ctx, blks[0].CID); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v; want ErrClosed", err)
	}
	if _, err := b.Has(ctx, blks[0].CID); !errors.Is(err, ErrClosed) {
		t.Fatalf("Has after Close = %v; want ErrClosed", err)
	}
	if err := b.Put(ctx, blks[0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close = %v; want ErrClosed", err)
	}
	if _, err := b.AllKeys(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("AllKeys after Close = %v; want ErrClosed", err)
	}
}
