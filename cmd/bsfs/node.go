package main

import (
	"context"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/internal/api"
	"github.com/bsfs/bsfs/internal/node"
	"github.com/bsfs/bsfs/unixfs"
)

// daemonNode is what openNode returns, and withNode and withDaemon run
// commands on: the repository opened in this process (*node.Node), or a
// running daemon through its local API (*api.Client). Commands take the
// smaller interfaces below, of what each uses.
type daemonNode interface {
	api.Backend
	// Online reports whether the node fetches from peers.
	Online() bool
	Close() error
}

var (
	_ daemonNode = (*node.Node)(nil)
	_ daemonNode = (*api.Client)(nil)
)

// blockFetcher is what reading UnixFS, exporting and a mount through the
// daemon fetch blocks from.
type blockFetcher interface {
	GetBlock(ctx context.Context, c cid.Cid) ([]byte, error)
	GetBlocks(ctx context.Context, cids []cid.Cid) (<-chan block.Block, error)
	NewSession(ctx context.Context) unixfs.BlockGetter
}

// blockWriterOf is what add and import store blocks through.
type blockWriterOf interface {
	BlockWriter(ctx context.Context) (api.BlockWriter, error)
}

// nodeBlocks reads blocks through n: the unixfs.BlockGetter of cat, get,
// export and a mount through the daemon.
type nodeBlocks struct{ n blockFetcher }

var (
	_ unixfs.BlockGetter = nodeBlocks{}
	_ unixfs.Sessioner   = nodeBlocks{}
)

// GetBlock returns c's block, checked against c.
func (b nodeBlocks) GetBlock(ctx context.Context, c cid.Cid) (block.Block, error) {
	data, err := b.n.GetBlock(ctx, c)
	if err != nil {
		return block.Block{}, err
	}
	return block.Verified(c, data)
}

// GetBlocks delivers cids' blocks as they arrive.
func (b nodeBlocks) GetBlocks(ctx context.Context, cids []cid.Cid) (<-chan block.Block, error) {
	return b.n.GetBlocks(ctx, cids)
}

// NewSession makes sessions a reader of nodeBlocks can use.
func (b nodeBlocks) NewSession(ctx context.Context) unixfs.BlockGetter {
	return b.n.NewSession(ctx)
}
