package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/internal/api"
)

// errRoutingOff is returned by the routing commands on a node that runs no
// content routing.
var errRoutingOff = errors.New("the daemon runs no content routing (Routing.Type is \"none\" or --routing none was given)")

// FindProviders looks up c's providers, up to max, and calls found with
// each as the lookup finds it.
func (n *Node) FindProviders(ctx context.Context, c cid.Cid, max int, found func(peer.ID) error) error {
	if n.host == nil {
		return api.ErrNoDaemon
	}
	if n.router == nil {
		return errRoutingOff
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the lookup if found fails
	for ai := range n.router.FindProviders(ctx, c, max) {
		if err := found(ai.ID); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Provide announces c, which must be stored here, to the content routing.
func (n *Node) Provide(ctx context.Context, c cid.Cid) error {
	if n.host == nil {
		return api.ErrNoDaemon
	}
	if n.router == nil {
		return errRoutingOff
	}
	cs, err := n.cacheOf(ctx)
	if err != nil {
		return err
	}
	has, err := cs.Has(ctx, c)
	if err != nil {
		return err
	}
	if !has {
		return fmt.Errorf("block %s not found locally, cannot provide", c)
	}
	if len(n.host.Network().Peers()) == 0 {
		return errors.New("cannot provide, no connected peers")
	}
	return n.router.Provide(ctx, c)
}
