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
// is an error wrapping block.ErrNotFound (GetBlocks leaves it out).
func Local(s Store) BlockGetter { return localGetter{s} }

type localGetter struct{ s Store }

func (l localGetter) GetBlock(ctx context.Context, c cid.Cid) (block.Block, error) {
	return l.s.Get(ctx, c)
}

func (l localGetter) GetBlocks(ctx context.Context, cids []cid.Cid) (<-chan block.Block, error) {
	for _, c := range cids {
		if err := block.CheckCID(c); err != nil {
			return nil, err
		}
	}
	out := make(chan block.Block)
	go func() {
		defer close(out)
		for _, c := range cids {
			b, err := l.s.Get(ctx, c)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				continue // missing or unreadable: not delivered
			}
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
