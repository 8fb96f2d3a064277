package kubotest

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	lnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/multiformats/go-multiaddr"

	"github.com/bsfs/bsfs/internal/poll"
)

// Dial has the node connect to h at h's first address, and waits until h
// sees it connected.
func (n *Node) Dial(ctx context.Context, t testing.TB, h host.Host) {
	t.Helper()
	p2p, err := multiaddr.NewMultiaddr("/p2p/" + h.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := n.SwarmConnect(ctx, h.Addrs()[0].Encapsulate(p2p)); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "kubo connected", func() bool {
		return h.Network().Connectedness(n.ID()) == lnet.Connected
	})
}
