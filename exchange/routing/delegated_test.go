package routing_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
	"go.uber.org/goleak"

	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/routing"
	"github.com/bsfs/bsfs/internal/testnode"
	"github.com/bsfs/bsfs/unixfs"
)

// routerServer is a delegated router on 127.0.0.1 speaking the Routing V1
// API: GET /routing/v1/providers/{cid} is answered with the records put
// under the CID's multihash, as NDJSON when the request accepts it (boxo's
// client asks for application/x-ndjson first) and as JSON otherwise. It
// applies no filter of its own, as a router predating IPIP-484 does.
type routerServer struct {
	*httptest.Server
	jsonOnly bool // answer JSON even to a request that accepts NDJSON

	mu       sync.Mutex
	records  map[string][]map[string]any
	requests []string // "<path>?<query> Accept: <accept>" of each request
}

func newRouterServer(t *testing.T, jsonOnly bool) *routerServer {
	t.Helper()
	s := &routerServer{jsonOnly: jsonOnly, records: make(map[string][]map[string]any)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /routing/v1/providers/{cid}", s.providers)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// add makes the server name rec among c's providers.
func (s *routerServer) add(c cid.Cid, rec map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[string(c.Hash())] = append(s.records[string(c.Hash())], rec)
}

func (s *routerServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func (s *routerServer) providers(w http.ResponseWriter, r *http.Request) {
	c, err := cid.Decode(r.PathValue("cid"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	accept := r.Header.Get("Accept")
	s.mu.Lock()
	recs := slices.Clone(s.records[string(c.Hash())])
	s.requests = append(s.requests, r.URL.RequestURI()+" Accept: "+accept)
	s.mu.Unlock()
	if !s.jsonOnly && strings.Contains(accept, "application/x-ndjson") {
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w) // one record a line
		for _, rec := range recs {
			if err := enc.Encode(rec); err != nil {
				return
			}
		}
		return
	}
	if recs == nil {
		recs = []map[string]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"Providers": recs})
}

// peerRecord is the Routing V1 record of a provider reachable at ai over
// protocols (left out of the record when none are given).
func peerRecord(ai peer.AddrInfo, protocols ...string) map[string]any {
	addrs := make([]string, 0, len(ai.Addrs))
	for _, a := range ai.Addrs {
		addrs = append(addrs, a.String())
	}
	rec := map[string]any{"Schema": "peer", "ID": ai.ID.String(), "Addrs": addrs}
	if len(protocols) > 0 {
		rec["Protocols"] = protocols
	}
	return rec
}

// faultyRouter is a router on 127.0.0.1 whose every answer is handler's.
// A handler that blocks should also return once release is closed, which
// happens before the server is closed.
func faultyRouter(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, release <-chan struct{})) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler(w, r, release)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	return srv.URL
}

func failing500(w http.ResponseWriter, _ *http.Request, _ <-chan struct{}) {
	http.Error(w, "internal error", http.StatusInternalServerError)
}

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

// logBuf collects a logger's output.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// warned reports whether a WARN line names router and c.
func (l *logBuf) warned(router string, c cid.Cid) bool {
	for line := range strings.Lines(l.String()) {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "router="+router+" ") && strings.Contains(line, "cid="+c.String()) {
			return true
		}
	}
	return false
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
			srv := newRouterServer(t, jsonOnly)
			srv.add(root, peerRecord(peer.AddrInfo{ID: holder.Host.ID(), Addrs: holder.Host.Addrs()}, "transport-bitswap"))

			d := newDelegated(t, routing.DelegatedConfig{Routers: []string{srv.URL}})
			wanter := testnode.New(t, exchange.Config{Providers: d})
			if len(wanter.Host.Network().ConnsToPeer(holder.Host.ID())) != 0 {
				t.Fatal("wanter connected to holder before the fetch")
			}
			if got := readFile(ctx, t, wanter.Ex, root); !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, not the %d added", len(got), len(data))
			}
			reqs := srv.seen()
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
	srv := newRouterServer(t, false)
	ai := func(port int) peer.AddrInfo {
		a, err := peer.AddrInfoFromString(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", port, newPeerID(t)))
		if err != nil {
			t.Fatal(err)
		}
		return *a
	}
	bitswap, both, unlisted, gateway, noAddrs, self := ai(1), ai(2), ai(3), ai(4), ai(5), ai(6)
	noAddrs.Addrs = nil
	srv.add(c, peerRecord(gateway, "transport-ipfs-gateway-http"))
	srv.add(c, peerRecord(bitswap, "transport-bitswap"))
	srv.add(c, peerRecord(both, "transport-ipfs-gateway-http", "transport-bitswap"))
	srv.add(c, peerRecord(unlisted))
	srv.add(c, peerRecord(noAddrs, "transport-bitswap"))
	srv.add(c, peerRecord(self, "transport-bitswap"))
	srv.add(c, peerRecord(bitswap, "transport-bitswap")) // twice
	srv.add(c, map[string]any{"Schema": "peer", "Addrs": []string{"/ip4/127.0.0.1/tcp/7"}})
	srv.add(c, map[string]any{"Schema": "future", "ID": ai(8).ID.String()})
	// A second router knows one of them too.
	srv2 := newRouterServer(t, true)
	srv2.add(c, peerRecord(both, "transport-bitswap"))

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
	if seen := srv.seen(); len(seen) == 0 || !strings.Contains(seen[len(seen)-1], "transport-ipfs-gateway-http") {
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
	good := newRouterServer(t, false)
	good.add(root, peerRecord(peer.AddrInfo{ID: holder.Host.ID(), Addrs: holder.Host.Addrs()}, "transport-bitswap"))
	bad := []string{
		faultyRouter(t, failing500),
		faultyRouter(t, notARouter),
		faultyRouter(t, brokenNDJSON),
		faultyRouter(t, hanging),
	}
	var logs logBuf
	const timeout = time.Second
	d := newDelegated(t, routing.DelegatedConfig{
		Routers: append(slices.Clone(bad), good.URL),
		Timeout: timeout,
		Logger:  logs.logger(),
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
		if !logs.warned(u, root) {
			t.Errorf("no warning names router %s and %s; log:\n%s", u, root, logs.String())
		}
	}
	if logs.warned(good.URL, root) {
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
	hang := faultyRouter(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		arrived <- struct{}{}
		hanging(w, r, release)
	})
	c := cid.NewCidV1(cid.Raw, mustHash(t, "cancel"))
	for _, how := range []string{"cancel", "close"} {
		t.Run(how, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			var logs logBuf
			d, err := routing.NewDelegated(routing.DelegatedConfig{Routers: []string{hang}, Logger: logs.logger()})
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

func newPeerID(t *testing.T) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestAutoRouterOnly: Routing.Type "auto" with a DHT that knows nobody (no
// bootstrap peer) and a router that names the provider: the node fetches
// the file, not connected to the provider beforehand.
func TestAutoRouterOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	holder := testnode.New(t, exchange.Config{})
	root, data := addFile(t, holder, fileSize)
	srv := newRouterServer(t, false)
	srv.add(root, peerRecord(peer.AddrInfo{ID: holder.Host.ID(), Addrs: holder.Host.Addrs()}, "transport-bitswap"))
	d := newDelegated(t, routing.DelegatedConfig{Routers: []string{srv.URL}})
	wanter := newNodeFinding(t, routing.Config{}, d)
	if err := wanter.r.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readFile(ctx, t, wanter.ex, root); !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, not the %d added", len(got), len(data))
	}
	if len(srv.seen()) == 0 {
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
	bad := faultyRouter(t, failing500)
	var logs logBuf
	d := newDelegated(t, routing.DelegatedConfig{Routers: []string{bad}, Logger: logs.logger()})
	mid := newNode(t, routing.Config{})
	wanter := newNodeFinding(t, routing.Config{Bootstrap: []peer.AddrInfo{mid.info()}}, d)
	holder := newNode(t, routing.Config{Bootstrap: []peer.AddrInfo{mid.info()}})
	for _, n := range []*node{wanter, holder} {
		if err := n.r.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "routing tables", func() bool {
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
	if !logs.warned(bad, b.CID) {
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
	hang := faultyRouter(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
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
