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
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/dual"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

const (
	// DefaultReprovideInterval is how often provided CIDs are announced
	// again. Provider records live 48 hours on Amino DHT servers; 22 hours,
	// Kubo's interval, renews them twice within that life.
	DefaultReprovideInterval = 22 * time.Hour

	// provideTimeout bounds the announcement of one CID: a lookup of the
	// closest peers and a record sent to each.
	provideTimeout = 2 * time.Minute
	// provideWorkers is how many CIDs a reprovide announces at once.
	provideWorkers = 8
	// findPeerTimeout bounds the search for the addresses of a provider
	// whose record came without any.
	findPeerTimeout = 10 * time.Second
	// bootstrapSettle bounds how long Bootstrap waits, after connecting,
	// for the routing tables to take in the bootstrap peers.
	bootstrapSettle = 10 * time.Second
	// settlePoll is how often Bootstrap looks at the routing tables.
	settlePoll = 50 * time.Millisecond

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

// keepPeers connects to the bootstrap peers not connected whenever fewer
// than minPeers peers are, checking every reconnect interval, so that a
// node cut off (a network change, a laptop waking) rejoins.
func (r *Router) keepPeers() {
	tick := time.NewTicker(r.reconnect)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
		if len(r.host.Network().Peers()) >= r.minPeers {
			continue
		}
		var wg sync.WaitGroup
		for _, ai := range r.bootstrap {
			if ai.ID == r.host.ID() || r.host.Network().Connectedness(ai.ID) == network.Connected {
				continue
			}
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(r.ctx, r.reconnect)
				defer cancel()
				if err := r.host.Connect(ctx, ai); err != nil {
					r.log.Debug("reconnecting to a bootstrap peer", "peer", ai.ID, "err", err)
				}
			})
		}
		wg.Wait()
	}
}

