package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/httpnet"
	"github.com/bsfs/bsfs/internal/routingtest"
	"github.com/bsfs/bsfs/metrics"
)

// gatewayFinder names one HTTP gateway as the provider of every block.
type gatewayFinder struct{ ai peer.AddrInfo }

func (f gatewayFinder) FindProviders(context.Context, cid.Cid, int) <-chan peer.AddrInfo {
	ch := make(chan peer.AddrInfo, 1)
	ch <- f.ai
	close(ch)
	return ch
}

// TestScrapeHTTP fetches a block from a trustless gateway on loopback and
// checks the scrape counts it apart.
func TestScrapeHTTP(t *testing.T) {
	b, err := block.New(cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}, []byte(strings.Repeat("y", 5000)))
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ipfs/bafkqaaa":
		case "/ipfs/" + b.CID.String():
			w.Write(b.Data)
		default:
			http.NotFound(w, r)
		}
	}))
	defer gw.Close()
	addr := routingtest.HTTPAddr(t, gw.URL)
	_, _, other := node(t, exchange.Config{}) // only its peer ID is used
	m := metrics.New()
	client, _, _ := node(t, exchange.Config{
		HTTP:      &httpnet.Config{},
		Providers: gatewayFinder{peer.AddrInfo{ID: other.ID, Addrs: []ma.Multiaddr{addr}}},
	})
	if err := m.Watch(client); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := client.GetBlock(ctx, b.CID); err != nil {
		t.Fatal(err)
	}
	srv, err := m.Serve("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	body := get(t, "http://"+srv.Addr().String()+"/metrics")
	for _, want := range []string{
		"bsfs_bitswap_blocks_received_total 1",
		"bsfs_bitswap_http_blocks_received_total 1",
		"bsfs_bitswap_http_data_received_bytes_total 5000",
		"bsfs_bitswap_http_gateways 1",
		"bsfs_bitswap_peers 0",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("scrape lacks %q", want)
		}
	}
}
