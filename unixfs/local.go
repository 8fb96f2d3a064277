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

// GetBlocks delivers the blocks s has; the stream ends with the error of
// the first it could not read, or with ctx's.
func (l localGetter) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	for _, c := range cids {
		if err := block.CheckCID(c); err != nil {
			return nil, err
		}
	}
	st := block.NewStream()
	go func() {
		var first error
		for _, c := range cids {
			b, err := l.s.Get(ctx, c)
			if err != nil && ctx.Err() == nil {
				first = cmpErr(first, err) // missing or unreadable: not delivered
				continue
			}
			if err != nil || !st.Send(b, ctx.Done()) {
				st.Close(missing(ctx, c))
				return
			}
		}
		st.Close(first)
	}()
	return st, nil
}
