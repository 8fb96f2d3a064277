package main

import (
	"context"
	"errors"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
)

// apiParallelism bounds the block requests apiBlocks.GetBlocks has in
// flight to the daemon.
const apiParallelism = 16

// apiBlocks reads blocks through a running daemon: a unixfs.BlockGetter
// and unixfs.Haser over the API. The daemon checks every block it fetches
// against its CID, so the bytes are taken as they come.
type apiBlocks struct{ n node }

// GetBlock fetches c through the daemon, which asks its peers if needed.
func (a apiBlocks) GetBlock(ctx context.Context, c cid.Cid) (block.Block, error) {
	data, err := a.n.GetBlock(ctx, c)
	if err != nil {
		return block.Block{}, err
	}
	return block.Block{CID: c, Data: data}, nil
}

// GetBlocks fetches cids with parallel requests and delivers each block
// fetched, in the order they arrive; the channel is closed once every
// request has ended, or ctx has.
func (a apiBlocks) GetBlocks(ctx context.Context, cids []cid.Cid) (<-chan block.Block, error) {
	for _, c := range cids {
		if err := block.CheckCID(c); err != nil {
			return nil, err
		}
	}
	out := make(chan block.Block)
	todo := make(chan cid.Cid, len(cids))
	for _, c := range cids {
		todo <- c
	}
	close(todo)
	var wg sync.WaitGroup
	for range min(apiParallelism, len(cids)) {
		wg.Go(func() {
			for c := range todo {
				b, err := a.GetBlock(ctx, c)
				if err != nil {
					continue // not delivered, like the exchange
				}
				select {
				case out <- b:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out, nil
}

// Has reports whether the daemon stores c.
func (a apiBlocks) Has(ctx context.Context, c cid.Cid) (bool, error) {
	_, err := a.n.BlockSize(ctx, c)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, block.ErrNotFound):
		return false, nil
	}
	return false, err
}
