package node

import (
	"context"
	"log/slog"

	"github.com/bsfs/bsfs/exchange/routing"
	"github.com/bsfs/bsfs/internal/names"
	"github.com/bsfs/bsfs/repo"
)

// ResolveName resolves an IPNS name or DNSLink domain (bare or as
// /ipns/<name>[/path]) to what it points at. Online, IPNS records come from
// the DHT and the delegated routers; offline, from the delegated routers
// alone when Routing.Type is "auto" or "delegated". DNSLink asks the
// resolvers of DNS.Resolvers either way.
func (n *Node) ResolveName(ctx context.Context, name string) (names.Resolved, error) {
	r, err := n.nameResolver()
	if err != nil {
		return names.Resolved{}, err
	}
	return r.Resolve(ctx, name)
}

// nameResolver returns the node's resolver, made on first use.
func (n *Node) nameResolver() (*names.Resolver, error) {
	n.namesMu.Lock()
	defer n.namesMu.Unlock()
	if n.names != nil {
		return n.names, nil
	}
	c := n.repo.Config
	dns, err := names.NewDNS(c.DNS.Resolvers)
	if err != nil {
		return nil, err
	}
	n.dns = dns
	sources := make(map[string]names.Source)
	if n.router != nil {
		sources[dhtRouter] = n.router
	}
	if d, err := n.ipnsDelegated(); err != nil {
		return nil, err
	} else if d != nil {
		sources["delegated"] = d
	}
	cfg := names.Config{Sources: sources, DNS: dns, MaxCacheTTL: c.Ipns.CacheCap()}
	if n.host != nil {
		// The daemon logs the names it could not resolve; a command run
		// offline says so in its error alone.
		cfg.Logger = slog.Default()
	}
	n.names = names.New(cfg)
	return n.names, nil
}

// ipnsDelegated returns the delegated routers IPNS records are asked of
// and published to: the exchange's online, or, offline, those of the
// config when Routing.Type is "auto" or "delegated"; nil for none.
func (n *Node) ipnsDelegated() (*routing.Delegated, error) {
	if n.delegated != nil || n.host != nil {
		return n.delegated, nil
	}
	if n.ownDelegated != nil {
		return n.ownDelegated, nil
	}
	c := n.repo.Config.Routing
	if (c.Type != repo.RoutingAuto && c.Type != repo.RoutingDelegated) || len(c.DelegatedRouters) == 0 {
		return nil, nil
	}
	d, err := routing.NewDelegated(routing.DelegatedConfig{Routers: c.DelegatedRouters, Logger: slog.Default()})
	if err != nil {
		return nil, err
	}
	n.ownDelegated = d
	return d, nil
}
