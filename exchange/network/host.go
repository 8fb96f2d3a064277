package network

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/bsfs/bsfs/exchange/message"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	lnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Per-protocol resource limits for Bitswap streams. bsfs reuses one stream
// for many messages, but Kubo's server opens a stream for every message it
// sends, and a slow reader has many open at once: a refused stream loses the
// blocks in it (Kubo counts them sent and forgets the want), so the per-peer
// inbound limit is generous. Memory bounds the buffered messages.
const (
	protocolStreams        = 8192
	protocolPeerStreams    = 288
	protocolPeerStreamsDir = 256
	protocolMemory         = 256 << 20
	protocolPeerMemory     = 64 << 20
)

// HostConfig configures the libp2p host that carries Bitswap.
type HostConfig struct {
	// Identity is the node's private key; nil generates an ephemeral Ed25519 key.
	Identity crypto.PrivKey
	// ListenAddrs are multiaddr strings; empty listens on loopback TCP and
	// QUIC on random ports.
	ListenAddrs []string
	// ConnsLow and ConnsHigh are the connection manager's water marks;
	// zero means 100 and 400. GracePeriod is how long a new connection is
	// safe from trimming; zero means a minute.
	ConnsLow, ConnsHigh int
	GracePeriod         time.Duration

	// NAT traversal, all off unless asked for. A host whose listen
	// addresses are all loopback ones gets none of it whatever is asked,
	// since it cannot be reached from off the machine and must send
	// nothing there (port mapping, for one, looks for the gateway at once).

	// NATPortMap maps the listen ports on the gateway by UPnP or NAT-PMP.
	NATPortMap bool
	// AutoNAT runs AutoNAT v2: asks peers to dial back to learn which
	// addresses are reachable, and dials back for them.
	AutoNAT bool
	// HolePunching opens direct connections through NATs (DCUtR).
	HolePunching bool
	// RelayClient makes circuit relay v2 reservations, with relays found
	// among the connected peers, when the node is not publicly reachable.
	RelayClient bool
}

// NewHost builds a libp2p host with TCP and QUIC transports, Noise and TLS
// security, yamux, a connection manager, the resource manager with limits
// of its own for the Bitswap protocols, and the NAT traversal cfg asks for.
func NewHost(cfg HostConfig) (host.Host, error) {
	var self hostRef
	opts, err := hostOptions(cfg, &self)
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("libp2p host: %w", err)
	}
	self.set(h)
	return h, nil
}

// hostOptions returns the libp2p options NewHost builds a host with. The
// relay client finds its relay candidates among self's peers.
func hostOptions(cfg HostConfig, self *hostRef) ([]libp2p.Option, error) {
	if len(cfg.ListenAddrs) == 0 {
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	if cfg.ConnsLow == 0 {
		cfg.ConnsLow = 100
	}
	if cfg.ConnsHigh == 0 {
		cfg.ConnsHigh = 400
	}
	if cfg.GracePeriod == 0 {
		cfg.GracePeriod = time.Minute
	}
	offMachine, err := listensOffLoopback(cfg.ListenAddrs)
	if err != nil {
		return nil, err
	}
	rm, err := newResourceManager()
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(cfg.ConnsLow, cfg.ConnsHigh, connmgr.WithGracePeriod(cfg.GracePeriod))
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(tls.ID, tls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("bsfs"),
	}
	if cfg.Identity != nil {
		opts = append(opts, libp2p.Identity(cfg.Identity))
	}
	if offMachine && cfg.NATPortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	if offMachine && cfg.AutoNAT {
		opts = append(opts, libp2p.EnableAutoNATv2())
	}
	if offMachine && cfg.HolePunching {
		opts = append(opts, libp2p.EnableHolePunching())
	}
	if offMachine && cfg.RelayClient {
		opts = append(opts, libp2p.EnableRelay(), libp2p.EnableAutoRelayWithPeerSource(self.peerSource))
	} else {
		opts = append(opts, libp2p.DisableRelay())
	}
	return opts, nil
}

// listensOffLoopback reports whether any of addrs is not a loopback
// address (an unspecified one, such as 0.0.0.0, listens on every
// interface).
func listensOffLoopback(addrs []string) (bool, error) {
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return false, fmt.Errorf("listen address %q: %w", a, err)
		}
		if !manet.IsIPLoopback(m) {
			return true, nil
		}
	}
	return false, nil
}

// hostRef is the host a relay peer source reads, set once it is built.
type hostRef struct {
	mu sync.Mutex
	h  host.Host
}

func (r *hostRef) set(h host.Host) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h = h
}

// peerSource offers up to num connected peers as relay candidates; the
// relay client keeps those that speak the relay protocol.
func (r *hostRef) peerSource(_ context.Context, num int) <-chan peer.AddrInfo {
	r.mu.Lock()
	h := r.h
	r.mu.Unlock()
	out := make(chan peer.AddrInfo, max(num, 0))
	defer close(out)
	if h == nil {
		return out
	}
	for _, p := range h.Network().Peers() {
		if len(out) == cap(out) {
			break
		}
		out <- h.Peerstore().PeerInfo(p)
	}
	return out
}

func newResourceManager() (lnet.ResourceManager, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	for _, id := range AllProtocols() {
		limits.AddProtocolLimit(id,
			rcmgr.BaseLimit{Streams: protocolStreams, StreamsInbound: protocolStreams / 2, StreamsOutbound: protocolStreams / 2, Memory: protocolMemory},
			rcmgr.BaseLimitIncrease{})
		limits.AddProtocolPeerLimit(id,
			rcmgr.BaseLimit{Streams: protocolPeerStreams, StreamsInbound: protocolPeerStreamsDir, StreamsOutbound: protocolPeerStreamsDir, Memory: protocolPeerMemory},
			rcmgr.BaseLimitIncrease{})
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	return rm, nil
}

// AllProtocols returns the Bitswap protocol IDs bsfs speaks, most preferred
// first.
func AllProtocols() []protocol.ID {
	return []protocol.ID{message.Protocol120, message.Protocol110, message.Protocol100, message.ProtocolBitswap}
}
