package routing_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
	"go.uber.org/goleak"

	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/routing"
	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/routingtest"
	"github.com/bsfs/bsfs/internal/testlog"
	"github.com/bsfs/bsfs/internal/testnode"
	"github.com/bsfs/bsfs/unixfs"
)

// notARouter answers with a web page, as a mistyped URL might.
func notARouter(w http.ResponseWriter, _ *http.Request, _ <-chan struct{}) {
	w.Header().Set("Content-Type", "text/html")
	io.WriteString(w, "<html><body>not a router</body></html>")
}

// brokenNDJSON starts a stream of records and breaks it off with garbage.
func brokenNDJSON(w http.ResponseWriter, _ *http.Request, _ <-chan struct{}) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	io.WriteString(w, "{\"Schema\":\"peer\",\"ID\":\"12D3KooW\n")
}

// hanging sends the headers of a stream, then nothing.
func hanging(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	select {
	case <-r.Context().Done():
	case <-release:
	}
}

// logger logs into buf at every level.
func logger(buf *testlog.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newDelegated(t *testing.T, cfg routing.DelegatedConfig) *routing.Delegated {
	t.Helper()
	d, err := routing.NewDelegated(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("delegated close: %v", err)
		}
	})
	return d
}

// addFile stores size random bytes on n as a UnixFS file of several blocks.
func addFile(t *testing.T, n *testnode.Node, size int) (cid.Cid, []byte) {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	root, err := unixfs.AddFile(t.Context(), n.Store, bytes.NewReader(data), unixfs.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return root, data
}

// fileSize spans five 256 KiB leaves under a root: a DAG of six blocks.
const fileSize = 1<<20 + 100<<10

// readFile reads root's file through g.
func readFile(ctx context.Context, t *testing.T, g unixfs.BlockGetter, root cid.Cid) []byte {
	t.Helper()
	f, err := unixfs.New(g, unixfs.Config{}).Open(ctx, root)
	if err != nil {
		t.Fatalf("open %s: %v", root, err)
	}
	defer f.Close()
	var got bytes.Buffer
	buf := make([]byte, 256<<10)
	for off := int64(0); ; {
		n, err := f.ReadAt(ctx, buf, off)
		got.Write(buf[:n])
		off += int64(n)
		if errors.Is(err, io.EOF) {
			return got.Bytes()
		}
		if err != nil {
			t.Fatalf("read %s at %d: %v", root, off, err)
		}
	}
}

func collect(ch <-chan peer.AddrInfo) []peer.ID {
	var ids []peer.ID
	for ai := range ch {
		ids = append(ids, ai.ID)
	}
	return ids
}

// TestDelegatedFetch: a router names a bsfs node as the provider of a
// file; a node with no connection to it and the router as its only
// content routing fetches the file's six blocks, whether the router
// answers NDJSON or JSON.
func TestDelegatedFetch(t *testing.T) {
	for _, jsonOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("jsonOnly=%v", jsonOnly), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			holder := testnode.New(t, exchange.Config{})
			root, data := addFile(t, holder, fileSize)
			srv := routingtest.NewRouter(t, jsonOnly)
			srv.Add(root, routingtest.PeerRecord(peer.AddrInfo{ID: holder.Host.ID(), Addrs: holder.Host.Addrs()}, "transport-bitswap"))

			d := newDelegated(t, routing.DelegatedConfig{Routers: []string{srv.URL}})
			wanter := testnode.New(t, exchange.Config{Providers: d})
			if len(wanter.Host.Network().ConnsToPeer(holder.Host.ID())) != 0 {
				t.Fatal("wanter connected to holder before the fetch")
			}
			if got := readFile(ctx, t, wanter.Ex, root); !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, not the %d added", len(got), len(data))
			}
			reqs := srv.Requests()
			want := "/routing/v1/providers/" + root.String() + "?"
			if len(reqs) == 0 || !strings.HasPrefix(reqs[0], want) || !strings.Contains(reqs[0], "application/x-ndjson") {
				t.Fatalf("router requests %q: want the first for %s accepting NDJSON", reqs, want)
			}
		})
	}
}

