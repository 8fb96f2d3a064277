package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/network"
	"github.com/bsfs/bsfs/exchange/routing"
	mountfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/metrics"
	"github.com/bsfs/bsfs/repo"
	"github.com/bsfs/bsfs/unixfs"
)

// readyLine is the daemon's last line of start-up output.
const readyLine = "Daemon is ready"

// shutdownTimeout bounds waiting for API requests in flight at shutdown.
const shutdownTimeout = 5 * time.Second

// daemonFlags are the daemon's overrides of the config.
type daemonFlags struct {
	listen    []string
	protocols string
	routing   string
	metrics   string
	// metricsSet: --metrics was given (an empty value turns metrics off).
	metricsSet bool
	// cacheSize and blocks override the config's Cache.Size and
	// Cache.SharedBlocks.
	cacheSize, blocks string
	// mount is a directory the daemon mounts its content at (daemon only).
	mount string
}

func newDaemonCmd() *cobra.Command {
	var flags daemonFlags
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the node: libp2p host, Bitswap and the local API",
		Long: fmt.Sprintf(`Run the node until SIGINT or SIGTERM: open the repository (creating it if
absent), start the libp2p host and the Bitswap exchange, and serve the
local API on the socket api.sock in the repository. A command holding the
repository is waited for, up to %s; another daemon is not.

It prints the peer ID, each listen address ending in /p2p/<peer ID>, and
then the line %q.`, lockWait, readyLine),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags.metricsSet = cmd.Flags().Changed("metrics")
			return runDaemon(cmd.Context(), cmd.OutOrStdout(), flags)
		},
	}
	addNodeFlags(cmd, &flags)
	cmd.Flags().StringVar(&flags.mount, "mount", "", "also mount the content at this existing directory, as `bsfs mount` does")
	return cmd
}

// addNodeFlags adds the flags of a command that runs a node.
func addNodeFlags(cmd *cobra.Command, flags *daemonFlags) {
	f := cmd.Flags()
	f.StringVar(&flags.routing, "routing", "", `"auto", "dht", "delegated" or "none", instead of the config's Routing.Type`)
	f.StringVar(&flags.metrics, "metrics", "", `host:port to serve Prometheus metrics and pprof on, instead of the config's Metrics.Address ("" turns them off)`)
	f.StringArrayVar(&flags.listen, "listen", nil, "multiaddr to listen on, instead of the config's Addresses.Swarm (repeatable)")
	f.StringVar(&flags.cacheSize, "cache-size", "", `quota of fetched, unpinned blocks, such as 10GiB or "none", instead of the config's Cache.Size (default 10GiB)`)
	f.StringVar(&flags.blocks, "blocks", "", "a flatfs blocks directory (such as a Kubo repository's blocks/) to serve read-only besides ours, instead of the config's Cache.SharedBlocks")
	f.StringVar(&flags.protocols, "bitswap-protocols", "", "comma-separated Bitswap protocol IDs to speak, instead of the config's Bitswap.Protocols (e.g. /ipfs/bitswap/1.2.0,/ipfs/bitswap/1.0.0)")
}

// runDaemon runs the node until ctx ends, then shuts it down.
func runDaemon(ctx context.Context, out io.Writer, flags daemonFlags) error {
	if flags.protocols != "" {
		// Refuse a bad flag before touching the repository.
		if _, err := bitswapProtocols(strings.Split(flags.protocols, ",")); err != nil {
			return err
		}
	}
	if flags.mount != "" {
		// Likewise a mount that cannot be made.
		if err := mountfs.Check(flags.mount); err != nil {
			return err
		}
	}
	path, err := repo.DefaultPath()
	if err != nil {
		return err
	}
	r, err := openForNode(ctx, path)
	if err != nil {
		return err
	}
	n, err := startNode(r, flags)
	if err != nil {
		return errors.Join(err, r.Close())
	}
	api, err := serveAPI(ctx, r, n)
	if err != nil {
		return errors.Join(err, n.Close())
	}
	printNode(out, n, api)
	mounted := make(chan error, 1)
	if flags.mount != "" {
		g, cfg := n.ownMount(mountfs.Config{ReadTimeout: defaultReadTimeout, Logger: slog.Default()})
		mctx, stopMount := context.WithCancel(ctx)
		defer stopMount()
		go func() { mounted <- serveMount(mctx, out, flags.mount, g, cfg) }()
	}
	fmt.Fprintln(out, readyLine)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-api.served:
	}
	if flags.mount != "" {
		select {
		case err := <-mounted:
			serveErr = errors.Join(serveErr, err)
		case <-time.After(shutdownTimeout):
			serveErr = errors.Join(serveErr, fmt.Errorf("unmounting %s timed out", flags.mount))
		}
	}
	return errors.Join(serveErr, api.close(), n.Close())
}

