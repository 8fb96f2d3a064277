package routing_test

import (
	"context"
	"testing"
	"time"

	lnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/exchange/routing"
	"github.com/bsfs/bsfs/internal/poll"
)

// TestBootstrapUnreachable fails Bootstrap when no bootstrap peer answers.
func TestBootstrapUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	gone := newNode(t, routing.Config{})
	info := gone.info()
	if err := gone.host.Close(); err != nil {
		t.Fatal(err)
	}
	n := newNode(t, routing.Config{Bootstrap: []peer.AddrInfo{info}})
	if err := n.r.Bootstrap(ctx); err == nil {
		t.Fatal("Bootstrap to a closed peer succeeded")
	}
}

// Issue 14: a node with too few peers connects to its bootstrap peers
// again, on its own, and again after it is cut off from them.
func TestReconnectToBootstrap(t *testing.T) {
	hubs := []*node{newNode(t, routing.Config{}), newNode(t, routing.Config{})}
	n := newNode(t, routing.Config{
		Bootstrap:         []peer.AddrInfo{hubs[0].info(), hubs[1].info()},
		ReconnectInterval: 20 * time.Millisecond,
	})
	net := n.host.Network()
	connected := func() bool {
		return net.Connectedness(hubs[0].host.ID()) == lnet.Connected && net.Connectedness(hubs[1].host.ID()) == lnet.Connected
	}
	poll.Until(t, 20*time.Second, "connections to the bootstrap peers, with no Bootstrap call", connected)
	for _, h := range hubs {
		if err := net.ClosePeer(h.host.ID()); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 20*time.Second, "reconnection to the bootstrap peers", connected)
}
