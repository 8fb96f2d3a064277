package httpnet

import (
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// GatewayURL returns the base URL ("https://host:port") of the trustless
// gateway a multiaddr names, and false if it names none this node will use.
// Accepted forms are /ip4|ip6|dns|dns4|dns6/H/tcp/N followed by /tls/http
// or /https (HTTPS), or by /http (plain HTTP, only to a loopback or private
// IP address, never to a name), optionally ending in /p2p/ID. Anything else
// (SNI overrides, /http-path, UDP, port 0, unspecified addresses) is
// refused.
func GatewayURL(a ma.Multiaddr) (*url.URL, bool) {
	if len(a) > 0 && a[len(a)-1].Code() == ma.P_P2P {
		a = a[:len(a)-1]
	}
	if len(a) < 3 {
		return nil, false
	}
	var host string
	var ip netip.Addr
	switch a[0].Code() {
	case ma.P_IP4, ma.P_IP6:
		var err error
		if ip, err = netip.ParseAddr(a[0].Value()); err != nil || ip.IsUnspecified() || ip.IsMulticast() {
			return nil, false
		}
		ip = ip.Unmap()
		host = ip.String()
	case ma.P_DNS, ma.P_DNS4, ma.P_DNS6:
		host = strings.ToLower(strings.TrimSuffix(a[0].Value(), "."))
		if host == "" {
			return nil, false
		}
	default:
		return nil, false
	}
	if a[1].Code() != ma.P_TCP || a[1].Value() == "0" {
		return nil, false
	}
	port := a[1].Value()
	var scheme string
	switch rest := a[2:]; {
	case len(rest) == 1 && rest[0].Code() == ma.P_HTTPS,
		len(rest) == 2 && rest[0].Code() == ma.P_TLS && rest[1].Code() == ma.P_HTTP:
		scheme = "https"
	case len(rest) == 1 && rest[0].Code() == ma.P_HTTP:
		// Plain HTTP is readable and forgeable on the way; it is used only
		// where the way is this machine or a private network.
		if !ip.IsValid() || !(ip.IsLoopback() || ip.IsPrivate()) {
			return nil, false
		}
		scheme = "http"
	default:
		return nil, false
	}
	return &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}, true
}

// GatewayURLs returns the gateway base URLs among ai's addresses, in order,
// without duplicates.
func GatewayURLs(ai peer.AddrInfo) []*url.URL {
	var out []*url.URL
	seen := map[string]bool{}
	for _, a := range ai.Addrs {
		if u, ok := GatewayURL(a); ok && !seen[u.String()] {
			seen[u.String()] = true
			out = append(out, u)
		}
	}
	return out
}

// IsHTTP reports whether a multiaddr is an HTTP one (usable as a gateway or
// not): such addresses are no use to a libp2p dial.
func IsHTTP(a ma.Multiaddr) bool {
	for _, c := range a {
		switch c.Code() {
		case ma.P_HTTP, ma.P_HTTPS, ma.P_HTTP_PATH:
			return true
		}
	}
	return false
}

// hostFilter decides which gateway hosts may be used: the allowlist, if not
// empty, names every host allowed; the denylist names hosts refused. Hosts
// are compared without case, as URL.Hostname gives them (no port, an IPv6
// address without brackets).
type hostFilter struct {
	allow, deny map[string]bool
}

func newHostFilter(allow, deny []string) hostFilter {
	set := func(hosts []string) map[string]bool {
		m := make(map[string]bool, len(hosts))
		for _, h := range hosts {
			m[normalHost(h)] = true
		}
		return m
	}
	return hostFilter{allow: set(allow), deny: set(deny)}
}

func (f hostFilter) allowed(u *url.URL) bool {
	h := normalHost(u.Hostname())
	if f.deny[h] {
		return false
	}
	return len(f.allow) == 0 || f.allow[h]
}

// normalHost lowers a host's case and drops brackets and a trailing dot.
func normalHost(h string) string {
	h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(h, "]"), "["), ".")
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Unmap().String()
	}
	return strings.ToLower(h)
}
