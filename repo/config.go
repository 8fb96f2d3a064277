package repo

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/internal/atomicfile"
)

// Config is the repository's configuration, kept as JSON in the file
// "config" so that it can be edited by hand. A fresh config spells out the
// public defaults (listen on every interface, Kubo's bootstrap peers, the
// delegated router), so that a user sees what to change. Networking
// fields left out of the file keep the node private when it is loaded:
// loopback addresses, no bootstrap peers, no delegated routers.
type Config struct {
	Identity  IdentityConfig
	Addresses AddressesConfig
	// Bootstrap lists the peers (multiaddrs ending in /p2p/<id>) to
	// connect to on start and whenever the node has too few peers. A
	// fresh config has DefaultBootstrap; absent means none.
	Bootstrap []string
	Bitswap   BitswapConfig
	Routing   RoutingConfig
	Swarm     SwarmConfig
	AutoNAT   AutoNATConfig
	Metrics   MetricsConfig
	Cache     CacheConfig
	// HTTPRetrieval configures fetching from trustless HTTP gateways.
	HTTPRetrieval HTTPRetrievalConfig
	Provide       ProvideConfig
	DNS           DNSConfig
	Ipns          IpnsConfig
}

// DNSConfig chooses the resolvers of DNSLink names. The names are Kubo's.
type DNSConfig struct {
	// Resolvers maps a domain suffix ("eth." or "eth"; "." for every other
	// name) to the URL of a DNS-over-HTTPS resolver (RFC 8484), such as
	// "https://dns.example/dns-query". Names no suffix covers, and every
	// name when "." is absent, go to the system's resolver.
	Resolvers map[string]string `json:",omitempty"`
}

// IpnsConfig tunes IPNS publishing and resolving. The names and meanings
// are Kubo's; each is a Go duration such as "48h".
type IpnsConfig struct {
	// RecordLifetime is how long a published record stays valid; absent
	// means DefaultRecordLifetime.
	RecordLifetime string `json:",omitempty"`
	// RepublishPeriod is how often the daemon publishes its records
	// again; absent means DefaultRepublishPeriod. It must be shorter than
	// RecordLifetime.
	RepublishPeriod string `json:",omitempty"`
	// MaxCacheTTL caps how long a resolved name is kept, whatever its
	// record's TTL; absent means no cap.
	MaxCacheTTL string `json:",omitempty"`
}

// IPNS defaults, Kubo's.
const (
	DefaultRecordLifetime  = 48 * time.Hour
	DefaultRepublishPeriod = 4 * time.Hour
)

// Lifetime returns Ipns.RecordLifetime.
func (c IpnsConfig) Lifetime() time.Duration {
	return durationOr(c.RecordLifetime, DefaultRecordLifetime)
}

// Republish returns Ipns.RepublishPeriod.
func (c IpnsConfig) Republish() time.Duration {
	return durationOr(c.RepublishPeriod, DefaultRepublishPeriod)
}

// CacheCap returns Ipns.MaxCacheTTL, 0 when there is none.
func (c IpnsConfig) CacheCap() time.Duration { return durationOr(c.MaxCacheTTL, 0) }

// durationOr parses s, a duration checked on load, or returns def when s
// is empty.
func durationOr(s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, _ := time.ParseDuration(s)
	return d
}

// ProvideConfig chooses what the daemon announces to the DHT, and
// re-announces before the records expire. The names are Kubo's.
type ProvideConfig struct {
	// Strategy is "all" (every stored block, fetched ones included: a
	// fresh config's), "pinned" (every block of the pinned DAGs) or
	// "roots" (the pinned roots alone). Absent means "roots": what a node
	// announced before the key existed, and the least it tells of what it
	// reads.
	Strategy string `json:",omitempty"`
}

// Provide strategies.
const (
	ProvideAll    = "all"
	ProvidePinned = "pinned"
	ProvideRoots  = "roots"
)

// ProvideStrategies returns the values Provide.Strategy accepts.
func ProvideStrategies() []string { return []string{ProvideAll, ProvidePinned, ProvideRoots} }

// CacheConfig bounds what the node keeps of what it fetches, and names a
// blocks directory it serves besides its own.
type CacheConfig struct {
	// Size is the quota of fetched, unpinned blocks, such as "10GiB";
	// "" means 10 GiB and "none" no quota.
	Size string `json:",omitempty"`
	// SharedBlocks is a flatfs blocks directory, such as a Kubo
	// repository's blocks/, served read-only as it is.
	SharedBlocks string `json:",omitempty"`
}

