// Package routing finds the peers that provide a block and announces the
// blocks this node provides, over the IPFS Kademlia DHT; it also finds
// providers through delegated routers over HTTP ([Delegated]), and asks
// several finders at once ([Combine]).
//
// A Router runs a dual DHT, as Kubo does, so that bsfs and Kubo nodes share
// one network wherever they meet:
//
//   - the WAN DHT speaks /ipfs/kad/1.0.0, the public Amino DHT: its routing
//     table keeps only peers with a public address, and it hands out and
//     stores only public addresses;
//   - the LAN DHT speaks /ipfs/lan/kad/1.0.0: it keeps peers reached over
//     private addresses and drops only loopback addresses, because those
//     mean nothing to another machine.
//
// Lookups ask both and merge the answers; an announcement goes to the WAN
// DHT when it has peers, else to the LAN DHT (Kubo's rule too). On
// 127.0.0.1 alone neither DHT works out of the box: the WAN one refuses
// private peers and the LAN one strips the only addresses there are. Nodes
// that all run on one machine, as tests do, set [Config.LoopbackOnLAN],
// the counterpart of Kubo's Routing.LoopbackAddressesOnLanDHT (which Kubo's
// test profile turns on); the public network is then unaffected, since the
// WAN DHT keeps its filters.
//
// A Delegated asks HTTP routers speaking the Routing V1 API, such as
// cid.contact, through boxo's client: Kubo's Routing.DelegatedRouters.
// Routing.Type "auto" is the Combine of a Router and a Delegated.
package routing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/dual"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

const (
	// DefaultReprovideInterval is how often provided CIDs are announced
	// again. Provider records live 48 hours on Amino DHT servers; 22 hours,
	// Kubo's interval, renews them twice within that life.
	DefaultReprovideInterval = 22 * time.Hour

	// DefaultReconnectInterval is how often the node counts its peers to
	// reconnect to the bootstrap peers when too few are left (Kubo's
	// period), and DefaultMinPeers the count below which it does.
	DefaultReconnectInterval = 30 * time.Second
	DefaultMinPeers          = 4
)

// ErrClosed is returned by Provide on a closed Router.
var ErrClosed = errors.New("routing: router closed")

// Mode is the role a node takes in the DHT.
type Mode int

const (
	// ModeAuto, the default, answers queries on the LAN DHT always and on
	// the WAN DHT only while AutoNAT reports the node publicly reachable.
	// Serving on the LAN makes a private network of bsfs nodes work with no
	// further setting; not serving on the public DHT from behind a NAT
	// keeps undialable entries out of other nodes' routing tables.
	ModeAuto Mode = iota
	// ModeServer answers queries on both DHTs, whatever AutoNAT says: for a
	// node known to be reachable at its addresses.
	ModeServer
	// ModeClient only asks: it answers no queries and stores no records.
	ModeClient
)

// Config configures a Router. The zero value is a node in ModeAuto with no
// bootstrap peers and the default reprovide interval.
type Config struct {
	// Bootstrap are the peers Bootstrap connects to, and that the DHTs
	// reconnect to when their routing tables run empty. Empty is valid: a
	// private or offline node.
	Bootstrap []peer.AddrInfo
	// ReprovideInterval is how often every provided CID is announced again:
	// 0 means DefaultReprovideInterval, negative turns reproviding off.
	ReprovideInterval time.Duration
	// Mode is the node's role in the DHT.
	Mode Mode
	// ReconnectInterval is how often the connected peers are counted and,
	// below MinPeers, the bootstrap peers connected again: 0 means
	// DefaultReconnectInterval, negative never. MinPeers 0 means
	// DefaultMinPeers.
	ReconnectInterval time.Duration
	MinPeers          int
	// LoopbackOnLAN keeps loopback addresses in the LAN DHT's routing and
	// provider records, for networks of nodes on one machine (tests); see
	// the package doc. Leave it off on a real network.
	LoopbackOnLAN bool
	// Logger receives the router's log; nil discards it.
	Logger *slog.Logger
}

// Router finds providers and announces provided CIDs over the DHT. Its
// methods are safe for concurrent use.
type Router struct {
	// Read-only after New, no lock.
	host      host.Host
	dht       *dual.DHT
	bootstrap []peer.AddrInfo
	interval  time.Duration
	reconnect time.Duration // < 0: never
	minPeers  int
	log       *slog.Logger
	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	kick      chan struct{} // asks the loop to announce the pending CIDs
	wg        sync.WaitGroup

	mu       sync.Mutex // guards the fields below
	provided map[cid.Cid]struct{}
	pending  map[cid.Cid]struct{} // provided but not yet announced
	closed   bool
}

// New starts the DHT on h. The Router runs until Close, whatever becomes of
// ctx, whose values it keeps. The Router does not own h: close the Router
// before the host.
func New(ctx context.Context, h host.Host, cfg Config) (*Router, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	interval := cfg.ReprovideInterval
	if interval == 0 {
		interval = DefaultReprovideInterval
	}
	var wan, lan dht.ModeOpt
	switch cfg.Mode {
	case ModeAuto:
		wan, lan = dht.ModeAuto, dht.ModeServer
	case ModeServer:
		wan, lan = dht.ModeServer, dht.ModeServer
	case ModeClient:
		wan, lan = dht.ModeClient, dht.ModeClient
	default:
		return nil, fmt.Errorf("routing: unknown mode %d", cfg.Mode)
	}
	lanOpts := []dht.Option{dht.Mode(lan)}
	if cfg.LoopbackOnLAN {
		lanOpts = append(lanOpts, dht.AddressFilter(nil))
	}
	d, err := dual.New(h,
		dual.DHTOption(dht.BootstrapPeers(cfg.Bootstrap...)),
		dual.WanDHTOption(dht.Mode(wan)),
		dual.LanDHTOption(lanOpts...),
	)
	if err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	if err := checkIPNSValidator(d.WAN.Validator, d.LAN.Validator); err != nil {
		return nil, errors.Join(err, d.Close())
	}
	r := &Router{
		host:      h,
		dht:       d,
		bootstrap: cfg.Bootstrap,
		interval:  interval,
		reconnect: cmp.Or(cfg.ReconnectInterval, DefaultReconnectInterval),
		minPeers:  cmp.Or(cfg.MinPeers, DefaultMinPeers),
		log:       log,
		kick:      make(chan struct{}, 1),
		provided:  make(map[cid.Cid]struct{}),
		pending:   make(map[cid.Cid]struct{}),
	}
	// The router outlives the constructor's context: only Close ends it.
	r.ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.wg.Go(r.loop)
	if len(r.bootstrap) > 0 && r.reconnect > 0 {
		r.wg.Go(r.keepPeers)
	}
	return r, nil
}

// Close stops the reprovider and every lookup, waits for them, and closes
// the DHT.
func (r *Router) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	return r.dht.Close()
}
