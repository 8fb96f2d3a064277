package routing

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

const (
	// bootstrapSettle bounds how long Bootstrap waits, after connecting,
	// for the routing tables to take in the bootstrap peers.
	bootstrapSettle = 10 * time.Second
	// settlePoll is how often Bootstrap looks at the routing tables.
	settlePoll = 50 * time.Millisecond
)

// Bootstrap connects to the bootstrap peers, waits up to ten seconds (or
// until ctx ends) for them to enter the routing tables, starts a refresh
// of the tables and has the CIDs not yet announced sent. It fails only
// when bootstrap peers are configured and none could be reached.
func (r *Router) Bootstrap(ctx context.Context) error {
	errs := make([]error, len(r.bootstrap))
	var wg sync.WaitGroup
	for i, ai := range r.bootstrap {
		if ai.ID == r.host.ID() {
			continue
		}
		wg.Go(func() {
			if err := r.host.Connect(ctx, ai); err != nil {
				errs[i] = fmt.Errorf("%s: %w", ai.ID, err)
			}
		})
	}
	wg.Wait()
	others, connected := 0, 0
	for i, ai := range r.bootstrap {
		if ai.ID != r.host.ID() {
			others++
			if errs[i] == nil {
				connected++
			}
		}
	}
	if others > 0 && connected == 0 {
		return fmt.Errorf("routing: no bootstrap peer reachable: %w", errors.Join(errs...))
	}
	if connected > 0 {
		r.settle(ctx)
	}
	if err := r.dht.Bootstrap(ctx); err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
	return nil
}

// settle waits until a routing table has a peer: the DHT takes a connected
// peer in only once identify and a check query have succeeded.
func (r *Router) settle(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, bootstrapSettle)
	defer cancel()
	tick := time.NewTicker(settlePoll)
	defer tick.Stop()
	for !r.hasPeers() {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// hasPeers reports whether either DHT has a peer in its routing table.
func (r *Router) hasPeers() bool {
	return r.dht.WAN.RoutingTable().Size() > 0 || r.dht.LAN.RoutingTable().Size() > 0
}

// keepPeers connects to the bootstrap peers not connected whenever fewer
// than minPeers peers are, checking every reconnect interval, so that a
// node cut off (a network change, a laptop waking) rejoins.
func (r *Router) keepPeers() {
	tick := time.NewTicker(r.reconnect)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
		if len(r.host.Network().Peers()) >= r.minPeers {
			continue
		}
		var wg sync.WaitGroup
		for _, ai := range r.bootstrap {
			if ai.ID == r.host.ID() || r.host.Network().Connectedness(ai.ID) == network.Connected {
				continue
			}
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(r.ctx, r.reconnect)
				defer cancel()
				if err := r.host.Connect(ctx, ai); err != nil {
					r.log.Debug("reconnecting to a bootstrap peer", "peer", ai.ID, "err", err)
				}
			})
		}
		wg.Wait()
	}
}
