// Package httpnet fetches blocks from trustless HTTP gateways
// (`GET /ipfs/{cid}?format=raw`), the way Kubo does since 0.36, so that a
// gateway can stand in the exchange as one more peer.
//
// A provider record whose addresses name a gateway (see GatewayURL) is
// probed with `HEAD /ipfs/bafkqaaa` (the empty identity block); a gateway
// that answers 200 is "connected" under the provider's peer ID and from
// then on takes Bitswap wantlist messages like a libp2p peer: a want-have
// becomes a HEAD, a want-block a GET with `Accept: application/vnd.ipld.raw`,
// a cancel aborts the request. The answers come back to the Receiver as
// Bitswap messages: HAVE, DONT_HAVE (404, 410, 403, 451 or a redirect, when
// the want asked for one) or the block. Every block is read up to
// MaxBlockSize and checked against its CID before it is handed on.
//
// Each gateway has at most Workers requests in flight; want-blocks go
// before want-haves. A failed request (transport error, 429, 5xx, an
// oversized or unexpected answer) counts against the gateway; after
// MaxFailures in a row, or at once for a block whose bytes do not match
// its CID, the gateway is dropped: disconnected, its requests cancelled,
// and its URL not used again for Backoff (or the Retry-After it asked for,
// up to MaxBackoff). A gateway whose probe fails is avoided likewise.
package httpnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/message"
)

// Defaults for Config.
const (
	DefaultWorkers        = 16
	DefaultMaxFailures    = 3
	DefaultBackoff        = time.Minute
	DefaultMaxBackoff     = 10 * time.Minute
	DefaultRequestTimeout = time.Minute
	DefaultUserAgent      = "bsfs"
)

// probePath is the gateway path of the empty identity block, which every
// trustless gateway can answer without fetching anything.
const probePath = "/ipfs/bafkqaaa"

// Errors of the Network.
var (
	ErrClosed       = errors.New("httpnet: closed")
	ErrNotConnected = errors.New("httpnet: gateway not connected")
	ErrNoGateway    = errors.New("httpnet: no usable gateway address")
)

// Receiver hears from the gateways. Its methods may be called from many
// goroutines at once.
type Receiver interface {
	// ReceiveMessage delivers a gateway's answers: verified blocks and
	// presences.
	ReceiveMessage(ctx context.Context, p peer.ID, m *message.Message)
	// GatewayConnected tells that p's gateway answered its probe.
	GatewayConnected(p peer.ID)
	// GatewayDisconnected tells that p's gateway was dropped.
	GatewayDisconnected(p peer.ID)
}

// Config configures a Network. The zero value is usable.
type Config struct {
	// MaxBlockSize bounds a response body; zero or more than block.MaxSize
	// means block.MaxSize.
	MaxBlockSize int64
	// Workers is how many requests one gateway may have in flight.
	Workers int
	// MaxFailures is the number of failed requests in a row after which a
	// gateway is dropped.
	MaxFailures int
	// Backoff is how long a dropped gateway, or one whose probe failed, is
	// not used; a Retry-After it sent may lengthen it up to MaxBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// RequestTimeout bounds one request, body included.
	RequestTimeout time.Duration
	// Allowlist, if not empty, names the only gateway hosts used;
	// Denylist names hosts never used.
	Allowlist, Denylist []string
	UserAgent           string
	Logger              *slog.Logger

	// now is the clock; tests replace it.
	now func() time.Time
}

// Stats counts the Network's activity.
type Stats struct {
	Gateways      []GatewayStat
	Requests      uint64 // HEAD and GET requests made, probes included
	Failures      uint64 // requests that failed, probes included
	InvalidBlocks uint64 // blocks whose bytes did not match their CID
	Dropped       uint64 // gateways dropped
}

// GatewayStat describes one connected gateway.
type GatewayStat struct {
	Peer     peer.ID
	URL      string
	InFlight int
}

// Network is the HTTP side of the exchange: the connected gateways and one
// HTTP client they share.
type Network struct {
	cfg    Config
	recv   Receiver
	client *http.Client
	filter hostFilter
	log    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // workers

	mu       sync.Mutex // guards the fields below
	gateways map[peer.ID]*gateway
	backoff  map[string]time.Time // base URL -> not used before
	stats    Stats
	closed   bool
}

