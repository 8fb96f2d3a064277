package network

import (
	"fmt"
	"time"

	"github.com/bsfs/bsfs/exchange/message"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	lnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
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
	// zero means 100 and 400.
	ConnsLow, ConnsHigh int
}

// NewHost builds a libp2p host with TCP and QUIC transports, Noise and TLS
// security, yamux, a connection manager and the resource manager with limits
// of its own for the Bitswap protocols.
func NewHost(cfg HostConfig) (host.Host, error) {
	if len(cfg.ListenAddrs) == 0 {
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	if cfg.ConnsLow == 0 {
		cfg.ConnsLow = 100
	}
	if cfg.ConnsHigh == 0 {
		cfg.ConnsHigh = 400
	}
	rm, err := newResourceManager()
	if err != nil {
		return nil, err
	}
	cm, err := connmgr.NewConnManager(cfg.ConnsLow, cfg.ConnsHigh, connmgr.WithGracePeriod(time.Minute))
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
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("bsfs"),
	}
	if cfg.Identity != nil {
		opts = append(opts, libp2p.Identity(cfg.Identity))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("libp2p host: %w", err)
	}
	return h, nil
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
