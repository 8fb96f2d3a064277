package unixfs

import (
	"context"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
)

// Store is a local block store, such as a *blockstore.Blockstore.
type Store interface {
	Get(ctx context.Context, c cid.Cid) (block.Block, error)
}

// Local returns a BlockGetter that reads s only: a block s does not have
// is an error wrapping block.ErrNotFound (GetBlocks leaves it out and
// ends with that error).
func Local(s Store) BlockGetter { return localGetter{s} }

type localGetter struct{ s Store }

func (l localGetter) GetBlock(ctx context.Context, c cid.Cid) (block.Block, error) {
	return l.s.Get(ctx, c)
}

// localReads is how many blocks one GetBlocks call reads from s at once.
const localReads = 4

// GetBlocks delivers the blocks s has, in their order, reading a few at
// once; the stream ends with the error of the first it could not read, or
// with ctx's.
func (l localGetter) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	for _, c := range cids {
		if err := block.CheckCID(c); err != nil {
			return nil, err
		}
	}
	st := block.NewStream()
	go func() {
		var first, stop error
		get := func(c cid.Cid) (block.Block, error) { return l.s.Get(ctx, c) }
		block.GetAhead(cids, localReads, get, func(c cid.Cid, b block.Block, err error) bool {
			if err != nil && ctx.Err() == nil {
				first = cmpErr(first, err) // missing or unreadable: not delivered
				return true
			}
			if err != nil || !st.Send(b, ctx.Done()) {
				stop = missing(ctx, c)
				return false
			}
			return true
		})
		st.Close(cmpErr(stop, first))
	}()
	return st, nil
}
