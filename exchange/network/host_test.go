package network

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
)

// Issue 14: hostOptions turns on the NAT traversal asked for, for a host
// that listens beyond loopback, and none of it for a loopback-only one or
// when not asked. The options are applied to a libp2p config and read
// back; no host is built.
func TestHostOptions(t *testing.T) {
	all := HostConfig{NATPortMap: true, AutoNAT: true, HolePunching: true, RelayClient: true}
	public := []string{"/ip4/0.0.0.0/tcp/4002", "/ip6/::/udp/4002/quic-v1"}
	for _, tc := range []struct {
		name string
		cfg  HostConfig
		on   bool
	}{
		{"PublicAllAsked", withListen(all, public), true},
		{"PublicNoneAsked", HostConfig{ListenAddrs: public}, false},
		{"LoopbackAllAsked", HostConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip6/::1/udp/0/quic-v1"}, NATPortMap: true, AutoNAT: true, HolePunching: true, RelayClient: true}, false},
		{"DefaultListenAllAsked", all, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := applied(t, tc.cfg)
			got := map[string]bool{
				"NAT port mapping": c.NATManager != nil,
				"AutoNAT v2":       c.EnableAutoNATv2,
				"hole punching":    c.EnableHolePunching,
				"relay transport":  c.Relay,
				"relay client":     c.EnableAutoRelay,
			}
			for what, on := range got {
				if on != tc.on {
					t.Errorf("%s: %t, want %t", what, on, tc.on)
				}
			}
		})
	}
}

// The connection manager gets the water marks and grace period asked for,
// and NewHost's own when none are.
func TestHostOptionsConnManager(t *testing.T) {
	for _, tc := range []struct {
		cfg  HostConfig
		want connmgr.CMInfo
	}{
		{HostConfig{ConnsLow: 32, ConnsHigh: 96, GracePeriod: 20 * time.Second}, connmgr.CMInfo{LowWater: 32, HighWater: 96, GracePeriod: 20 * time.Second}},
		{HostConfig{}, connmgr.CMInfo{LowWater: 100, HighWater: 400, GracePeriod: time.Minute}},
	} {
		c := applied(t, tc.cfg)
		info := c.ConnManager.(interface{ GetInfo() connmgr.CMInfo }).GetInfo()
		if info.LowWater != tc.want.LowWater || info.HighWater != tc.want.HighWater || info.GracePeriod != tc.want.GracePeriod {
			t.Errorf("%+v: connection manager %d/%d/%v, want %d/%d/%v", tc.cfg, info.LowWater, info.HighWater, info.GracePeriod,
				tc.want.LowWater, tc.want.HighWater, tc.want.GracePeriod)
		}
	}
}

// applied returns the libp2p config hostOptions makes of cfg.
func applied(t *testing.T, cfg HostConfig) *libp2p.Config {
	t.Helper()
	opts, err := hostOptions(cfg, &hostRef{})
	if err != nil {
		t.Fatal(err)
	}
	var c libp2p.Config
	if err := c.Apply(opts...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.ConnManager.Close()
		c.ResourceManager.Close()
	})
	return &c
}

func withListen(cfg HostConfig, addrs []string) HostConfig {
	cfg.ListenAddrs = addrs
	return cfg
}
