package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/network"
	"github.com/bsfs/bsfs/exchange/routing"
	"github.com/bsfs/bsfs/metrics"
	"github.com/bsfs/bsfs/repo"
)

// Options are a node's overrides of the config: the command line's. Empty
// fields leave the config's values.
type Options struct {
	// Listen replaces Addresses.Swarm.
	Listen []string
	// Protocols replaces Bitswap.Protocols: comma-separated protocol IDs.
	Protocols string
	// Routing replaces Routing.Type.
	Routing string
	// Metrics replaces Metrics.Address if MetricsSet (an empty value turns
	// metrics off).
	Metrics    string
	MetricsSet bool
	// CacheSize and Blocks replace Cache.Size and Cache.SharedBlocks.
	CacheSize, Blocks string
}

// Start starts the host, content routing and the exchange on r, and
// announces what Provide.Strategy names and republishes IPNS records in
// the background. The node's Close closes r.
func Start(r *repo.Repo, opts Options) (*Node, error) {
	listen := r.Config.Addresses.Swarm
	if len(opts.Listen) > 0 {
		listen = opts.Listen
	}
	protoNames := r.Config.Bitswap.Protocols
	if opts.Protocols != "" {
		protoNames = strings.Split(opts.Protocols, ",")
	}
	protos, err := BitswapProtocols(protoNames)
	if err != nil {
		return nil, err
	}
	key, err := r.PrivKey()
	if err != nil {
		return nil, err
	}
	h, err := network.NewHost(HostConfig(r.Config, key, listen))
	if err != nil {
		return nil, err
	}
	n := &Node{repo: r, host: h}
	fail := func(err error) (*Node, error) { return nil, errors.Join(err, n.Close()) }
	if n.reach, err = watchReachability(h); err != nil {
		return fail(err)
	}
	cfg := exchange.Config{Network: network.Config{Protocols: protos}, HTTP: httpRetrieval(r.Config.HTTPRetrieval)}
	if err := n.startRouting(opts, &cfg); err != nil {
		return fail(err)
	}
	addr := *r.Config.Metrics.Address
	if opts.MetricsSet {
		addr = opts.Metrics
	}
	var m *metrics.Metrics
	if addr != "" {
		m = metrics.New()
		cfg.BlockLatency = m.BlockLatency.Observe
		n.readLatency = m.ReadLatency.Observe
	}
	if n.cache, n.shared, err = openCache(r, opts); err != nil {
		return fail(err)
	}
	if n.ex, err = exchange.New(h, n.cache, cfg); err != nil {
		return fail(err)
	}
	if m != nil {
		if err := n.serveMetrics(m, addr, r.Config.Metrics.Public); err != nil {
			return fail(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stopAnnounce = cancel
	if n.router != nil {
		n.background.Go(func() { n.announce(ctx) })
	}
	n.background.Go(func() { n.republish(ctx) })
	return n, nil
}

// startRouting starts the DHT and the delegated routers the routing type
// names, and sets them as cfg's providers.
func (n *Node) startRouting(opts Options, cfg *exchange.Config) error {
	c, h := n.repo.Config, n.host
	routingType := c.Routing.Type
	if opts.Routing != "" {
		routingType = opts.Routing
	}
	if !slices.Contains(repo.RoutingTypes(), routingType) {
		return fmt.Errorf("unknown routing %q (--routing or Routing.Type): want one of %q", routingType, repo.RoutingTypes())
	}
	if routingType == repo.RoutingAuto || routingType == repo.RoutingDHT {
		bootstrap, err := bootstrapPeers(c.Bootstrap)
		if err != nil {
			return err
		}
		n.router, err = routing.New(context.Background(), h, routing.Config{
			Bootstrap: bootstrap,
			// A node that listens on loopback only can reach only peers
			// on this machine: let their addresses into the LAN DHT.
			LoopbackOnLAN: loopbackOnly(h),
			Logger:        slog.Default().With("router", dhtRouter),
		})
		if err != nil {
			return err
		}
		cfg.Providers = n.router
		n.strategy = c.Provide.Strategy
		if n.strategy == repo.ProvideAll {
			cfg.Stored = n.router
		}
	}
	routers := c.Routing.DelegatedRouters
	if routingType == repo.RoutingDelegated && len(routers) == 0 {
		return fmt.Errorf("routing %q needs a router URL in the config's Routing.DelegatedRouters", routingType)
	}
	if (routingType == repo.RoutingAuto || routingType == repo.RoutingDelegated) && len(routers) > 0 {
		var err error
		n.delegated, err = routing.NewDelegated(routing.DelegatedConfig{
			Routers: routers,
			Self:    h.ID(),
			HTTP:    cfg.HTTP != nil,
			Logger:  slog.Default(),
		})
		if err != nil {
			return fmt.Errorf("config Routing.DelegatedRouters: %w", err)
		}
		if n.router != nil {
			cfg.Providers = routing.Combine(n.router, n.delegated)
		} else {
			cfg.Providers = n.delegated
		}
	}
	return nil
}

// serveMetrics has m watch the exchange and serves it on addr.
func (n *Node) serveMetrics(m *metrics.Metrics, addr string, public bool) error {
	if err := m.Watch(n.ex); err != nil {
		return err
	}
	// Metrics are a convenience: a busy port (another daemon on this
	// machine) is reported, not fatal.
	var err error
	if n.metrics, err = m.Serve(addr, public); err != nil {
		if errors.Is(err, metrics.ErrNotLoopback) {
			return err
		}
		slog.Warn("metrics not served", "err", err)
	}
	return nil
}

// HostConfig returns the libp2p host's configuration from the repository's:
// identity key, listen addresses, connection manager and NAT traversal.
func HostConfig(c repo.Config, key crypto.PrivKey, listen []string) network.HostConfig {
	return network.HostConfig{
		Identity:     key,
		ListenAddrs:  listen,
		ConnsLow:     c.Swarm.ConnMgr.LowWater,
		ConnsHigh:    c.Swarm.ConnMgr.HighWater,
		GracePeriod:  c.Swarm.ConnMgr.Grace(),
		NATPortMap:   !c.Swarm.DisableNatPortMap,
		AutoNAT:      c.AutoNAT.ServiceMode != repo.AutoNATDisabled,
		HolePunching: repo.On(c.Swarm.EnableHolePunching),
		RelayClient:  repo.On(c.Swarm.RelayClient.Enabled),
	}
}

// dhtRouter names the DHT in log lines about routing, whose "router"
// attribute says which router failed.
const dhtRouter = "dht"

// bootstrapPeers parses the config's Bootstrap list.
func bootstrapPeers(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, a := range addrs {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil {
			return nil, fmt.Errorf("bootstrap peer %q: %w", a, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}

// loopbackOnly reports whether h listens on loopback addresses only.
func loopbackOnly(h host.Host) bool {
	for _, a := range h.Addrs() {
		if !manet.IsIPLoopback(a) {
			return false
		}
	}
	return true
}

// BitswapProtocols checks protocol names against those bsfs speaks.
func BitswapProtocols(names []string) ([]protocol.ID, error) {
	known := network.AllProtocols()
	var out []protocol.ID
	for _, name := range names {
		id := protocol.ID(strings.TrimSpace(name))
		if id == "" {
			continue
		}
		if !slices.Contains(known, id) {
			return nil, fmt.Errorf("unknown Bitswap protocol %q (known: %s)", id, protocolList(known))
		}
		out = append(out, id)
	}
	return out, nil
}

func protocolList(ids []protocol.ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ", ")
}