// New returns a Network that reports to recv.
func New(cfg Config, recv Receiver) *Network {
	if cfg.MaxBlockSize <= 0 || cfg.MaxBlockSize > block.MaxSize {
		cfg.MaxBlockSize = block.MaxSize
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxBackoff < cfg.Backoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.Backoff)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 nil, // gateways are dialled directly
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   cfg.Workers,
		MaxConnsPerHost:       cfg.Workers,
	}
	client := &http.Client{
		Transport: transport,
		// A trustless gateway answers in place; following a redirect would
		// let it send us to any host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Network{
		cfg:      cfg,
		recv:     recv,
		client:   client,
		filter:   newHostFilter(cfg.Allowlist, cfg.Denylist),
		log:      cfg.Logger,
		ctx:      ctx,
		cancel:   cancel,
		gateways: make(map[peer.ID]*gateway),
		backoff:  make(map[string]time.Time),
	}
}

// Close drops every gateway, cancels their requests and waits for them.
// The Receiver is not told.
func (n *Network) Close() error {
	n.mu.Lock()
	n.closed = true
	gws := n.gateways
	n.gateways = map[peer.ID]*gateway{}
	n.mu.Unlock()
	n.cancel()
	for _, g := range gws {
		g.cancel()
	}
	n.wg.Wait()
	n.client.CloseIdleConnections()
	return nil
}

// track counts one more goroutine among those Close waits for, unless
// the Network is closed (Close may be waiting already).
func (n *Network) track() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	return true
}

// Usable reports whether ai names a gateway this Network would try: one
// whose address is accepted, whose host the lists allow and which is not
// backing off.
func (n *Network) Usable(ai peer.AddrInfo) bool {
	return len(n.candidates(ai)) > 0
}

// candidates returns ai's gateway URLs that may be tried now.
func (n *Network) candidates(ai peer.AddrInfo) []*url.URL {
	var out []*url.URL
	now := n.cfg.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, u := range GatewayURLs(ai) {
		if !n.filter.allowed(u) {
			continue
		}
		if until, ok := n.backoff[u.String()]; ok {
			if now.Before(until) {
				continue
			}
			delete(n.backoff, u.String())
		}
		out = append(out, u)
	}
	return out
}

// Connect probes ai's gateways in turn and connects the first that
// answers. It returns nil at once if ai's gateway is connected already.
func (n *Network) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if n.Connected(ai.ID) {
		return nil
	}
	urls := n.candidates(ai)
	if len(urls) == 0 {
		return fmt.Errorf("%w for %s (addresses refused, not allowed, or backing off)", ErrNoGateway, ai.ID)
	}
	var errs []error
	for _, u := range urls {
		retryAfter, err := n.probe(ctx, u)
		if err == nil {
			return n.add(ai.ID, u)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("probe gateway %s: %w", u, ctx.Err())
		}
		n.log.Info("bitswap: http gateway failed its probe", "gateway", u.String(), "peer", ai.ID, "err", err)
		n.backOff(u, retryAfter)
		errs = append(errs, fmt.Errorf("probe gateway %s: %w", u, err))
	}
	return errors.Join(errs...)
}

// add connects p's gateway at u.
func (n *Network) add(p peer.ID, u *url.URL) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	if n.gateways[p] != nil {
		n.mu.Unlock()
		return nil // connected meanwhile
	}
	ctx, cancel := context.WithCancel(n.ctx)
	g := &gateway{n: n, peer: p, base: u, ctx: ctx, cancel: cancel, reqs: map[string]*request{}}
	n.gateways[p] = g
	n.mu.Unlock()
	n.log.Info("bitswap: http gateway connected", "gateway", u.String(), "peer", p)
	n.recv.GatewayConnected(p)
	return nil
}

// Connected reports whether p's gateway is connected.
func (n *Network) Connected(p peer.ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gateways[p] != nil
}

// Peers returns the peers whose gateway is connected.
func (n *Network) Peers() []peer.ID {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]peer.ID, 0, len(n.gateways))
	for p := range n.gateways {
		out = append(out, p)
	}
	return out
}

