package repo

import "testing"

func TestCheckPrivate(t *testing.T) {
	for name, tc := range map[string]struct {
		c       Config
		private bool
	}{
		"loopback": {Config{
			Addresses: AddressesConfig{Swarm: []string{"/ip4/127.0.0.1/tcp/0", "/ip6/::1/udp/0/quic-v1"}},
			Bootstrap: []string{"/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8"},
			Routing:   RoutingConfig{DelegatedRouters: []string{"http://127.0.0.1:8080", "http://[::1]:8080"}},
		}, true},
		"any interface":   {Config{Addresses: AddressesConfig{Swarm: []string{"/ip4/0.0.0.0/tcp/4002"}}}, false},
		"dnsaddr":         {Config{Bootstrap: []string{"/dnsaddr/bootstrap.libp2p.io/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8"}}, false},
		"router":          {Config{Routing: RoutingConfig{DelegatedRouters: []string{"https://cid.contact"}}}, false},
		"DoH on loopback": {Config{DNS: DNSConfig{Resolvers: map[string]string{".": "http://127.0.0.1:53/dns-query"}}}, true},
		"DoH":             {Config{DNS: DNSConfig{Resolvers: map[string]string{"eth.": "https://dns.example/dns-query"}}}, false},
		"router named":    {Config{Routing: RoutingConfig{DelegatedRouters: []string{"http://localhost:8080"}}}, false},
	} {
		if err := tc.c.CheckPrivate(); (err == nil) != tc.private {
			t.Errorf("%s: CheckPrivate = %v, want private %t", name, err, tc.private)
		}
	}
}
