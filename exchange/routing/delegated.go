package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/boxo/routing/http/client"
	"github.com/ipfs/boxo/routing/http/types"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/internal/httpurl"
)

const (
	// DefaultDelegatedTimeout bounds one request to a delegated router,
	// the response streamed to its end included.
	DefaultDelegatedTimeout = 30 * time.Second
	// delegatedRecordLimit bounds the records read from one response,
	// those skipped included; boxo's client also caps the body at 1 MiB.
	delegatedRecordLimit = 1000
	// delegatedUserAgent is sent with every request to a router.
	delegatedUserAgent = "bsfs"

	// Transport names of the Routing V1 API (IPIP-484) in a provider
	// record's Protocols.
	transportBitswap     = "transport-bitswap"
	transportGatewayHTTP = "transport-ipfs-gateway-http"
)

// DelegatedConfig configures a Delegated finder.
type DelegatedConfig struct {
	// Routers are the base URLs of the routers, such as
	// "https://cid.contact": absolute http or https URLs with no path
	// beyond an optional /routing/v1.
	Routers []string
	// Timeout bounds each request: 0 means DefaultDelegatedTimeout.
	Timeout time.Duration
	// Self is this node's peer ID, left out of the results.
	Self peer.ID
	// HTTP also finds providers that serve blocks only as trustless HTTP
	// gateways (transport-ipfs-gateway-http), for a node that fetches over
	// HTTP too; their gateway addresses are in their AddrInfo.
	HTTP bool
	// Logger receives the finder's log; nil discards it.
	Logger *slog.Logger
}

// Delegated finds providers through delegated routers over HTTP, the
// Routing V1 API (GET /routing/v1/providers/{cid}), as Kubo's
// Routing.DelegatedRouters do. Every router is asked at once; a router that
// fails is logged and the others carry on. It only finds: announcing stays
// on the DHT. Its methods are safe for concurrent use.
type Delegated struct {
	// Read-only after NewDelegated, no lock.
	routers   []delegatedRouter
	transport *http.Transport
	timeout   time.Duration
	self      peer.ID
	http      bool
	log       *slog.Logger
	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu     sync.Mutex // guards closed
	closed bool
}

// delegatedRouter is one router: its URL as configured, for the log, and
// its client.
type delegatedRouter struct {
	url    string
	client *client.Client
}

// NewDelegated makes a finder over cfg.Routers; it fails on a URL that is
// not an absolute http or https URL.
func NewDelegated(cfg DelegatedConfig) (*Delegated, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultDelegatedTimeout
	}
	// A transport of our own, so that Close can drop its idle connections.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	hc := &http.Client{Transport: &client.ResponseBodyLimitedTransport{
		RoundTripper: tr,
		LimitBytes:   1 << 20,
		UserAgent:    delegatedUserAgent,
	}}
	d := &Delegated{transport: tr, timeout: timeout, self: cfg.Self, http: cfg.HTTP, log: log}
	protocols := []string{transportBitswap, "unknown"}
	if cfg.HTTP {
		protocols = append(protocols, transportGatewayHTTP)
	}
	for _, u := range cfg.Routers {
		if err := CheckRouterURL(u); err != nil {
			return nil, fmt.Errorf("routing: delegated router %q: %w", u, err)
		}
		// Filtering is ours (wanted), so that the client does not drop
		// a response's broken records without a word.
		c, err := client.New(u, client.WithHTTPClient(hc), client.WithDisabledLocalFiltering(true), client.WithProtocolFilter(protocols))
		if err != nil {
			return nil, fmt.Errorf("routing: delegated router %q: %w", u, err)
		}
		d.routers = append(d.routers, delegatedRouter{url: u, client: c})
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d, nil
}

// CheckRouterURL reports why u cannot name a delegated router, or nil
// when it can: a URL httpurl.Parse takes, with no query, and a path that is
// empty or /routing/v1.
func CheckRouterURL(u string) error {
	p, err := httpurl.Parse(u)
	if err != nil {
		return err
	}
	if p.RawQuery != "" {
		return errors.New("want no query")
	}
	switch p.Path {
	case "", "/", "/routing/v1", "/routing/v1/":
	default:
		return fmt.Errorf("path %q: want none or /routing/v1", p.Path)
	}
	return nil
}