// FindProviders looks up peers that provide c, up to max of them (every
// one the lookup finds when max <= 0), and sends each once with the
// addresses to dial it at; a provider whose addresses cannot be found is
// left out, and so is this node. The channel is closed when the lookup
// ends, ctx ends or the Router is closed.
func (r *Router) FindProviders(ctx context.Context, c cid.Cid, max int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || !c.Defined() {
		close(out)
		return out
	}
	if max < 0 {
		max = 0 // the DHT's "find all"
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(r.ctx, cancel)
	r.wg.Go(func() {
		defer close(out)
		defer cancel()
		defer stop()
		// Ask for one more: our own record may take a place.
		count := max
		if count > 0 {
			count++
		}
		sent := 0
		for ai := range r.dht.FindProvidersAsync(ctx, c, count) {
			if ai.ID == r.host.ID() {
				continue
			}
			if ai = r.withAddrs(ctx, ai); len(ai.Addrs) == 0 {
				continue
			}
			select {
			case out <- ai:
			case <-ctx.Done():
				return
			}
			if sent++; sent == max {
				return
			}
		}
	})
	return out
}

// withAddrs fills in the addresses of a provider whose record came without
// any (a DHT drops the addresses it does not keep): those in the
// peerstore, else those a peer lookup finds.
func (r *Router) withAddrs(ctx context.Context, ai peer.AddrInfo) peer.AddrInfo {
	if len(ai.Addrs) > 0 {
		return ai
	}
	if addrs := r.host.Peerstore().Addrs(ai.ID); len(addrs) > 0 {
		ai.Addrs = addrs
		return ai
	}
	ctx, cancel := context.WithTimeout(ctx, findPeerTimeout)
	defer cancel()
	found, err := r.dht.FindPeer(ctx, ai.ID)
	if err != nil {
		r.log.Debug("provider without addresses", "peer", ai.ID, "err", err)
		return ai
	}
	return found
}

// Provide announces now that this node provides c, and remembers c to
// announce it again every reprovide interval. When the DHT has no peers
// yet (an offline node, or one still bootstrapping) nothing is sent and
// nil is returned: c is announced after the next Bootstrap or at the next
// reprovide.
func (r *Router) Provide(ctx context.Context, c cid.Cid) error {
	if !c.Defined() {
		return errors.New("routing: provide of an undefined CID")
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.provided[c] = struct{}{}
	r.pending[c] = struct{}{}
	r.mu.Unlock()
	if !r.hasPeers() {
		r.log.Debug("provide deferred: no DHT peers", "cid", c)
		return nil
	}
	if err := r.announce(ctx, c); err != nil {
		return fmt.Errorf("routing: provide %s: %w", c, err)
	}
	return nil
}

// ProvideAsync adds cids to the provided set and has the router's loop
// announce them soon, provideWorkers at a time; it never waits on the
// network: its cost is one map insertion per CID under the router's lock.
// On a closed Router it does nothing. The provided set holds every CID
// given until Close: on a store of millions of blocks, that is tens of
// bytes each.
func (r *Router) ProvideAsync(cids ...cid.Cid) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	for _, c := range cids {
		if c.Defined() {
			r.provided[c] = struct{}{}
			r.pending[c] = struct{}{}
		}
	}
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// announce sends c's provider record and takes c off the pending set.
func (r *Router) announce(ctx context.Context, c cid.Cid) error {
	ctx, cancel := context.WithTimeout(ctx, provideTimeout)
	defer cancel()
	stop := context.AfterFunc(r.ctx, cancel)
	defer stop()
	if err := r.dht.Provide(ctx, c, true); err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.pending, c)
	r.mu.Unlock()
	return nil
}

// hasPeers reports whether either DHT has a peer in its routing table.
func (r *Router) hasPeers() bool {
	return r.dht.WAN.RoutingTable().Size() > 0 || r.dht.LAN.RoutingTable().Size() > 0
}

// Bootstrap connects to the bootstrap peers, waits up to ten seconds (or
// until ctx ends) for them to enter the routing tables, starts a refresh
// of the tables and has the CIDs not yet announced sent. It fails only
// when bootstrap peers are configured and none could be reached.
func (r *Router) Bootstrap(ctx context.Context) error {
	errs := make([]error, len(r.bootstrap))
	var wg sync.WaitGroup
	for i, ai := range r.bootstrap {
		if ai.ID == r.host.ID() {
			continue
		}
		wg.Go(func() {
			if err := r.host.Connect(ctx, ai); err != nil {
				errs[i] = fmt.Errorf("%s: %w", ai.ID, err)
			}
		})
	}
	wg.Wait()
	others, connected := 0, 0
	for i, ai := range r.bootstrap {
		if ai.ID != r.host.ID() {
			others++
			if errs[i] == nil {
				connected++
			}
		}
	}
	if others > 0 && connected == 0 {
		return fmt.Errorf("routing: no bootstrap peer reachable: %w", errors.Join(errs...))
	}
	if connected > 0 {
		r.settle(ctx)
	}
	if err := r.dht.Bootstrap(ctx); err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
	return nil
}

// settle waits until a routing table has a peer: the DHT takes a connected
// peer in only once identify and a check query have succeeded.
func (r *Router) settle(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, bootstrapSettle)
	defer cancel()
	tick := time.NewTicker(settlePoll)
	defer tick.Stop()
	for !r.hasPeers() {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
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

// loop announces the pending CIDs when kicked and every CID each interval.
func (r *Router) loop() {
	var tick <-chan time.Time
	if r.interval > 0 {
		t := time.NewTicker(r.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		var all bool
		select {
		case <-r.ctx.Done():
			return
		case <-r.kick:
		case <-tick:
			all = true
		}
		r.reprovide(all)
	}
}

// reprovide announces every provided CID, or only the pending ones,
// provideWorkers at a time.
func (r *Router) reprovide(all bool) {
	if !r.hasPeers() {
		return
	}
	r.mu.Lock()
	set := r.pending
	if all {
		set = r.provided
	}
	cids := make([]cid.Cid, 0, len(set))
	for c := range set {
		cids = append(cids, c)
	}
	r.mu.Unlock()
	if len(cids) == 0 {
		return
	}
	start := time.Now()
	var (
		wg     sync.WaitGroup
		sem    = make(chan struct{}, provideWorkers)
		failed atomic.Int64
	)
	for _, c := range cids {
		select {
		case sem <- struct{}{}:
		case <-r.ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := r.announce(r.ctx, c); err != nil {
				failed.Add(1)
				r.log.Debug("reprovide failed", "cid", c, "err", err)
			}
		})
	}
	wg.Wait()
	// New CIDs come in batches as blocks are fetched: only a full
	// reprovide is worth a line at Info.
	level := slog.LevelDebug
	if all {
		level = slog.LevelInfo
	}
	r.log.Log(r.ctx, level, "reprovided", "cids", len(cids), "failed", failed.Load(), "took", time.Since(start))
}