// TestDelegatedRecords: of the records a router gives, those naming a
// Bitswap provider (transport-bitswap among the protocols, or none
// listed) come out, each peer once, whatever the router lists first;
// gateway-only providers, records of other schemas, records without ID or
// addresses, and this node itself do not. max bounds the count.
func TestDelegatedRecords(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	c := cid.NewCidV1(cid.Raw, mustHash(t, "records"))
	srv := routingtest.NewRouter(t, false)
	ai := func(port int) peer.AddrInfo {
		a, err := peer.AddrInfoFromString(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", port, routingtest.PeerID(t)))
		if err != nil {
			t.Fatal(err)
		}
		return *a
	}
	bitswap, both, unlisted, gateway, noAddrs, self := ai(1), ai(2), ai(3), ai(4), ai(5), ai(6)
	noAddrs.Addrs = nil
	srv.Add(c, routingtest.PeerRecord(gateway, "transport-ipfs-gateway-http"))
	srv.Add(c, routingtest.PeerRecord(bitswap, "transport-bitswap"))
	srv.Add(c, routingtest.PeerRecord(both, "transport-ipfs-gateway-http", "transport-bitswap"))
	srv.Add(c, routingtest.PeerRecord(unlisted))
	srv.Add(c, routingtest.PeerRecord(noAddrs, "transport-bitswap"))
	srv.Add(c, routingtest.PeerRecord(self, "transport-bitswap"))
	srv.Add(c, routingtest.PeerRecord(bitswap, "transport-bitswap")) // twice
	srv.Add(c, map[string]any{"Schema": "peer", "Addrs": []string{"/ip4/127.0.0.1/tcp/7"}})
	srv.Add(c, map[string]any{"Schema": "future", "ID": ai(8).ID.String()})
	// A second router knows one of them too.
	srv2 := routingtest.NewRouter(t, true)
	srv2.Add(c, routingtest.PeerRecord(both, "transport-bitswap"))

	d := newDelegated(t, routing.DelegatedConfig{Routers: []string{srv.URL, srv2.URL}, Self: self.ID})
	got := collect(d.FindProviders(ctx, c, 0))
	want := []peer.ID{bitswap.ID, both.ID, unlisted.ID}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("providers %v, want %v", got, want)
	}
	if got := collect(d.FindProviders(ctx, c, 2)); len(got) != 2 {
		t.Fatalf("max 2: %d providers %v", len(got), got)
	}
	// A node that fetches over HTTP too takes the gateway-only provider,
	// and asks the routers for it.
	dh := newDelegated(t, routing.DelegatedConfig{Routers: []string{srv.URL, srv2.URL}, Self: self.ID, HTTP: true})
	got = collect(dh.FindProviders(ctx, c, 0))
	want = []peer.ID{bitswap.ID, both.ID, unlisted.ID, gateway.ID}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("providers with HTTP %v, want %v", got, want)
	}
	if seen := srv.Requests(); len(seen) == 0 || !strings.Contains(seen[len(seen)-1], "transport-ipfs-gateway-http") {
		t.Errorf("router asked with %q, want the gateway transport in filter-protocols", seen)
	}
	if ctx.Err() != nil {
		t.Fatal(ctx.Err())
	}
}

// TestDelegatedFaultyRouters: next to a router that answers, one fails
// with 500, one answers a web page, one breaks its NDJSON stream and one
// hangs after its headers. The lookup still yields the provider, ends once
// the hanging router's time is up, and logs a warning naming each failing
// router and the CID, and none naming the good one; a fetch through the
// same routers succeeds.
func TestDelegatedFaultyRouters(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	holder := testnode.New(t, exchange.Config{})
	root, data := addFile(t, holder, fileSize)
	good := routingtest.NewRouter(t, false)
	good.Add(root, routingtest.PeerRecord(peer.AddrInfo{ID: holder.Host.ID(), Addrs: holder.Host.Addrs()}, "transport-bitswap"))
	bad := []string{
		routingtest.Faulty(t, routingtest.Failing500),
		routingtest.Faulty(t, notARouter),
		routingtest.Faulty(t, brokenNDJSON),
		routingtest.Faulty(t, hanging),
	}
	var logs testlog.Buffer
	const timeout = time.Second
	d := newDelegated(t, routing.DelegatedConfig{
		Routers: append(slices.Clone(bad), good.URL),
		Timeout: timeout,
		Logger:  logger(&logs),
	})

	start := time.Now()
	got := collect(d.FindProviders(ctx, root, 0))
	took := time.Since(start)
	if !slices.Equal(got, []peer.ID{holder.Host.ID()}) {
		t.Fatalf("providers %v, want the holder %s", got, holder.Host.ID())
	}
	if took < timeout || took > timeout+10*time.Second {
		t.Errorf("lookup took %v with a hanging router and a %v timeout", took, timeout)
	}
	for _, u := range bad {
		if !routingtest.Warned(logs.String(), u, root) {
			t.Errorf("no warning names router %s and %s; log:\n%s", u, root, logs.String())
		}
	}
	if routingtest.Warned(logs.String(), good.URL, root) {
		t.Errorf("a warning names the good router; log:\n%s", logs.String())
	}

	wanter := testnode.New(t, exchange.Config{Providers: d})
	if got := readFile(ctx, t, wanter.Ex, root); !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, not the %d added", len(got), len(data))
	}
}

