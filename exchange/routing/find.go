package routing

import (
	"context"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// findPeerTimeout bounds the search for the addresses of a provider whose
// record came without any.
const findPeerTimeout = 10 * time.Second

// FindProviders looks up peers that provide c, up to max of them (every
// one the lookup finds when max <= 0), and sends each once with the
// addresses to dial it at; a provider whose addresses cannot be found is
// left out, and so is this node. The channel is closed when the lookup
// ends, ctx ends or the Router is closed.
func (r *Router) FindProviders(ctx context.Context, c cid.Cid, max int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || !c.Defined() {
		close(out)
		return out
	}
	if max < 0 {
		max = 0 // the DHT's "find all"
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(r.ctx, cancel)
	r.wg.Go(func() {
		defer close(out)
		defer cancel()
		defer stop()
		// Ask for one more: our own record may take a place.
		count := max
		if count > 0 {
			count++
		}
		sent := 0
		for ai := range r.dht.FindProvidersAsync(ctx, c, count) {
			if ai.ID == r.host.ID() {
				continue
			}
			if ai = r.withAddrs(ctx, ai); len(ai.Addrs) == 0 {
				continue
			}
			select {
			case out <- ai:
			case <-ctx.Done():
				return
			}
			if sent++; sent == max {
				return
			}
		}
	})
	return out
}

// withAddrs fills in the addresses of a provider whose record came without
// any (a DHT drops the addresses it does not keep): those in the
// peerstore, else those a peer lookup finds.
func (r *Router) withAddrs(ctx context.Context, ai peer.AddrInfo) peer.AddrInfo {
	if len(ai.Addrs) > 0 {
		return ai
	}
	if addrs := r.host.Peerstore().Addrs(ai.ID); len(addrs) > 0 {
		ai.Addrs = addrs
		return ai
	}
	ctx, cancel := context.WithTimeout(ctx, findPeerTimeout)
	defer cancel()
	found, err := r.dht.FindPeer(ctx, ai.ID)
	if err != nil {
		r.log.Debug("provider without addresses", "peer", ai.ID, "err", err)
		return ai
	}
	return found
}
