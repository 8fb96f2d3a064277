package unixfs

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/storetest"
)

// errDiskFull is what fullGetter's GetBlock says of a block it cannot keep.
var errDiskFull = errors.New("storing in /repo/blocks: write: no space left on device")

// fullGetter is a real store seen through a node whose disk is full while
// full is set: as the exchange then does, GetBlocks ends its stream early,
// without the blocks it could not store, saying why, and so does GetBlock.
// Only the root is at hand whatever the disk.
type fullGetter struct {
	src  BlockGetter
	root cid.Cid
	full atomic.Bool
}

func (g *fullGetter) fails(c cid.Cid) bool { return g.full.Load() && !c.Equals(g.root) }

func (g *fullGetter) GetBlock(ctx context.Context, c cid.Cid) (block.Block, error) {
	if g.fails(c) {
		return block.Block{}, errDiskFull
	}
	return g.src.GetBlock(ctx, c)
}

func (g *fullGetter) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	st := block.NewStream()
	go func() {
		for _, c := range cids {
			if g.fails(c) {
				st.Close(errDiskFull)
				return
			}
			b, err := g.src.GetBlock(ctx, c)
			if err != nil {
				st.Close(err)
				return
			}
			st.Send(b, nil)
		}
		st.Close(nil)
	}()
	return st, nil
}

// A read whose blocks cannot be kept fails with the getter's error, not
// "not found"; the file remembers no failure, and reads once there is room.
func TestReadOnFullDisk(t *testing.T) {
	bs := storetest.New(t)
	data := blocktest.SeededBytes(40*1000, 9)
	root := addSmall(t, bs, data, 1000, 174, false)
	g := &fullGetter{src: Local(bs), root: root}
	g.full.Store(true)
	f := openT(t, New(g, Config{Window: 8}), root)

	buf := make([]byte, len(data))
	if _, err := f.ReadAt(t.Context(), buf, 0); !errors.Is(err, errDiskFull) {
		t.Fatalf("ReadAt on a full disk: %v, want the disk's error", err)
	}
	if _, err := f.ReadAt(t.Context(), buf[:10], 20_000); !errors.Is(err, errDiskFull) {
		t.Fatalf("ReadAt again on a full disk: %v, want the disk's error", err)
	}

	g.full.Store(false)
	n, err := f.ReadAt(t.Context(), buf, 0)
	if err != nil || !bytes.Equal(buf[:n], data) {
		t.Fatalf("ReadAt once there is room: %d bytes, %v; want the %d of the file", n, err, len(data))
	}
}