// printNode prints what a started node offers: its peer ID, each listen
// address, the API socket and the metrics URL.
func printNode(out io.Writer, n *repoNode, api *apiServer) {
	id := hostIdentity(n.host)
	fmt.Fprintf(out, "PeerID: %s\n", id.ID)
	for _, a := range id.Addrs {
		fmt.Fprintf(out, "Swarm listening on %s\n", a)
	}
	fmt.Fprintf(out, "API listening on %s\n", api.sock)
	if n.metrics != nil {
		fmt.Fprintf(out, "Metrics on http://%s/metrics\n", n.metrics.Addr())
	}
}

// ownMount returns what a mount of this node's own exchange reads through
// (each read's blocks held in the cache) and cfg completed with the
// node's roots, store, cache usage and read latency histogram.
func (n *repoNode) ownMount(cfg mountfs.Config) (unixfs.BlockGetter, mountfs.Config) {
	cfg.UnixFS.Haser = n.repo.Blockstore()
	cfg.Roots = n
	cfg.Usage = n.cacheUsage
	cfg.ReadLatency = n.readLatency
	return n.cache.Getter(exchangeBlocks{n.ex}), cfg
}

// apiServer is the local API being served on the repository's socket.
type apiServer struct {
	sock           string
	srv            *http.Server
	served         chan error // the server's end, if it ends on its own
	cancelRequests context.CancelFunc
}

// serveAPI serves n's local API on r's socket until close. Requests in
// flight are cancelled at close, so that their fetches end.
func serveAPI(ctx context.Context, r *repo.Repo, n *repoNode) (*apiServer, error) {
	sock := r.APISocket()
	// We hold the repository's lock, so a socket left there is stale.
	if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("removing stale API socket: %w", err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("API socket: %w", err)
	}
	// The API has no authentication: only the repository's owner may use it.
	if err := os.Chmod(sock, 0o600); err != nil {
		return nil, errors.Join(fmt.Errorf("API socket: %w", err), ln.Close())
	}
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	a := &apiServer{
		sock: sock,
		srv: &http.Server{
			Handler:           newAPIHandler(n),
			ReadHeaderTimeout: 10 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return reqCtx },
		},
		served:         make(chan error, 1),
		cancelRequests: cancelRequests,
	}
	go func() { a.served <- a.srv.Serve(ln) }()
	return a, nil
}

