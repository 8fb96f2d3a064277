package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/internal/blocktest"
)

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
