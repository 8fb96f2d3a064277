package cache

import (
	"context"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/unixfs"
)

// Getter returns g with every fetch held: the blocks a GetBlock or
// GetBlocks call asks for are not evicted until the call has delivered
// them or ended. A unixfs.File asks for its prefetch window in one
// GetBlocks call, so its window is held while it is fetched. If g has
// sessions, so has the result, and their fetches are held too.
func (c *Cache) Getter(g unixfs.BlockGetter) unixfs.BlockGetter {
	h := holdGetter{c: c, g: g}
	if _, ok := g.(unixfs.Sessioner); ok {
		return holdSessioner{h}
	}
	return h
}

type holdGetter struct {
	c *Cache
	g unixfs.BlockGetter
}

func (h holdGetter) GetBlock(ctx context.Context, k cid.Cid) (block.Block, error) {
	defer h.c.Hold(k)()
	return h.g.GetBlock(ctx, k)
}

func (h holdGetter) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	release := h.c.Hold(cids...)
	in, err := h.g.GetBlocks(ctx, cids)
	if err != nil {
		release()
		return nil, err
	}
	out := block.NewStream()
	go func() {
		for b := range in.C() {
			if !out.Send(b, ctx.Done()) {
				// The getter ends in once ctx has ended.
				for range in.C() {
				}
			}
		}
		release()
		out.Close(in.Err())
	}()
	return out, nil
}

type holdSessioner struct{ holdGetter }

var _ unixfs.Sessioner = holdSessioner{}

func (h holdSessioner) NewSession(ctx context.Context) unixfs.BlockGetter {
	return holdGetter{c: h.c, g: h.g.(unixfs.Sessioner).NewSession(ctx)}
}