// RoutingConfig chooses how providers are found and announced. The names
// are Kubo's.
type RoutingConfig struct {
	// Type is "dht" (the DHT alone, the default), "auto" (the DHT and the
	// DelegatedRouters asked at once), "delegated" (the DelegatedRouters
	// alone: nothing is announced) or "none".
	Type string
	// DelegatedRouters are the base URLs of HTTP routers (the Routing V1
	// API, such as "https://cid.contact") asked for providers when Type is
	// "auto" or "delegated". Empty is the default.
	DelegatedRouters []string
}

// SwarmConfig tunes the libp2p host's connections. Keys are Kubo's. NAT
// traversal applies only to a node listening beyond loopback.
type SwarmConfig struct {
	ConnMgr ConnMgrConfig
	// DisableNatPortMap turns off UPnP and NAT-PMP port mapping.
	DisableNatPortMap bool `json:",omitempty"`
	// EnableHolePunching opens direct connections through NATs; absent
	// means on.
	EnableHolePunching *bool `json:",omitempty"`
	RelayClient        RelayClient
}

// RelayClient configures the circuit relay v2 client.
type RelayClient struct {
	// Enabled makes reservations with relays when the node is not publicly
	// reachable; absent means on.
	Enabled *bool `json:",omitempty"`
}

// ConnMgrConfig sets the connection manager: above HighWater connections
// it closes the least useful down to LowWater, sparing connections younger
// than GracePeriod and peers a fetch depends on.
type ConnMgrConfig struct {
	LowWater    int    `json:",omitempty"`
	HighWater   int    `json:",omitempty"`
	GracePeriod string `json:",omitempty"` // a Go duration, such as "20s"
}

// Connection manager defaults, Kubo's.
const (
	DefaultConnMgrLowWater    = 32
	DefaultConnMgrHighWater   = 96
	DefaultConnMgrGracePeriod = 20 * time.Second
)

// AutoNATConfig configures AutoNAT v2, by which peers tell the node which
// of its addresses they can reach, and it tells them.
type AutoNATConfig struct {
	// ServiceMode is "enabled" (the default when absent) or "disabled".
	ServiceMode string `json:",omitempty"`
}

// AutoNAT service modes.
const (
	AutoNATEnabled  = "enabled"
	AutoNATDisabled = "disabled"
)

// On reports whether an optional switch is on; absent means on.
func On(b *bool) bool { return b == nil || *b }

// Grace returns the connection manager's grace period.
func (c ConnMgrConfig) Grace() time.Duration {
	d, _ := time.ParseDuration(c.GracePeriod) // checked on load
	return d
}

// MetricsConfig places the daemon's Prometheus endpoint.
type MetricsConfig struct {
	// Address is host:port to serve /metrics on, on loopback unless
	// Public is set; "" turns metrics off. Absent means DefaultMetricsAddr.
	Address *string `json:",omitempty"`
	Public  bool    `json:",omitempty"`
}

// DefaultMetricsAddr is where the daemon serves metrics by default.
const DefaultMetricsAddr = "127.0.0.1:5099"

// Routing types.
const (
	RoutingAuto      = "auto"
	RoutingDHT       = "dht"
	RoutingDelegated = "delegated"
	RoutingNone      = "none"
)

// RoutingTypes returns the values Routing.Type accepts.
func RoutingTypes() []string {
	return []string{RoutingAuto, RoutingDHT, RoutingDelegated, RoutingNone}
}

// IdentityConfig is the node's libp2p identity.
type IdentityConfig struct {
	// PeerID is the peer ID derived from PrivKey.
	PeerID string
	// PrivKey is the base64 (standard, padded) of the libp2p-marshalled
	// private key, the encoding Kubo uses in its config.
	PrivKey string
}

// AddressesConfig holds the addresses the node listens on.
type AddressesConfig struct {
	// Swarm are the multiaddrs the libp2p host listens on. A fresh config
	// has DefaultSwarmAddrs; absent means loopback only (TCP and QUIC on
	// 127.0.0.1 port 4002); an explicit empty list means none.
	Swarm []string
}

// BitswapConfig tunes the Bitswap exchange.
type BitswapConfig struct {
	// Protocols are the Bitswap protocol IDs spoken, a subset of
	// BitswapProtocols. Empty means all of them.
	Protocols []string
}

