package kubotest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// Configure edits the config of the Kubo repository at ipfsPath, made by
// `ipfs init --profile=test`, so that the node stays on 127.0.0.1 with no
// routing (unless opts.Routing), discovery or outside traffic, and no
// bootstrap peers but opts.Bootstrap.
func Configure(ipfsPath string, opts Options) error {
	file := filepath.Join(ipfsPath, "config")
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return err
	}
	optional, err := optionSettings(opts)
	if err != nil {
		return err
	}
	for _, s := range append(isolatedSettings(), optional...) {
		if err := setPath(cfg, s.key, s.value); err != nil {
			return err
		}
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, out, 0o600)
}

// setting is a value for a dotted key of the config; a later setting of
// the same key wins.
type setting struct {
	key   string
	value any
}

// isolatedSettings keep a node on 127.0.0.1, with no routing, discovery,
// bootstrap peers or outside traffic.
func isolatedSettings() []setting {
	return []setting{
		{"Addresses.Swarm", []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}},
		{"Addresses.API", "/ip4/127.0.0.1/tcp/0"},
		{"Addresses.Gateway", []string{}},
		{"Addresses.Announce", []string{}},
		{"Addresses.AppendAnnounce", []string{}},
		{"Bootstrap", []string{}},
		{"Peering.Peers", []any{}},
		{"Discovery.MDNS.Enabled", false},
		// A null router: no DHT, no delegated routing. Bitswap still asks
		// every connected peer.
		{"Routing.Type", "none"},
		{"Routing.DelegatedRouters", []string{}},
		{"Ipns.DelegatedPublishers", []string{}},
		{"Provide.Enabled", false},
		{"HTTPRetrieval.Enabled", false},
		{"AutoNAT.ServiceMode", "disabled"},
		{"AutoConf.Enabled", false},
		{"AutoTLS.Enabled", false},
		{"Swarm.DisableNatPortMap", true},
		{"Swarm.EnableHolePunching", false},
		{"Swarm.RelayClient.Enabled", false},
		{"Swarm.RelayService.Enabled", false},
		{"Swarm.Transports.Network.Relay", false},
		{"Plugins.Plugins.telemetry.Config.Mode", "off"},
	}
}

// optionSettings are what opts changes of the isolated settings, applied
// after them.
func optionSettings(opts Options) ([]setting, error) {
	var settings []setting
	if opts.TCPOnly {
		settings = append(settings, setting{"Addresses.Swarm", []string{"/ip4/127.0.0.1/tcp/0"}})
	}
	if opts.Gateway {
		settings = append(settings,
			setting{"Addresses.Gateway", "/ip4/127.0.0.1/tcp/0"},
			setting{"Gateway.NoFetch", true},
		)
	}
	if len(opts.Bootstrap) > 0 {
		peers, err := bootstrapPeers(opts.Bootstrap)
		if err != nil {
			return nil, err
		}
		settings = append(settings, setting{"Bootstrap", peers})
	}
	if opts.ProvideStrategy != "" {
		settings = append(settings, setting{"Provide.Strategy", opts.ProvideStrategy})
	}
	if opts.Routing != "" {
		settings = append(settings,
			setting{"Routing.Type", opts.Routing},
			// The LAN DHT otherwise drops 127.0.0.1, the only address here.
			setting{"Routing.LoopbackAddressesOnLanDHT", true},
			setting{"Provide.Enabled", true},
			setting{"Import.FastProvideRoot", true},
			setting{"Import.FastProvideWait", true},
		)
	}
	return settings, nil
}

// bootstrapPeers checks that every address is a peer's on 127.0.0.1 and
// returns them as strings.
func bootstrapPeers(addrs []multiaddr.Multiaddr) ([]string, error) {
	peers := make([]string, len(addrs))
	for i, a := range addrs {
		if !strings.HasPrefix(a.String(), "/ip4/127.0.0.1/") {
			return nil, fmt.Errorf("bootstrap peer %s is not on 127.0.0.1", a)
		}
		if _, err := peer.AddrInfoFromP2pAddr(a); err != nil {
			return nil, fmt.Errorf("bootstrap peer %s: %w", a, err)
		}
		peers[i] = a.String()
	}
	return peers, nil
}

// setPath sets a dotted key in a decoded JSON object, creating the
// intermediate objects that are missing or null.
func setPath(cfg map[string]any, key string, value any) error {
	parts := strings.Split(key, ".")
	m := cfg
	for _, p := range parts[:len(parts)-1] {
		switch next := m[p].(type) {
		case map[string]any:
			m = next
		case nil:
			child := map[string]any{}
			m[p] = child
			m = child
		default:
			return fmt.Errorf("config key %s: %s is a %T, not an object", key, p, next)
		}
	}
	m[parts[len(parts)-1]] = value
	return nil
}