// FindProviders asks every router for providers of c at once and sends
// each provider found once, up to max of them (all when max <= 0), with
// the addresses the router gave. Only providers bsfs can fetch from are
// sent: those whose record lists transport-bitswap (or the HTTP gateway
// transport, with DelegatedConfig.HTTP) or no protocol at all.
// The channel is closed when every router has answered or failed, ctx
// ends, max is reached or the finder is closed.
func (d *Delegated) FindProviders(ctx context.Context, c cid.Cid, max int) <-chan peer.AddrInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || !c.Defined() || len(d.routers) == 0 {
		out := make(chan peer.AddrInfo)
		close(out)
		return out
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(d.ctx, cancel)
	found := make(chan peer.AddrInfo)
	var asking sync.WaitGroup
	for _, r := range d.routers {
		asking.Go(func() { d.ask(ctx, r, c, max, found) })
	}
	d.wg.Go(func() {
		asking.Wait()
		close(found)
		stop()
	})
	out := make(chan peer.AddrInfo)
	d.wg.Go(func() { merge(ctx, cancel, found, out, max, d.self) })
	return out
}

// ask sends on found the Bitswap providers of c that r knows, up to max
// (all when max <= 0), within the finder's timeout. A failure is logged
// unless ctx ended first (the caller stopped listening).
func (d *Delegated) ask(ctx context.Context, r delegatedRouter, c cid.Cid, max int, found chan<- peer.AddrInfo) {
	rctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	start := time.Now()
	sent, err := d.query(rctx, r, c, max, found)
	switch {
	case ctx.Err() != nil:
		// Cancelled from above: not the router's fault.
	case err != nil:
		d.log.Warn("delegated router failed", "router", r.url, "cid", c, "err", err, "took", time.Since(start).Round(time.Millisecond))
	default:
		d.log.Debug("delegated router answered", "router", r.url, "cid", c, "providers", sent, "took", time.Since(start).Round(time.Millisecond))
	}
}

// query runs one request to r and returns how many providers it sent.
func (d *Delegated) query(ctx context.Context, r delegatedRouter, c cid.Cid, max int, found chan<- peer.AddrInfo) (int, error) {
	it, err := r.client.FindProviders(ctx, c)
	if err != nil {
		return 0, err
	}
	defer it.Close()
	sent := 0
	for read := 0; it.Next(); read++ {
		if read == delegatedRecordLimit {
			return sent, fmt.Errorf("more than %d records", delegatedRecordLimit)
		}
		res := it.Val()
		if res.Err != nil {
			return sent, res.Err
		}
		ai, ok := fetchableProvider(res.Val, d.http)
		if !ok {
			continue
		}
		select {
		case found <- ai:
		case <-ctx.Done():
			return sent, ctx.Err()
		}
		if sent++; sent == max {
			return sent, nil
		}
	}
	// The stream ended: on a cancelled context the client reports the cut
	// body as the end of the records, so look at the context too.
	return sent, ctx.Err()
}

// fetchableProvider returns the provider a record names when bsfs can
// fetch from it: a peer record with an ID and addresses whose protocols
// include transport-bitswap, or transport-ipfs-gateway-http when http is
// set, or are not listed. A provider without addresses is skipped as the
// DHT's are: this finder has no peer routing to look them up. Records of
// other schemas, including the deprecated "bitswap" schema, are skipped.
func fetchableProvider(rec types.Record, http bool) (peer.AddrInfo, bool) {
	pr, ok := rec.(*types.PeerRecord)
	if !ok || pr.ID == nil || pr.ID.Validate() != nil {
		return peer.AddrInfo{}, false
	}
	if len(pr.Protocols) > 0 && !slices.Contains(pr.Protocols, transportBitswap) &&
		!(http && slices.Contains(pr.Protocols, transportGatewayHTTP)) {
		return peer.AddrInfo{}, false
	}
	ai := peer.AddrInfo{ID: *pr.ID}
	for _, a := range pr.Addrs {
		if a.Multiaddr == nil {
			continue
		}
		// Some routers give addresses ending in /p2p/<id>: dial them
		// without it.
		if addr, id := peer.SplitAddr(a.Multiaddr); addr != nil && (id == "" || id == ai.ID) {
			ai.Addrs = append(ai.Addrs, addr)
		}
	}
	if len(ai.Addrs) == 0 {
		return peer.AddrInfo{}, false
	}
	return ai, true
}

// Close cancels every lookup, waits for them and drops the idle
// connections to the routers.
func (d *Delegated) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
	d.transport.CloseIdleConnections()
	return nil
}