// close stops the API and removes its socket.
func (a *apiServer) close() error {
	a.cancelRequests()
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	if err := a.srv.Shutdown(shutCtx); err != nil {
		errs = append(errs, fmt.Errorf("API shutdown: %w", err), a.srv.Close())
	}
	if err := os.Remove(a.sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// startNode starts the host and the exchange on r.
func startNode(r *repo.Repo, flags daemonFlags) (*repoNode, error) {
	listen := r.Config.Addresses.Swarm
	if len(flags.listen) > 0 {
		listen = flags.listen
	}
	protoNames := r.Config.Bitswap.Protocols
	if flags.protocols != "" {
		protoNames = strings.Split(flags.protocols, ",")
	}
	protos, err := bitswapProtocols(protoNames)
	if err != nil {
		return nil, err
	}
	key, err := r.PrivKey()
	if err != nil {
		return nil, err
	}
	h, err := network.NewHost(hostConfig(r.Config, key, listen))
	if err != nil {
		return nil, err
	}
	n := &repoNode{repo: r, host: h}
	fail := func(err error) (*repoNode, error) { return nil, errors.Join(err, n.Close()) }
	if n.reach, err = watchReachability(h); err != nil {
		return fail(err)
	}
	cfg := exchange.Config{Network: network.Config{Protocols: protos}, HTTP: httpRetrieval(r.Config.HTTPRetrieval)}

	routingType := r.Config.Routing.Type
	if flags.routing != "" {
		routingType = flags.routing
	}
	if !slices.Contains(repo.RoutingTypes(), routingType) {
		return fail(fmt.Errorf("unknown routing %q (--routing or Routing.Type): want one of %q", routingType, repo.RoutingTypes()))
	}
	if routingType == repo.RoutingAuto || routingType == repo.RoutingDHT {
		bootstrap, err := bootstrapPeers(r.Config.Bootstrap)
		if err != nil {
			return fail(err)
		}
		n.router, err = routing.New(context.Background(), h, routing.Config{
			Bootstrap: bootstrap,
			// A node that listens on loopback only can reach only peers
			// on this machine: let their addresses into the LAN DHT.
			LoopbackOnLAN: loopbackOnly(h),
			Logger:        slog.Default().With("router", dhtRouter),
		})
		if err != nil {
			return fail(err)
		}
		cfg.Providers = n.router
		n.strategy = r.Config.Provide.Strategy
		if n.strategy == repo.ProvideAll {
			cfg.Stored = n.router
		}
	}
	routers := r.Config.Routing.DelegatedRouters
	if routingType == repo.RoutingDelegated && len(routers) == 0 {
		return fail(fmt.Errorf("routing %q needs a router URL in the config's Routing.DelegatedRouters", routingType))
	}
	if (routingType == repo.RoutingAuto || routingType == repo.RoutingDelegated) && len(routers) > 0 {
		n.delegated, err = routing.NewDelegated(routing.DelegatedConfig{
			Routers: routers,
			Self:    h.ID(),
			HTTP:    cfg.HTTP != nil,
			Logger:  slog.Default(),
		})
		if err != nil {
			return fail(fmt.Errorf("config Routing.DelegatedRouters: %w", err))
		}
		if n.router != nil {
			cfg.Providers = routing.Combine(n.router, n.delegated)
		} else {
			cfg.Providers = n.delegated
		}
	}

	addr, public := *r.Config.Metrics.Address, r.Config.Metrics.Public
	if flags.metricsSet {
		addr = flags.metrics
	}
	var m *metrics.Metrics
	if addr != "" {
		m = metrics.New()
		cfg.BlockLatency = m.BlockLatency.Observe
		n.readLatency = m.ReadLatency.Observe
	}
	if n.cache, n.shared, err = openCache(r, flags); err != nil {
		return fail(err)
	}
	n.ex, err = exchange.New(h, n.cache, cfg)
	if err != nil {
		return fail(err)
	}
	if m != nil {
		if err := m.Watch(n.ex); err != nil {
			return fail(err)
		}
		// Metrics are a convenience: a busy port (another daemon on this
		// machine) is reported, not fatal.
		if n.metrics, err = m.Serve(addr, public); err != nil {
			if errors.Is(err, metrics.ErrNotLoopback) {
				return fail(err)
			}
			slog.Warn("metrics not served", "err", err)
		}
	}
	if n.router != nil {
		ctx, cancel := context.WithCancel(context.Background())
		n.stopAnnounce = cancel
		n.background.Go(func() { n.announce(ctx) })
	}
	return n, nil
}

// hostConfig returns the libp2p host's configuration from the repository's:
// identity key, listen addresses, connection manager and NAT traversal.
func hostConfig(c repo.Config, key crypto.PrivKey, listen []string) network.HostConfig {
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

// bitswapProtocols checks protocol names against those bsfs speaks.
func bitswapProtocols(names []string) ([]protocol.ID, error) {
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