// Disconnect drops p's gateway without backing off from it (the peer is
// reachable over libp2p, say) and tells the Receiver.
func (n *Network) Disconnect(p peer.ID) {
	n.mu.Lock()
	g := n.gateways[p]
	delete(n.gateways, p)
	n.mu.Unlock()
	if g != nil {
		g.cancel()
		n.recv.GatewayDisconnected(p)
	}
}

// drop disconnects g after it failed, and avoids its URL for a while.
func (n *Network) drop(g *gateway, retryAfter time.Duration, why error) {
	n.mu.Lock()
	if n.gateways[g.peer] != g {
		n.mu.Unlock()
		return // dropped already
	}
	delete(n.gateways, g.peer)
	n.stats.Dropped++
	n.mu.Unlock()
	g.cancel()
	until := n.backOff(g.base, retryAfter)
	n.log.Warn("bitswap: http gateway dropped", "gateway", g.base.String(), "peer", g.peer, "until", until.Format(time.RFC3339), "err", why)
	n.recv.GatewayDisconnected(g.peer)
}

// backOff keeps u unused for Backoff, or retryAfter if longer (up to
// MaxBackoff), and returns until when.
func (n *Network) backOff(u *url.URL, retryAfter time.Duration) time.Time {
	d := min(max(n.cfg.Backoff, retryAfter), n.cfg.MaxBackoff)
	until := n.cfg.now().Add(d)
	n.mu.Lock()
	n.backoff[u.String()] = until
	n.mu.Unlock()
	return until
}

// SendMessage hands a wantlist message to p's gateway: each want becomes a
// request, each cancel aborts one, and a full wantlist also aborts the
// requests for wants it no longer lists.
func (n *Network) SendMessage(_ context.Context, p peer.ID, m *message.Message) error {
	n.mu.Lock()
	g := n.gateways[p]
	n.mu.Unlock()
	if g == nil {
		return fmt.Errorf("%w: %s", ErrNotConnected, p)
	}
	g.apply(m)
	return nil
}

// Stats returns the counters so far.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	s := n.stats
	gws := make([]*gateway, 0, len(n.gateways))
	for _, g := range n.gateways {
		gws = append(gws, g)
	}
	n.mu.Unlock()
	s.Gateways = make([]GatewayStat, 0, len(gws))
	for _, g := range gws {
		g.mu.Lock()
		inFlight := g.running
		g.mu.Unlock()
		s.Gateways = append(s.Gateways, GatewayStat{Peer: g.peer, URL: g.base.String(), InFlight: inFlight})
	}
	return s
}

func (n *Network) count(f func(*Stats)) {
	n.mu.Lock()
	f(&n.stats)
	n.mu.Unlock()
}

// probe asks u for the empty identity block; a gateway that works answers
// 200. On failure it returns the wait the gateway asked for, if any.
func (n *Network) probe(ctx context.Context, u *url.URL) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	n.count(func(s *Stats) { s.Requests++ })
	resp, err := n.do(ctx, http.MethodHead, u, probePath)
	if err != nil {
		n.count(func(s *Stats) { s.Failures++ })
		return 0, err
	}
	defer discard(resp)
	if resp.StatusCode != http.StatusOK {
		n.count(func(s *Stats) { s.Failures++ })
		return retryAfter(resp, n.cfg.now()), fmt.Errorf("HEAD %s: %s", probePath, resp.Status)
	}
	return 0, nil
}

// do makes one request for path under the gateway at base.
func (n *Network) do(ctx context.Context, method string, base *url.URL, path string) (*http.Response, error) {
	u := *base
	u.Path = path
	if path != probePath {
		u.RawQuery = "format=raw"
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.ipld.raw")
	req.Header.Set("User-Agent", n.cfg.UserAgent)
	return n.client.Do(req)
}

// discard drains a little of a response body, so the connection can be
// reused, and closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
}

// retryAfter returns the wait a 429 or 503 response asks for, in seconds or
// as a date; zero if none.
func retryAfter(resp *http.Response, now time.Time) time.Duration {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return 0
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
