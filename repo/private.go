package repo

import (
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// ReadConfig reads the config of the repository at path, with the defaults
// filled in, without opening the repository, which a running daemon may
// hold.
func ReadConfig(path string) (Config, error) {
	return readConfig(filepath.Join(path, configFile))
}

// CheckPrivate returns an error unless c keeps its node on loopback: every
// listen address and bootstrap peer on a loopback IP (no /dns or /dnsaddr
// name), and delegated routers and DNS-over-HTTPS resolvers only at
// loopback IPs.
func (c *Config) CheckPrivate() error {
	var bad []string
	for _, a := range slices.Concat(c.Addresses.Swarm, c.Bootstrap) {
		m, err := ma.NewMultiaddr(a)
		if err != nil || !manet.IsIPLoopback(m) {
			bad = append(bad, a)
		}
	}
	for _, r := range c.Routing.DelegatedRouters {
		if u, err := url.Parse(r); err != nil || !isLoopbackIP(u.Hostname()) {
			bad = append(bad, r)
		}
	}
	for _, r := range c.DNS.Resolvers {
		if u, err := url.Parse(r); err != nil || !isLoopbackIP(u.Hostname()) {
			bad = append(bad, r)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("config would take the node off loopback: %q", bad)
	}
	return nil
}

// isLoopbackIP reports whether host is a loopback IP literal (a name is
// not: looking it up would leave loopback).
func isLoopbackIP(host string) bool {
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