// DefaultSwarmAddrs returns the listen addresses of a new configuration:
// TCP and QUIC v1 on every interface, IPv4 and IPv6, on port 4002, next
// to Kubo's 4001 rather than on it, so that both run on one machine.
func DefaultSwarmAddrs() []string {
	return []string{
		"/ip4/0.0.0.0/tcp/4002",
		"/ip6/::/tcp/4002",
		"/ip4/0.0.0.0/udp/4002/quic-v1",
		"/ip6/::/udp/4002/quic-v1",
	}
}

// loopbackSwarmAddrs are the listen addresses of a config that names none.
func loopbackSwarmAddrs() []string {
	return []string{
		"/ip4/127.0.0.1/tcp/4002",
		"/ip4/127.0.0.1/udp/4002/quic-v1",
	}
}

// DefaultBootstrap returns the bootstrap peers of a new configuration:
// those Kubo falls back to, the public Amino DHT's.
func DefaultBootstrap() []string {
	return []string{
		"/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN",
		"/dnsaddr/bootstrap.libp2p.io/p2p/QmQCU2EcMqAqQPR2i9bChDtGNJchTbq5TbXJJ16u19uLTa",
		"/dnsaddr/bootstrap.libp2p.io/p2p/QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb",
		"/dnsaddr/bootstrap.libp2p.io/p2p/QmcZf59bWwK5XFi76CZX8cbJ4BhTzzA3gU1ZjYZcYW3dwt",
		"/dnsaddr/va1.bootstrap.libp2p.io/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8",
		"/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
		"/ip4/104.131.131.82/udp/4001/quic-v1/p2p/QmaCpDMGvV2BGHeYERUEnRQAwe3N8SzbUtfsmvsqQLuvuJ",
	}
}

// DefaultDelegatedRouters returns the HTTP routers of a new configuration.
func DefaultDelegatedRouters() []string { return []string{"https://cid.contact"} }

// defaultConfig returns a new configuration with identity id and the
// public defaults.
func defaultConfig(id IdentityConfig) Config {
	return Config{
		Identity:  id,
		Addresses: AddressesConfig{Swarm: DefaultSwarmAddrs()},
		Bootstrap: DefaultBootstrap(),
		Routing:   RoutingConfig{Type: RoutingAuto, DelegatedRouters: DefaultDelegatedRouters()},
		Provide:   ProvideConfig{Strategy: ProvideAll},
	}
}

// BitswapProtocols returns the Bitswap protocol IDs bsfs speaks, newest
// first.
func BitswapProtocols() []string {
	return []string{"/ipfs/bitswap/1.2.0", "/ipfs/bitswap/1.1.0", "/ipfs/bitswap/1.0.0", "/ipfs/bitswap"}
}

// ErrConfig is wrapped by every error about the config file's contents.
var ErrConfig = errors.New("invalid repository config")

// newIdentity makes a fresh Ed25519 libp2p identity.
func newIdentity() (IdentityConfig, error) {
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return IdentityConfig{}, err
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		return IdentityConfig{}, err
	}
	raw, err := crypto.MarshalPrivateKey(sk)
	if err != nil {
		return IdentityConfig{}, err
	}
	return IdentityConfig{PeerID: id.String(), PrivKey: base64.StdEncoding.EncodeToString(raw)}, nil
}

// privKey decodes the identity's private key.
func (i IdentityConfig) privKey() (crypto.PrivKey, error) {
	raw, err := base64.StdEncoding.DecodeString(i.PrivKey)
	if err != nil {
		return nil, fmt.Errorf("%w: Identity.PrivKey: %v", ErrConfig, err)
	}
	sk, err := crypto.UnmarshalPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: Identity.PrivKey: %v", ErrConfig, err)
	}
	return sk, nil
}

// readConfig loads the config file at path, fills in defaults and checks
// it. Unknown fields are refused, so that a misspelt one is not silently
// ignored.
func readConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	if dec.More() {
		return Config{}, fmt.Errorf("%w: %s: data after the JSON object", ErrConfig, path)
	}
	if err := c.fillDefaults(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// writeConfig writes c to path atomically: to a temporary file in the same
// directory, synced, then renamed over path. The file is readable by its
// owner only, since it holds the private key.
func writeConfig(path string, c Config) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	return atomicfile.Write(path, data)
}
