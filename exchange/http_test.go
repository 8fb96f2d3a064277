package exchange_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	lnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/httpnet"
	"github.com/bsfs/bsfs/exchange/session"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/routingtest"
	"github.com/bsfs/bsfs/unixfs"
)

// staticFinder is content routing that names the same providers for every
// CID: the seam a delegated router's answers come in by. It records the
// searches it was asked and whether each one's context ended.
type staticFinder struct {
	providers []peer.AddrInfo
	mu        sync.Mutex
	searches  []context.Context
}

func (f *staticFinder) FindProviders(ctx context.Context, _ cid.Cid, _ int) <-chan peer.AddrInfo {
	f.mu.Lock()
	f.searches = append(f.searches, ctx)
	f.mu.Unlock()
	ch := make(chan peer.AddrInfo, len(f.providers))
	for _, ai := range f.providers {
		ch <- ai
	}
	close(ch)
	return ch
}

func (f *staticFinder) allEnded() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ctx := range f.searches {
		if ctx.Err() == nil {
			return false
		}
	}
	return len(f.searches) > 0
}

// httpNode is a real node with HTTP retrieval on whose content routing
// names providers.
func httpNode(t *testing.T, providers ...peer.AddrInfo) (*testNode, *staticFinder) {
	t.Helper()
	f := &staticFinder{providers: providers}
	n := newNodeWith(t, exchange.Config{
		HTTP:      &httpnet.Config{},
		Providers: f,
		Session:   session.Config{ProviderDelay: 50 * time.Millisecond},
	})
	return n, f
}

// TestHTTPFromKuboGateway: a node with no libp2p connection to Kubo reads
// a multi-block file whose only provider record names Kubo's gateway, byte
// for byte, and counts every block and byte as received over HTTP.
func TestHTTPFromKuboGateway(t *testing.T) {
	kubo := kubotest.StartWith(t, kubotest.Options{Gateway: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := blocktest.RandomBytes(t, 3<<20+12345) // 13 leaves of 256 KiB and a root
	root, err := kubo.Add(ctx, data, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	out, err := kubo.Run(ctx, "refs", "-r", "--unique", root.String())
	if err != nil {
		t.Fatal(err)
	}
	blocks, size := 1, 0
	rootData, err := kubo.BlockGet(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	size += len(rootData)
	for _, line := range strings.Fields(string(out)) {
		c, err := cid.Decode(line)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := kubo.BlockGet(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		blocks++
		size += len(raw)
	}

	gw := peer.AddrInfo{ID: kubo.ID(), Addrs: []multiaddr.Multiaddr{kubo.GatewayAddr()}}
	node, _ := httpNode(t, gw)
	sess := node.ex.NewSession(ctx)
	defer sess.Close()
	f, err := unixfs.New(sess, unixfs.Config{}).Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, len(data)+1)
	n, err := f.ReadAt(ctx, got, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:n], data) {
		t.Fatalf("read %d bytes, want the %d Kubo added", n, len(data))
	}
	if c := node.host.Network().Connectedness(kubo.ID()); c == lnet.Connected {
		t.Fatal("the node connected to Kubo over libp2p")
	}
	s := node.ex.Stats()
	if s.HTTPBlocksReceived != uint64(blocks) || s.HTTPDataReceived != uint64(size) {
		t.Fatalf("HTTP received %d blocks, %d bytes; want %d, %d", s.HTTPBlocksReceived, s.HTTPDataReceived, blocks, size)
	}
	if s.BlocksReceived != s.HTTPBlocksReceived || s.DupBlksReceived != 0 || s.InvalidBlocks != 0 {
		t.Fatalf("stats %+v", s)
	}
	if len(s.HTTPGateways) != 1 || s.HTTPGateways[0] != kubo.ID().String()+" "+kubo.GatewayURL() {
		t.Fatalf("gateways %q, want Kubo's %s", s.HTTPGateways, kubo.GatewayURL())
	}
	if ss := sess.Stats(); len(ss.Peers) != 1 || ss.Peers[0].Peer != kubo.ID() || ss.Peers[0].Blocks != blocks {
		t.Fatalf("session peers %+v, want Kubo's gateway with %d blocks", ss.Peers, blocks)
	}
}

// TestHTTPFetchCancelled: a caller that gives up ends the provider search
// and the request in flight at the gateway.
func TestHTTPFetchCancelled(t *testing.T) {
	entered := make(chan struct{})
	ended := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ipfs/bafkqaaa" {
			return
		}
		if r.Method == http.MethodHead {
			return // "have it": the session then asks for the block
		}
		once.Do(func() { close(entered) })
		<-r.Context().Done()
		close(ended)
	}))
	defer srv.Close()
	pid := routingtest.PeerID(t)
	node, finder := httpNode(t, peer.AddrInfo{ID: pid, Addrs: []multiaddr.Multiaddr{routingtest.HTTPAddr(t, srv.URL)}})

	b, err := block.New(rawV1, blocktest.RandomBytes(t, 1000))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := node.ex.GetBlock(ctx, b.CID)
		done <- err
	}()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway was never asked for the block")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("GetBlock = %v, want context.Canceled", err)
	}
	select {
	case <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("the GET went on after the caller left")
	}
	poll.Until(t, 10*time.Second, "provider search ended", finder.allEnded)
	if has, _ := node.bs.Has(context.Background(), b.CID); has {
		t.Fatal("block stored")
	}
}

// TestHTTPForgedBlock: a gateway that answers with bytes that are not the
// block is dropped; nothing is stored and the block is counted invalid.
func TestHTTPForgedBlock(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("not the block you asked for"))
	}))
	defer srv.Close()
	pid := routingtest.PeerID(t)
	node, _ := httpNode(t, peer.AddrInfo{ID: pid, Addrs: []multiaddr.Multiaddr{routingtest.HTTPAddr(t, srv.URL)}})
	b, err := block.New(rawV1, blocktest.RandomBytes(t, 1000))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := node.ex.GetBlock(ctx, b.CID)
		done <- err
	}()
	poll.Until(t, 10*time.Second, "the forged block counted", func() bool { return node.ex.Stats().InvalidBlocks == 1 })
	poll.Until(t, 10*time.Second, "the gateway dropped", func() bool { return len(node.ex.Stats().HTTPGateways) == 0 })
	cancel()
	<-done
	if has, _ := node.bs.Has(context.Background(), b.CID); has {
		t.Fatal("forged block stored")
	}
	if s := node.ex.Stats(); s.BlocksReceived != 0 || s.HTTPBlocksReceived != 0 {
		t.Fatalf("stats %+v", s)
	}
}
