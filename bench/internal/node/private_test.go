package node

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCheckPrivate(t *testing.T) {
	if err := checkPrivate(t.TempDir()); err != nil {
		t.Errorf("repository not created yet: %v", err)
	}
	for config, private := range map[string]bool{
		`{"Addresses": {"Swarm": ["/ip4/127.0.0.1/tcp/0", "/ip6/::1/udp/0/quic-v1"]}, "Bootstrap": ["/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8"], "Routing": {"DelegatedRouters": []}}`: true,
		`{"Addresses": {"Swarm": ["/ip4/0.0.0.0/tcp/4002"]}}`:                                                      false,
		`{"Bootstrap": ["/dnsaddr/bootstrap.libp2p.io/p2p/12D3KooWKnDdG3iXw9eTFijk3EWSunZcFi54Zka4wmtqtt6rPxc8"]}`: false,
		`{"Routing": {"DelegatedRouters": ["https://cid.contact"]}}`:                                               false,
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "config"), []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := checkPrivate(dir); (err == nil) != private {
			t.Errorf("%s: checkPrivate = %v, want private %t", config, err, private)
		}
	}
}
