package storetest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/internal/blocktest"
)

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
