package node

import (
	"context"

	"github.com/bsfs/bsfs/cache"
	"github.com/bsfs/bsfs/exchange"
	mountfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/unixfs"
)

// CacheUsage returns the cache's quota and use.
func (n *Node) CacheUsage(ctx context.Context) (cache.Usage, error) {
	c, err := n.cacheOf(ctx)
	if err != nil {
		return cache.Usage{}, err
	}
	return c.Usage(), nil
}

// DiskFigures are u as df shows them: the quota as the size (the used bytes
// when there is no quota), and the bytes of fetched blocks as used.
func DiskFigures(u cache.Usage) (total, used uint64) {
	used = uint64(max(u.Used, 0))
	if u.Quota < 0 {
		return used, used
	}
	return uint64(u.Quota), used
}

// cacheUsage reports the cache's figures for df on a mount of this node.
func (n *Node) cacheUsage() (total, used uint64) { return DiskFigures(n.cache.Usage()) }

// NewSession returns a getter whose fetches share one exchange session
// until ctx ends; offline it reads the local store.
func (n *Node) NewSession(ctx context.Context) unixfs.BlockGetter {
	if n.ex == nil {
		return unixfs.Local(n.repo.Blockstore())
	}
	return n.ex.NewSession(ctx)
}

// Mount returns what a mount of this node's own exchange reads through
// (each read's blocks held in the cache) and cfg completed with the
// node's roots, store, cache usage and read latency histogram.
func (n *Node) Mount(cfg mountfs.Config) (unixfs.BlockGetter, mountfs.Config) {
	cfg.UnixFS.Haser = n.repo.Blockstore()
	cfg.Roots = n
	cfg.Usage = n.cacheUsage
	cfg.ReadLatency = n.readLatency
	return n.cache.Getter(exchangeBlocks{n.ex}), cfg
}

// exchangeBlocks is the exchange of the node the mount runs: blocks are
// checked once, by the exchange, and each open file reads through a
// session of its own.
type exchangeBlocks struct{ *exchange.Exchange }

// NewSession starts a session for one file's fetches, ended with ctx.
func (e exchangeBlocks) NewSession(ctx context.Context) unixfs.BlockGetter {
	return e.Exchange.NewSession(ctx)
}

var _ unixfs.Sessioner = exchangeBlocks{}
