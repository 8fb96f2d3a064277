package node

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/repo"
)

// provideBatch is how many CIDs of the store's listing are handed to the
// router at once by Provide.Strategy "all".
const provideBatch = 1024

// bootstrapTimeout bounds the daemon's joining of the DHT.
const bootstrapTimeout = time.Minute

// announce joins the DHT and hands the router what Provide.Strategy names:
// the pinned roots ("roots"), every block of the pinned DAGs ("pinned"),
// or every stored block ("all"). The router announces them in the
// background and again every reprovide interval. It returns early when
// ctx ends.
func (n *Node) announce(ctx context.Context) {
	bctx, cancel := context.WithTimeout(ctx, bootstrapTimeout)
	err := n.router.Bootstrap(bctx)
	cancel()
	if err != nil {
		slog.Warn("routing: bootstrap", "router", dhtRouter, "err", err)
	}
	roots, err := n.repo.Roots()
	if err != nil {
		slog.Warn("routing: reading roots", "err", err)
	}
	ch, err := n.cacheOf(ctx)
	if err != nil {
		slog.Warn("routing: opening the cache", "err", err)
		return
	}
	for _, c := range ch.Pins() {
		if !slices.ContainsFunc(roots, c.Equals) {
			roots = append(roots, c)
		}
	}
	n.router.ProvideAsync(roots...)
	switch n.strategy {
	case repo.ProvidePinned:
		for _, c := range roots {
			n.provideDAG(ctx, c)
		}
	case repo.ProvideAll:
		n.provideStore(ctx)
	}
}

// provideStore hands the router every block of the store, a batch at a
// time as the listing streams in.
func (n *Node) provideStore(ctx context.Context) {
	keys, err := n.repo.Blockstore().AllKeys(ctx)
	if err != nil {
		slog.Warn("routing: listing the store", "err", err)
		return
	}
	batch := make([]cid.Cid, 0, provideBatch)
	for h := range keys {
		batch = append(batch, cid.NewCidV1(cid.Raw, h))
		if len(batch) == provideBatch {
			n.router.ProvideAsync(batch...)
			batch = batch[:0]
		}
	}
	n.router.ProvideAsync(batch...)
}

// provideDAG hands the router every stored block of root's DAG.
func (n *Node) provideDAG(ctx context.Context, root cid.Cid) {
	ch, err := n.cacheOf(ctx)
	if err != nil {
		slog.Warn("routing: opening the cache", "err", err)
		return
	}
	keys, err := ch.DAG(ctx, root)
	if err != nil {
		slog.Warn("routing: listing a pinned DAG", "cid", root, "err", err)
		return
	}
	n.router.ProvideAsync(keys...)
}

// providePinned hands the router what Provide.Strategy names of root's DAG,
// just pinned (by add, import or pin add): root alone ("roots"), or every
// block ("pinned", "all").
func (n *Node) providePinned(ctx context.Context, root cid.Cid) {
	if n.router == nil {
		return
	}
	n.router.ProvideAsync(root)
	if n.strategy != repo.ProvideRoots {
		n.provideDAG(ctx, root)
	}
}
