package routing_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/routing"
	"github.com/bsfs/bsfs/internal/poll"
)

// TestDeferredProvide announces CIDs provided while offline: once the node
// has peers, after Bootstrap, or at the next reprovide.
func TestDeferredProvide(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	hub := newNode(t, routing.Config{})
	seeker := newNode(t, routing.Config{Bootstrap: []peer.AddrInfo{hub.info()}})
	if err := seeker.r.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	found := func(c cid.Cid, p peer.ID) bool {
		for ai := range seeker.r.FindProviders(ctx, c, 1) {
			if ai.ID == p {
				return true
			}
		}
		return false
	}

	t.Run("after Bootstrap", func(t *testing.T) {
		n := newNode(t, routing.Config{Bootstrap: []peer.AddrInfo{hub.info()}, ReprovideInterval: -1})
		b := n.put(t, 1000)
		if err := n.r.Provide(ctx, b.CID); err != nil {
			t.Fatal(err)
		}
		if found(b.CID, n.host.ID()) {
			t.Fatal("found before the provider had any peer")
		}
		if err := n.r.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 20*time.Second, "provider found after Bootstrap", func() bool { return found(b.CID, n.host.ID()) })
	})

	t.Run("at reprovide", func(t *testing.T) {
		n := newNode(t, routing.Config{ReprovideInterval: 200 * time.Millisecond})
		b := n.put(t, 1000)
		if err := n.r.Provide(ctx, b.CID); err != nil {
			t.Fatal(err)
		}
		// A plain connection, no Bootstrap: only the reprovider announces.
		if err := n.host.Connect(ctx, hub.info()); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, 20*time.Second, "provider found after a reprovide", func() bool { return found(b.CID, n.host.ID()) })
	})
}

// TestProvideAsync: ProvideAsync announces without waiting, once the
// router has peers; given to the exchange as Config.Stored, the router
// announces each block fetched from a peer and stored (Provide.Strategy
// "all"), and a block the node did not fetch is not announced.
func TestProvideAsync(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	hub := newNode(t, routing.Config{})
	boot := routing.Config{Bootstrap: []peer.AddrInfo{hub.info()}, ReprovideInterval: -1}
	seeker := newNode(t, boot)
	holder := newNode(t, boot)
	fetcher := newNodeWith(t, boot, func(c *exchange.Config, r *routing.Router) { c.Stored = r })
	for _, n := range []*node{seeker, holder, fetcher} {
		if err := n.r.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	providers := func(c cid.Cid) []peer.ID {
		var ids []peer.ID
		for ai := range seeker.r.FindProviders(ctx, c, 0) {
			ids = append(ids, ai.ID)
		}
		return ids
	}

	kept := fetcher.put(t, 1000)
	fetcher.r.ProvideAsync(kept.CID)
	poll.Until(t, 20*time.Second, "a block given to ProvideAsync found", func() bool {
		return slices.Contains(providers(kept.CID), fetcher.host.ID())
	})

	fetched, other := holder.put(t, 2000), holder.put(t, 3000)
	fetch(ctx, t, fetcher, holder.info(), fetched.CID, fetched.Data)
	poll.Until(t, 20*time.Second, "the fetcher found as provider of what it fetched", func() bool {
		return slices.Contains(providers(fetched.CID), fetcher.host.ID())
	})
	if got := providers(other.CID); slices.Contains(got, fetcher.host.ID()) {
		t.Errorf("providers of a block the fetcher never had: %v, the fetcher among them", got)
	}
}

// BenchmarkProvide measures one announcement (a lookup of the closest peers
// and a record sent to each) in a chain of six bsfs nodes on loopback.
func BenchmarkProvide(b *testing.B) {
	nodes := bsfsChain(b, 6)
	holder := nodes[len(nodes)-1]
	for b.Loop() {
		b.StopTimer()
		c := holder.put(b, 100).CID
		b.StartTimer()
		if err := holder.r.Provide(b.Context(), c); err != nil {
			b.Fatal(err)
		}
	}
}
