//go:build linux

package blockstore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/mounttest"
	"github.com/bsfs/bsfs/internal/storetest"
)

// A store on a full disk: a Put fails with an error naming the store's
// directory and the disk's error, leaves no temporary file and no partial
// block, the blocks already stored still read back, and a Put succeeds
// again once there is room.
func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	mounttest.Tmpfs(t, dir, "1m")
	b := storetest.Open(t, dir, blockstore.Config{NoSync: true})
	ctx := context.Background()

	var stored []block.Block
	var failed block.Block
	var putErr error
	for range 40 { // 40 × 100 kB does not fit in 1 MiB
		data := make([]byte, 100_000)
		rand.Read(data)
		blk := blocktest.NewBlock(t, blocktest.RawV1(), data)
		if putErr = b.Put(ctx, blk); putErr != nil {
			failed = blk
			break
		}
		stored = append(stored, blk)
	}
	if putErr == nil {
		t.Fatal("40 Puts of 100 kB fit in a 1 MiB tmpfs")
	}
	if !errors.Is(putErr, syscall.ENOSPC) {
		t.Fatalf("Put on a full disk: %v, want ENOSPC", putErr)
	}
	msg := putErr.Error()
	for _, want := range []string{"put " + failed.CID.String(), "storing in " + dir, "no space left on device"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Put error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, ".temp") {
		t.Errorf("Put error %q names a temporary file that is gone", msg)
	}
	t.Logf("%d blocks stored, then: %v", len(stored), putErr)

	// PutMany names the directory too, and writes no block in part.
	var more []block.Block
	for range 3 {
		data := make([]byte, 100_000)
		rand.Read(data)
		more = append(more, blocktest.NewBlock(t, blocktest.RawV1(), data))
	}
	if err := b.PutMany(ctx, more); !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "storing in "+dir) {
		t.Errorf("PutMany on a full disk: %v, want ENOSPC naming %s", err, dir)
	}

	checkStore(t, b, dir, stored)
	storetest.MustMiss(t, b, failed.CID)
	for _, blk := range more {
		storetest.MustMiss(t, b, blk.CID)
	}

	// Room again: the block that did not fit is stored.
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size=8m"); err != nil {
		t.Fatalf("growing the tmpfs: %v", err)
	}
	if err := b.Put(ctx, failed); err != nil {
		t.Fatalf("Put once there is room: %v", err)
	}
	if err := b.PutMany(ctx, more); err != nil {
		t.Fatalf("PutMany once there is room: %v", err)
	}
	checkStore(t, b, dir, slices.Concat(stored, []block.Block{failed}, more))
}

// checkStore checks that dir's .temp empties and that the store holds
// exactly want, each block verifying against its key.
func checkStore(t *testing.T, b *blockstore.Blockstore, dir string, want []block.Block) {
	t.Helper()
	storetest.WaitTempEmpty(t, dir)
	if got := storetest.AllKeys(t, b); !slices.Equal(got, storetest.Hashes(want...)) {
		t.Errorf("store lists %d blocks, want the %d put", len(got), len(want))
	}
	for _, blk := range want {
		storetest.MustGet(t, b, blk.CID, blk.Data)
	}
}
