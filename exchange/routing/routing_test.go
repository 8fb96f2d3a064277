package routing_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	lnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/network"
	"github.com/bsfs/bsfs/exchange/routing"
	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/poll"
)

// testTimeout bounds each test's network work; a DHT of a handful of nodes
// on loopback answers in well under a second.
const testTimeout = 60 * time.Second

var rawV1 = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}

// node is a bsfs node: a libp2p host on loopback, a flatfs blockstore, an
// exchange and a Router.
type node struct {
	host   host.Host
	bs     *blockstore.Blockstore
	ex     *exchange.Exchange
	r      *routing.Router
	closed bool
}

// newNode starts a node whose DHT keeps loopback addresses, with cfg's
// other settings.
func newNode(t testing.TB, cfg routing.Config) *node {
	t.Helper()
	return newNodeFinding(t, cfg)
}

// newNodeFinding is newNode with the exchange asking others besides the
// DHT for providers, all at once, as Routing.Type "auto" does.
func newNodeFinding(t testing.TB, cfg routing.Config, others ...exchange.ProviderFinder) *node {
	t.Helper()
	return newNodeWith(t, cfg, func(*exchange.Config, *routing.Router) {}, others...)
}

// newNodeWith is newNodeFinding with the exchange's config changed by set,
// which is given the node's Router.
func newNodeWith(t testing.TB, cfg routing.Config, set func(*exchange.Config, *routing.Router), others ...exchange.ProviderFinder) *node {
	t.Helper()
	h, err := network.NewHost(network.HostConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := blockstore.Open(t.TempDir(), blockstore.Config{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg.LoopbackOnLAN = true
	r, err := routing.New(t.Context(), h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The exchange asks the router for providers of what no peer has.
	exCfg := exchange.Config{Providers: routing.Combine(append([]exchange.ProviderFinder{r}, others...)...)}
	set(&exCfg, r)
	ex, err := exchange.New(h, bs, exCfg)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{host: h, bs: bs, ex: ex, r: r}
	t.Cleanup(func() { n.close(t) })
	return n
}

// close closes the node's router, exchange, host and blockstore, once.
func (n *node) close(t testing.TB) {
	if n.closed {
		return
	}
	n.closed = true
	if err := n.r.Close(); err != nil {
		t.Errorf("router close: %v", err)
	}
	n.ex.Close()
	n.host.Close()
	n.bs.Close()
}

func (n *node) info() peer.AddrInfo {
	return peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}
}

// put stores a random block of size bytes on n.
func (n *node) put(t testing.TB, size int) block.Block {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	b, err := block.New(rawV1, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.bs.Put(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	return b
}

// disconnect closes every connection between a and b and checks they are
// apart.
func disconnect(t *testing.T, a host.Host, b peer.ID) {
	t.Helper()
	if err := a.Network().ClosePeer(b); err != nil {
		t.Fatal(err)
	}
	if c := a.Network().Connectedness(b); c == lnet.Connected {
		t.Fatalf("%s still connected to %s", a.ID(), b)
	}
}

// findOne looks up c's providers from n and returns the first.
func findOne(ctx context.Context, t *testing.T, n *node, c cid.Cid) peer.AddrInfo {
	t.Helper()
	var got []peer.AddrInfo
	for ai := range n.r.FindProviders(ctx, c, 1) {
		got = append(got, ai)
	}
	if ctx.Err() != nil {
		t.Fatalf("FindProviders %s: %v", c, ctx.Err())
	}
	if len(got) != 1 {
		t.Fatalf("FindProviders %s with max 1: %d providers", c, len(got))
	}
	return got[0]
}

// fetch does what the exchange does with an unanswered want: connect to the
// provider the DHT named, then get the block over Bitswap.
func fetch(ctx context.Context, t *testing.T, n *node, prov peer.AddrInfo, c cid.Cid, want []byte) {
	t.Helper()
	if len(prov.Addrs) == 0 {
		t.Fatalf("provider %s found without addresses", prov.ID)
	}
	if err := n.host.Connect(ctx, prov); err != nil {
		t.Fatalf("connect to provider %s at %v: %v", prov.ID, prov.Addrs, err)
	}
	got, err := n.ex.GetBlock(ctx, c)
	if err != nil {
		t.Fatalf("GetBlock %s: %v", c, err)
	}
	if !got.CID.Equals(c) || !bytes.Equal(got.Data, want) {
		t.Fatalf("got block %s of %d bytes, want %s of %d", got.CID, len(got.Data), c, len(want))
	}
}

// TestFindThroughDHT builds a chain of six nodes on loopback, one of them
// Kubo: wanter - b1 - b2 - kubo - b3 - holder. Each holder announces a
// block; the wanter, not connected to it, finds it through the DHT (whose
// lookups pass through Kubo), connects and fetches the block. Kubo finds
// the bsfs holder's record too.
func TestFindThroughDHT(t *testing.T) {
	kubo := kubotest.StartWith(t, kubotest.Options{Routing: "dhtserver"})
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	wanter, holder := dhtChain(t, ctx, kubo)

	t.Run("bsfs holder", func(t *testing.T) {
		b := holder.put(t, 100_000)
		if err := holder.r.Provide(ctx, b.CID); err != nil {
			t.Fatal(err)
		}
		// Announcing dialled the whole network: cut the wanter off again.
		disconnect(t, wanter.host, holder.host.ID())
		prov := findOne(ctx, t, wanter, b.CID)
		if prov.ID != holder.host.ID() {
			t.Fatalf("provider %s, want the holder %s", prov.ID, holder.host.ID())
		}
		fetch(ctx, t, wanter, prov, b.CID, b.Data)

		out, err := kubo.Run(ctx, "routing", "findprovs", "--num-providers=1", b.CID.String())
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != holder.host.ID().String() {
			t.Fatalf("kubo routing findprovs: %q, want %s", got, holder.host.ID())
		}
	})

	t.Run("the exchange searches by itself", func(t *testing.T) {
		b := holder.put(t, 50_000)
		if err := holder.r.Provide(ctx, b.CID); err != nil {
			t.Fatal(err)
		}
		disconnect(t, wanter.host, holder.host.ID())
		// No lookup by hand: the want goes unanswered by the wanter's
		// peers, so its session asks the DHT and connects to the holder.
		got, err := wanter.ex.GetBlock(ctx, b.CID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Data, b.Data) {
			t.Fatal("wrong bytes")
		}
		if wanter.host.Network().Connectedness(holder.host.ID()) != lnet.Connected {
			t.Fatal("the wanter got the block without connecting to the holder")
		}
	})

	t.Run("kubo holder", func(t *testing.T) {
		data := make([]byte, 200_000) // one chunk: with raw leaves the root is the raw block
		_, _ = rand.Read(data)
		c, err := kubo.Add(ctx, data, 1, true) // returns once the root is announced
		if err != nil {
			t.Fatal(err)
		}
		if c.Prefix().Codec != cid.Raw {
			t.Fatalf("kubo add gave %s, want a raw CID", c)
		}
		disconnect(t, wanter.host, kubo.ID())
		prov := findOne(ctx, t, wanter, c)
		if prov.ID != kubo.ID() {
			t.Fatalf("provider %s, want Kubo %s", prov.ID, kubo.ID())
		}
		fetch(ctx, t, wanter, prov, c, data)
	})
}

// dhtChain starts a chain of nodes from the wanter to the holder through
// kubo, each only in its neighbours' LAN routing tables, and waits until
// every link is in both tables.
func dhtChain(t *testing.T, ctx context.Context, kubo *kubotest.Node) (wanter, holder *node) {
	t.Helper()
	wanter = newNode(t, routing.Config{})
	b1 := newNode(t, routing.Config{Bootstrap: []peer.AddrInfo{wanter.info()}})
	b2 := newNode(t, routing.Config{Bootstrap: []peer.AddrInfo{b1.info()}})
	kuboInfo := peer.AddrInfo{ID: kubo.ID(), Addrs: kubo.Addrs()[:1]}
	b3 := newNode(t, routing.Config{Bootstrap: []peer.AddrInfo{kuboInfo}})
	holder = newNode(t, routing.Config{Bootstrap: []peer.AddrInfo{b3.info()}})
	for _, n := range []*node{b1, b2, b3, holder} {
		if err := n.r.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	b2Addr, err := multiaddr.NewMultiaddr(b2.host.Addrs()[0].String() + "/p2p/" + b2.host.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := kubo.SwarmConnect(ctx, b2Addr); err != nil {
		t.Fatal(err)
	}

	// Every link of the chain in both routing tables.
	chain := []*node{wanter, b1, b2, nil, b3, holder} // nil is Kubo
	id := func(n *node) peer.ID {
		if n == nil {
			return kubo.ID()
		}
		return n.host.ID()
	}
	inTable := func(n *node, p peer.ID) bool {
		if n != nil {
			return n.r.InLANTable(p)
		}
		peers, err := kubo.DHTPeers(ctx, "lan")
		return err == nil && slices.Contains(peers, p)
	}
	for i := 1; i < len(chain); i++ {
		a, b := chain[i-1], chain[i]
		poll.Until(t, 20*time.Second, fmt.Sprintf("routing tables of link %d (%v %v)", i, inTable(a, id(b)), inTable(b, id(a))), func() bool {
			return inTable(a, id(b)) && inTable(b, id(a))
		})
	}
	return wanter, holder
}

// TestOffline runs a Router with no bootstrap peers: Bootstrap succeeds,
// Provide succeeds without sending anything, and FindProviders ends at once
// with nothing.
func TestOffline(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	n := newNode(t, routing.Config{})
	if err := n.r.Bootstrap(ctx); err != nil {
		t.Fatalf("Bootstrap with no peers: %v", err)
	}
	b := n.put(t, 1000)
	if err := n.r.Provide(ctx, b.CID); err != nil {
		t.Fatalf("Provide offline: %v", err)
	}
	for ai := range n.r.FindProviders(ctx, b.CID, 10) {
		t.Errorf("offline node found provider %s", ai.ID)
	}
	if ctx.Err() != nil {
		t.Fatalf("FindProviders offline did not end by itself: %v", ctx.Err())
	}
}

// TestClosed checks a closed Router refuses work without blocking.
func TestClosed(t *testing.T) {
	n := newNode(t, routing.Config{})
	b := n.put(t, 100)
	if err := n.r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.r.Provide(t.Context(), b.CID); !errors.Is(err, routing.ErrClosed) {
		t.Fatalf("Provide after Close: %v, want ErrClosed", err)
	}
	for ai := range n.r.FindProviders(t.Context(), b.CID, 1) {
		t.Fatalf("closed router found %s", ai.ID)
	}
	if err := n.r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// bsfsChain starts n bsfs nodes, each bootstrapped from the one before, and
// waits until each link is in both LAN routing tables.
func bsfsChain(tb testing.TB, n int) []*node {
	tb.Helper()
	nodes := []*node{newNode(tb, routing.Config{})}
	for i := 1; i < n; i++ {
		prev := nodes[i-1]
		nd := newNode(tb, routing.Config{Bootstrap: []peer.AddrInfo{prev.info()}})
		if err := nd.r.Bootstrap(tb.Context()); err != nil {
			tb.Fatal(err)
		}
		poll.Until(tb, 20*time.Second, "routing tables of the chain", func() bool {
			return nd.r.InLANTable(prev.host.ID()) && prev.r.InLANTable(nd.host.ID())
		})
		nodes = append(nodes, nd)
	}
	return nodes
}

// BenchmarkFindProviders measures one provider lookup, from one end of a
// chain of six bsfs nodes on loopback for a block the other end announced.
func BenchmarkFindProviders(b *testing.B) {
	nodes := bsfsChain(b, 6)
	wanter, holder := nodes[0], nodes[len(nodes)-1]
	const nblocks = 64
	cids := make([]cid.Cid, nblocks)
	for i := range cids {
		cids[i] = holder.put(b, 100).CID
		if err := holder.r.Provide(b.Context(), cids[i]); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; b.Loop(); i++ {
		found := false
		for ai := range wanter.r.FindProviders(b.Context(), cids[i%nblocks], 1) {
			found = ai.ID == holder.host.ID()
		}
		if !found {
			b.Fatal("provider not found")
		}
	}
}
