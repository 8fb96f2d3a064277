package repo

import (
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/bsfs/bsfs/exchange/routing"
	"github.com/bsfs/bsfs/internal/names"
)

// fillDefaults sets the defaults of the fields left out and checks the
// rest, section by section; the first error found is returned.
func (c *Config) fillDefaults() error {
	steps := []func() error{
		c.Identity.fillDefaults,
		c.Addresses.fillDefaults,
		c.fillBootstrap,
		c.Routing.fillType,
		c.Swarm.ConnMgr.fillDefaults,
		c.AutoNAT.check,
		c.Routing.fillDelegated,
		c.Metrics.fillDefaults,
		c.Bitswap.fillDefaults,
		c.HTTPRetrieval.check,
		c.Provide.fillDefaults,
		c.DNS.check,
		c.Ipns.check,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// fillDefaults requires the private key and sets the peer ID from it, or
// checks the one given against it.
func (i *IdentityConfig) fillDefaults() error {
	if i.PrivKey == "" {
		return fmt.Errorf("%w: Identity.PrivKey is missing", ErrConfig)
	}
	sk, err := i.privKey()
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		return fmt.Errorf("%w: Identity.PrivKey: %v", ErrConfig, err)
	}
	switch i.PeerID {
	case "":
		i.PeerID = id.String()
	case id.String():
	default:
		return fmt.Errorf("%w: Identity.PeerID %s is not the ID of Identity.PrivKey (%s)", ErrConfig, i.PeerID, id)
	}
	return nil
}

// fillDefaults listens on loopback when no swarm address is given and
// checks the ones that are.
func (a *AddressesConfig) fillDefaults() error {
	if a.Swarm == nil {
		a.Swarm = loopbackSwarmAddrs()
	}
	for _, s := range a.Swarm {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return fmt.Errorf("%w: Addresses.Swarm %q: %v", ErrConfig, s, err)
		}
	}
	return nil
}

// fillBootstrap makes an absent bootstrap list empty and checks the peers.
func (c *Config) fillBootstrap() error {
	if c.Bootstrap == nil {
		c.Bootstrap = []string{}
	}
	for _, a := range c.Bootstrap {
		if _, err := peer.AddrInfoFromString(a); err != nil {
			return fmt.Errorf("%w: Bootstrap %q: %v", ErrConfig, a, err)
		}
	}
	return nil
}

// fillType sets the routing type to the DHT when absent and checks it.
func (r *RoutingConfig) fillType() error {
	if r.Type == "" {
		r.Type = RoutingDHT
	}
	if !slices.Contains(RoutingTypes(), r.Type) {
		return fmt.Errorf("%w: Routing.Type %q: want one of %q", ErrConfig, r.Type, RoutingTypes())
	}
	return nil
}

// fillDelegated makes an absent list of delegated routers empty, checks
// their URLs, and requires one when the routing is delegated alone.
func (r *RoutingConfig) fillDelegated() error {
	if r.DelegatedRouters == nil {
		r.DelegatedRouters = []string{}
	}
	for _, u := range r.DelegatedRouters {
		if err := routing.CheckRouterURL(u); err != nil {
			return fmt.Errorf("%w: Routing.DelegatedRouters %q: %v", ErrConfig, u, err)
		}
	}
	if r.Type == RoutingDelegated && len(r.DelegatedRouters) == 0 {
		return fmt.Errorf("%w: Routing.Type %q needs at least one URL in Routing.DelegatedRouters", ErrConfig, RoutingDelegated)
	}
	return nil
}

// check accepts an absent service mode, "enabled" or "disabled".
func (a *AutoNATConfig) check() error {
	switch a.ServiceMode {
	case "", AutoNATEnabled, AutoNATDisabled:
		return nil
	default:
		return fmt.Errorf("%w: AutoNAT.ServiceMode %q: want %q or %q", ErrConfig, a.ServiceMode, AutoNATEnabled, AutoNATDisabled)
	}
}

// fillDefaults sets the default metrics address when absent.
func (m *MetricsConfig) fillDefaults() error {
	if m.Address == nil {
		addr := DefaultMetricsAddr
		m.Address = &addr
	}
	return nil
}

// fillDefaults makes an absent protocol list empty and checks the
// protocols named.
func (b *BitswapConfig) fillDefaults() error {
	if b.Protocols == nil {
		b.Protocols = []string{}
	}
	for _, p := range b.Protocols {
		if !slices.Contains(BitswapProtocols(), p) {
			return fmt.Errorf("%w: Bitswap.Protocols: unknown protocol %q (known: %q)", ErrConfig, p, BitswapProtocols())
		}
	}
	return nil
}

// fillDefaults sets the provide strategy to "roots" when absent and
// checks it.
func (p *ProvideConfig) fillDefaults() error {
	if p.Strategy == "" {
		p.Strategy = ProvideRoots
	}
	if !slices.Contains(ProvideStrategies(), p.Strategy) {
		return fmt.Errorf("%w: Provide.Strategy %q: want one of %q", ErrConfig, p.Strategy, ProvideStrategies())
	}
	return nil
}

// fillDefaults sets Kubo's water marks and grace period where absent and
// checks them.
func (c *ConnMgrConfig) fillDefaults() error {
	if c.LowWater == 0 {
		c.LowWater = DefaultConnMgrLowWater
	}
	if c.HighWater == 0 {
		c.HighWater = DefaultConnMgrHighWater
	}
	if c.GracePeriod == "" {
		c.GracePeriod = DefaultConnMgrGracePeriod.String()
	}
	if c.LowWater < 0 || c.HighWater < c.LowWater {
		return fmt.Errorf("%w: Swarm.ConnMgr: LowWater %d and HighWater %d: want 0 <= LowWater <= HighWater", ErrConfig, c.LowWater, c.HighWater)
	}
	if d, err := time.ParseDuration(c.GracePeriod); err != nil || d < 0 {
		return fmt.Errorf("%w: Swarm.ConnMgr.GracePeriod %q: want a duration such as \"20s\"", ErrConfig, c.GracePeriod)
	}
	return nil
}

// check requires every DNS resolver to be an http or https URL.
func (d *DNSConfig) check() error {
	for suffix, u := range d.Resolvers {
		if err := names.CheckDoHURL(u); err != nil {
			return fmt.Errorf("%w: DNS.Resolvers %q: %q: %v", ErrConfig, suffix, u, err)
		}
	}
	return nil
}

// check requires durations where given, positive, and a republish period
// shorter than the record lifetime.
func (c *IpnsConfig) check() error {
	for _, f := range []struct{ key, value string }{
		{"RecordLifetime", c.RecordLifetime}, {"RepublishPeriod", c.RepublishPeriod}, {"MaxCacheTTL", c.MaxCacheTTL},
	} {
		if f.value == "" {
			continue
		}
		if d, err := time.ParseDuration(f.value); err != nil || d <= 0 {
			return fmt.Errorf("%w: Ipns.%s %q: want a positive duration such as \"48h\"", ErrConfig, f.key, f.value)
		}
	}
	if c.Republish() >= c.Lifetime() {
		return fmt.Errorf("%w: Ipns.RepublishPeriod %v must be shorter than Ipns.RecordLifetime %v, or records expire before they are published again", ErrConfig, c.Republish(), c.Lifetime())
	}
	return nil
}