// TestDelegatedCancel: a lookup waiting on a hanging router ends as soon
// as its context is cancelled, logs no failure (the router is not at
// fault), and leaves no goroutine behind; so does one cut short by Close.
func TestDelegatedCancel(t *testing.T) {
	arrived := make(chan struct{}, 1)
	hang := routingtest.Faulty(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		arrived <- struct{}{}
		hanging(w, r, release)
	})
	c := cid.NewCidV1(cid.Raw, mustHash(t, "cancel"))
	for _, how := range []string{"cancel", "close"} {
		t.Run(how, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			var logs testlog.Buffer
			d, err := routing.NewDelegated(routing.DelegatedConfig{Routers: []string{hang}, Logger: logger(&logs)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			ch := d.FindProviders(ctx, c, 0)
			// Stop the lookup once the router has the request.
			select {
			case <-arrived:
			case <-time.After(testTimeout):
				t.Fatal("no request reached the router")
			}
			if how == "cancel" {
				cancel()
			} else if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case ai, ok := <-ch:
				if ok {
					t.Fatalf("provider %v from a hanging router", ai)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("lookup still running 10s after it was stopped")
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("a stopped lookup logged a failure:\n%s", logs.String())
			}
			goleak.VerifyNone(t, before)
		})
	}
}

func mustHash(t *testing.T, s string) []byte {
	t.Helper()
	c, err := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c.Hash()
}

// TestAutoRouterOnly: Routing.Type "auto" with a DHT that knows nobody (no
// bootstrap peer) and a router that names the provider: the node fetches
// the file, not connected to the provider beforehand.
func TestAutoRouterOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	holder := testnode.New(t, exchange.Config{})
	root, data := addFile(t, holder, fileSize)
	srv := routingtest.NewRouter(t, false)
	srv.Add(root, routingtest.PeerRecord(peer.AddrInfo{ID: holder.Host.ID(), Addrs: holder.Host.Addrs()}, "transport-bitswap"))
	d := newDelegated(t, routing.DelegatedConfig{Routers: []string{srv.URL}})
	wanter := newNodeFinding(t, routing.Config{}, d)
	if err := wanter.r.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readFile(ctx, t, wanter.ex, root); !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, not the %d added", len(got), len(data))
	}
	if len(srv.Requests()) == 0 {
		t.Fatal("the router was never asked")
	}
}

// TestAutoDHTOnly: Routing.Type "auto" where the router fails (500) and
// the DHT knows the provider, two hops away: the lookup names the
// provider, the log names the failing router, and the node fetches the
// block.
func TestAutoDHTOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	bad := routingtest.Faulty(t, routingtest.Failing500)
	var logs testlog.Buffer
	d := newDelegated(t, routing.DelegatedConfig{Routers: []string{bad}, Logger: logger(&logs)})
	mid := newNode(t, routing.Config{})
	wanter := newNodeFinding(t, routing.Config{Bootstrap: []peer.AddrInfo{mid.info()}}, d)
	holder := newNode(t, routing.Config{Bootstrap: []peer.AddrInfo{mid.info()}})
	for _, n := range []*node{wanter, holder} {
		if err := n.r.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 20*time.Second, "routing tables", func() bool {
		return mid.r.InLANTable(wanter.host.ID()) && mid.r.InLANTable(holder.host.ID())
	})
	b := holder.put(t, 100<<10)
	if err := holder.r.Provide(ctx, b.CID); err != nil {
		t.Fatal(err)
	}

	// The lookup ends when both have answered: the warning is out by then.
	got := collect(routing.Combine(wanter.r, d).FindProviders(ctx, b.CID, 0))
	if !slices.Equal(got, []peer.ID{holder.host.ID()}) {
		t.Fatalf("providers %v, want the holder %s", got, holder.host.ID())
	}
	if !routingtest.Warned(logs.String(), bad, b.CID) {
		t.Fatalf("no warning names router %s and %s; log:\n%s", bad, b.CID, logs.String())
	}
	disconnect(t, wanter.host, holder.host.ID())
	blk, err := wanter.ex.GetBlock(ctx, b.CID)
	if err != nil {
		t.Fatalf("GetBlock %s: %v", b.CID, err)
	}
	if !bytes.Equal(blk.Data, b.Data) {
		t.Fatal("block data differs")
	}
}

// TestAutoCancel: an "auto" lookup, the DHT (which has a peer) and a
// hanging router asked at once, ends as soon as its context is cancelled
// and leaves no goroutine behind.
func TestAutoCancel(t *testing.T) {
	arrived := make(chan struct{}, 1)
	hang := routingtest.Faulty(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		arrived <- struct{}{}
		hanging(w, r, release)
	})
	chain := bsfsChain(t, 2)
	d := newDelegated(t, routing.DelegatedConfig{Routers: []string{hang}})
	auto := routing.Combine(chain[1].r, d)
	c := cid.NewCidV1(cid.Raw, mustHash(t, "auto cancel"))

	before := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := auto.FindProviders(ctx, c, 0)
	select {
	case <-arrived:
	case <-time.After(testTimeout):
		t.Fatal("no request reached the router")
	}
	cancel()
	select {
	case ai, ok := <-ch:
		if ok {
			t.Fatalf("provider %v of a CID nobody has", ai)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("lookup still running 10s after it was cancelled")
	}
	goleak.VerifyNone(t, before)
}
