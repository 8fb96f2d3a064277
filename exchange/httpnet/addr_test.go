package httpnet

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestGatewayURL(t *testing.T) {
	for _, tc := range []struct {
		addr, want string // want "" means refused
	}{
		{"/dns/gw.example/tcp/443/tls/http", "https://gw.example:443"},
		{"/dns4/GW.Example./tcp/8443/https", "https://gw.example:8443"},
		{"/dns6/gw.example/tcp/443/tls/http/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA", "https://gw.example:443"},
		{"/ip4/203.0.113.7/tcp/443/tls/http", "https://203.0.113.7:443"},
		{"/ip6/2001:db8::1/tcp/443/tls/http", "https://[2001:db8::1]:443"},
		{"/ip4/127.0.0.1/tcp/8080/http", "http://127.0.0.1:8080"},
		{"/ip4/10.1.2.3/tcp/80/http", "http://10.1.2.3:80"},
		{"/ip4/192.168.1.9/tcp/80/http", "http://192.168.1.9:80"},
		{"/ip6/::1/tcp/80/http", "http://[::1]:80"},
		{"/ip6/fd00::5/tcp/80/http", "http://[fd00::5]:80"},
		// Plain HTTP to a public address or a name is refused.
		{"/ip4/203.0.113.7/tcp/80/http", ""},
		{"/dns/gw.example/tcp/80/http", ""},
		{"/ip6/2001:db8::1/tcp/80/http", ""},
		// Not gateways, or forms not supported.
		{"/ip4/127.0.0.1/tcp/4001", ""},
		{"/ip4/127.0.0.1/udp/4001/quic-v1", ""},
		{"/ip4/0.0.0.0/tcp/80/http", ""},
		{"/ip4/127.0.0.1/tcp/0/http", ""},
		{"/dns/gw.example/tcp/443/tls/sni/other.example/http", ""},
		{"/dns/gw.example/tcp/443/tls/http/http-path/foo", ""},
		{"/ip4/127.0.0.1/tcp/80/tls/ws", ""},
	} {
		a, err := ma.NewMultiaddr(tc.addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		u, ok := GatewayURL(a)
		got := ""
		if ok {
			got = u.String()
		}
		if got != tc.want {
			t.Errorf("GatewayURL(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestGatewayURLsAndIsHTTP(t *testing.T) {
	ai := peer.AddrInfo{Addrs: []ma.Multiaddr{
		ma.StringCast("/ip4/127.0.0.1/tcp/4001"),
		ma.StringCast("/ip4/127.0.0.1/tcp/8080/http"),
		ma.StringCast("/ip4/203.0.113.7/tcp/80/http"),
		ma.StringCast("/ip4/127.0.0.1/tcp/8080/http"),
		ma.StringCast("/dns/gw.example/tcp/443/https"),
	}}
	us := GatewayURLs(ai)
	if len(us) != 2 || us[0].String() != "http://127.0.0.1:8080" || us[1].String() != "https://gw.example:443" {
		t.Fatalf("GatewayURLs = %v", us)
	}
	var http int
	for _, a := range ai.Addrs {
		if IsHTTP(a) {
			http++
		}
	}
	if http != 4 {
		t.Fatalf("IsHTTP counted %d HTTP addresses, want 4", http)
	}
}

func TestHostFilter(t *testing.T) {
	ai := func(addrs ...string) peer.AddrInfo {
		var out peer.AddrInfo
		for _, a := range addrs {
			out.Addrs = append(out.Addrs, ma.StringCast(a))
		}
		return out
	}
	local := "/ip4/127.0.0.1/tcp/8080/http"
	v6 := "/ip6/::1/tcp/8080/http"
	named := "/dns/Gw.Example/tcp/443/https"
	for _, tc := range []struct {
		name        string
		allow, deny []string
		addrs       []string
		want        []string
	}{
		{"no lists", nil, nil, []string{local, named}, []string{"http://127.0.0.1:8080", "https://gw.example:443"}},
		{"allowlist", []string{"gw.example"}, nil, []string{local, named}, []string{"https://gw.example:443"}},
		{"denylist", nil, []string{"GW.EXAMPLE."}, []string{local, named}, []string{"http://127.0.0.1:8080"}},
		{"deny wins", []string{"127.0.0.1"}, []string{"127.0.0.1"}, []string{local}, nil},
		{"ipv6 with brackets", nil, []string{"[::1]"}, []string{v6, local}, []string{"http://127.0.0.1:8080"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := New(Config{Allowlist: tc.allow, Denylist: tc.deny}, nil)
			defer n.Close()
			var got []string
			for _, u := range n.candidates(ai(tc.addrs...)) {
				got = append(got, u.String())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("candidates = %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("candidates = %q, want %q", got, tc.want)
				}
			}
			if n.Usable(ai(tc.addrs...)) != (len(tc.want) > 0) {
				t.Fatalf("Usable disagrees with candidates")
			}
		})
	}
}
