package metrics_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/internal/testnode"
	"github.com/bsfs/bsfs/metrics"
)

func node(t *testing.T, cfg exchange.Config) (*exchange.Exchange, *blockstore.Blockstore, peer.AddrInfo) {
	t.Helper()
	n := testnode.New(t, cfg)
	return n.Ex, n.Store, peer.AddrInfo{ID: n.Host.ID(), Addrs: n.Host.Addrs()}
}

// TestScrapeAfterFetch fetches a block between two real nodes and checks the
// scrape shows it: the counters, the latency histogram, pprof.
func TestScrapeAfterFetch(t *testing.T) {
	m := metrics.New()
	client, _, _ := node(t, exchange.Config{BlockLatency: m.BlockLatency.Observe})
	_, sbs, sinfo := node(t, exchange.Config{})
	if err := m.Watch(client); err != nil {
		t.Fatal(err)
	}
	b, err := block.New(cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}, []byte(strings.Repeat("x", 5000)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sbs.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := client.Network().Connect(ctx, sinfo); err != nil {
		t.Fatal(err)
	}
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
		"bsfs_bitswap_data_received_bytes_total 5000",
		"bsfs_bitswap_peers 1",
		"bsfs_bitswap_wantlist_size 0",
		"bsfs_get_block_seconds_count 1",
		"go_goroutines",
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, want+" ") {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if p := get(t, "http://"+srv.Addr().String()+"/debug/pprof/"); !strings.Contains(p, "goroutine") {
		t.Error("pprof index missing")
	}
}

func TestRefusesPublicAddress(t *testing.T) {
	m := metrics.New()
	if _, err := m.Serve("0.0.0.0:0", false); err == nil {
		t.Fatal("served metrics on 0.0.0.0 without being asked to")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
