// Package network carries Bitswap messages over libp2p streams.
//
// It registers a stream handler for each Bitswap protocol ID, decodes the
// length-prefixed messages a peer sends and hands them to a Receiver. For
// sending it keeps one outgoing stream per peer, negotiated once and reused,
// and encodes each message for the protocol version that stream negotiated,
// so a 1.0.0 peer is never sent what its version cannot carry. Connect and
// disconnect events come from the host's event bus, one per peer.
package network

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	lnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/bsfs/bsfs/exchange/message"
)

// Receiver is what the network delivers to: decoded messages and peer
// events. Its methods must not block for long: they run on the stream's
// reading goroutine (messages) and on the single event goroutine (peers).
type Receiver interface {
	ReceiveMessage(ctx context.Context, p peer.ID, m *message.Message)
	PeerConnected(p peer.ID)
	PeerDisconnected(p peer.ID)
}

// Reconnecter is implemented by a Receiver that wants to know when a
// connection to a peer was lost while the peer stayed, or came back,
// connected without a disconnect event in between (libp2p coalesces a
// drop and an immediate reconnect). The peer may have forgotten what it
// was told on the lost connection, so a Receiver re-sends its wants.
type Reconnecter interface {
	PeerReconnected(p peer.ID)
}

// ErrNotSupported is returned by SendMessage for a peer that speaks none of
// our Bitswap protocols.
var ErrNotSupported = errors.New("peer does not speak bitswap")

// Config configures a Network. The zero value is usable.
type Config struct {
	// Protocols restricts the Bitswap protocol IDs offered and accepted, most
	// preferred first; empty means AllProtocols().
	Protocols []protocol.ID
	// SendTimeout bounds opening a stream and writing one message; zero
	// means 30 s plus the time the message takes at 1 MiB/s.
	SendTimeout time.Duration
	// IdleTimeout closes an incoming stream on which nothing arrived for
	// this long; zero means 10 minutes. Peers open a new one as needed.
	IdleTimeout time.Duration
	// FrameTimeout bounds reading one message once its first byte arrived;
	// zero means 60 s. It cuts off peers that trickle bytes.
	FrameTimeout time.Duration
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Stats counts what crossed the network.
type Stats struct {
	MessagesReceived, MessagesSent uint64
	StreamsReset                   uint64
}

// Network is a Bitswap endpoint on a libp2p host.
type Network struct {
	host host.Host
	cfg  Config
	log  *slog.Logger

	// protocols is read-only after New, notifiee after Start.
	protocols []protocol.ID
	notifiee  lnet.Notifiee

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex // guards the fields below
	receiver  Receiver
	senders   map[peer.ID]*sender
	incoming  map[lnet.Stream]struct{}
	stats     Stats
	closed    bool
	sub       event.Subscription
	connected map[peer.ID]bool
	lost      map[peer.ID]bool // connected peers that lost a connection since
}

// New returns a Network on h. It does nothing until Start.
func New(h host.Host, cfg Config) *Network {
	if len(cfg.Protocols) == 0 {
		cfg.Protocols = AllProtocols()
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.FrameTimeout == 0 {
		cfg.FrameTimeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Network{
		host:      h,
		cfg:       cfg,
		log:       cfg.Logger,
		protocols: cfg.Protocols,
		ctx:       ctx,
		cancel:    cancel,
		senders:   make(map[peer.ID]*sender),
		incoming:  make(map[lnet.Stream]struct{}),
		connected: make(map[peer.ID]bool),
		lost:      make(map[peer.ID]bool),
	}
}

// Host returns the libp2p host.
func (n *Network) Host() host.Host { return n.host }

// Start registers the stream handlers and begins delivering to r. Peers
// already connected are reported as connected.
func (n *Network) Start(r Receiver) error {
	sub, err := n.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return fmt.Errorf("subscribe to peer events: %w", err)
	}
	n.mu.Lock()
	n.receiver = r
	n.sub = sub
	n.mu.Unlock()
	for _, id := range n.protocols {
		n.host.SetStreamHandler(id, n.handleStream)
	}
	n.notifiee = &lnet.NotifyBundle{
		ConnectedF:    func(_ lnet.Network, c lnet.Conn) { n.connEvent(c.RemotePeer(), true) },
		DisconnectedF: func(_ lnet.Network, c lnet.Conn) { n.connEvent(c.RemotePeer(), false) },
	}
	n.host.Network().Notify(n.notifiee)
	n.wg.Add(1)
	go n.watchPeers(sub)
	for _, p := range n.host.Network().Peers() {
		n.peerEvent(p, true)
	}
	return nil
}

// Close removes the handlers, resets every stream and waits for the
// goroutines the Network started.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	for _, id := range n.protocols {
		n.host.RemoveStreamHandler(id)
	}
	for s := range n.incoming {
		s.Reset()
	}
	senders := n.senders
	n.senders = map[peer.ID]*sender{}
	sub := n.sub
	n.mu.Unlock()
	n.cancel()
	if sub != nil {
		sub.Close()
	}
	if n.notifiee != nil {
		n.host.Network().StopNotify(n.notifiee)
	}
	for _, s := range senders {
		s.close()
	}
	n.wg.Wait()
	return nil
}

// Stats returns the counters so far.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Connect dials the peer at the given address.
func (n *Network) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if ai.ID == n.host.ID() {
		return errors.New("cannot connect to self")
	}
	return n.host.Connect(ctx, ai)
}

// Peers returns the peers currently connected.
func (n *Network) Peers() []peer.ID {
	return n.host.Network().Peers()
}

func (n *Network) watchPeers(sub event.Subscription) {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case ev, ok := <-sub.Out():
			if !ok {
				return
			}
			e := ev.(event.EvtPeerConnectednessChanged)
			n.peerEvent(e.Peer, e.Connectedness == lnet.Connected || e.Connectedness == lnet.Limited)
		}
	}
}

// peerEvent reports a peer's connectedness change once.
func (n *Network) peerEvent(p peer.ID, up bool) {
	n.mu.Lock()
	if n.closed || n.connected[p] == up {
		n.mu.Unlock()
		return
	}
	if up {
		n.connected[p] = true
	} else {
		delete(n.connected, p)
	}
	delete(n.lost, p)
	r := n.receiver
	var s *sender
	if !up {
		s = n.senders[p]
		delete(n.senders, p)
	}
	n.mu.Unlock()
	if s != nil {
		s.close()
	}
	if up {
		r.PeerConnected(p)
	} else {
		r.PeerDisconnected(p)
	}
}

// forgetIfGone tells r again that p is gone if p left while one of its
// messages was being delivered: r may then have made state for p (a ledger
// of its wants) after the disconnect it was told of, which nothing would
// forget. A peer whose connect event is still on its way is not gone.
func (n *Network) forgetIfGone(r Receiver, p peer.ID) {
	n.mu.Lock()
	gone := !n.closed && !n.connected[p]
	n.mu.Unlock()
	if !gone {
		return
	}
	switch n.host.Network().Connectedness(p) {
	case lnet.Connected, lnet.Limited:
		return
	}
	r.PeerDisconnected(p)
}

// connEvent watches single connections for a drop that the peer events
// miss: a connected peer that loses a connection and still has one, or
// gets one back, is reported to a Reconnecter. It runs in the swarm's
// notification path, so it only starts a goroutine.
func (n *Network) connEvent(p peer.ID, up bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || !n.connected[p] {
		return
	}
	if !up && len(n.host.Network().ConnsToPeer(p)) == 0 {
		n.lost[p] = true // a disconnect event may follow, or a new connection
		return
	}
	if up && !n.lost[p] {
		return
	}
	delete(n.lost, p)
	rc, ok := n.receiver.(Reconnecter)
	if !ok {
		return
	}
	s := n.senders[p]
	delete(n.senders, p)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if s != nil {
			s.close() // its stream rode the lost connection
		}
		rc.PeerReconnected(p)
	}()
}

// handleStream reads messages from one incoming stream until it ends, idles
// out, or sends something malformed (then the stream is reset).
func (n *Network) handleStream(s lnet.Stream) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		s.Reset()
		return
	}
	n.incoming[s] = struct{}{}
	r := n.receiver
	n.wg.Add(1)
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.incoming, s)
		n.mu.Unlock()
		n.wg.Done()
	}()

	p := s.Conn().RemotePeer()
	if err := s.Scope().SetService(serviceName); err != nil {
		n.log.Debug("bitswap: attach stream to service", "peer", p, "err", err)
		s.Reset()
		return
	}
	// One goroutine reads and decodes while this one delivers, so the next
	// message (and its hashing) overlaps the handling of the last one. The
	// channel holds one decoded message: at most three are in memory.
	msgs := make(chan *message.Message, 1)
	var readErr error
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer close(msgs)
		br := bufio.NewReaderSize(s, 64<<10)
		for {
			m, err := n.readFrame(s, br)
			if err != nil {
				readErr = err
				return
			}
			select {
			case msgs <- m:
			case <-n.ctx.Done():
				readErr = n.ctx.Err()
				return
			}
		}
	}()
	for m := range msgs {
		n.mu.Lock()
		n.stats.MessagesReceived++
		n.mu.Unlock()
		r.ReceiveMessage(n.ctx, p, m)
		n.forgetIfGone(r, p)
	}
	// A clean end of stream, not a message whose decoding hit the end of
	// one of its fields (that error wraps io.EOF too).
	if errors.Is(readErr, io.EOF) && !errors.Is(readErr, message.ErrMalformed) {
		s.Close()
		return
	}
	n.mu.Lock()
	n.stats.StreamsReset++
	n.mu.Unlock()
	if !errors.Is(readErr, lnet.ErrReset) && !errors.Is(readErr, os.ErrDeadlineExceeded) && !errors.Is(readErr, context.Canceled) {
		n.log.Info("bitswap: bad stream from peer, reset", "peer", p, "protocol", s.Protocol(), "err", readErr)
	}
	s.Reset()
}

const serviceName = "bitswap"

// readFrame waits up to the idle timeout for a frame to start, then gives
// the whole frame the frame timeout, so a peer that trickles bytes is cut off.
func (n *Network) readFrame(s lnet.Stream, br *bufio.Reader) (*message.Message, error) {
	_ = s.SetReadDeadline(time.Now().Add(n.cfg.IdleTimeout))
	if _, err := br.Peek(1); err != nil {
		return nil, err
	}
	_ = s.SetReadDeadline(time.Now().Add(n.cfg.FrameTimeout))
	return message.ReadFrom(br, message.MaxMessageSize)
}
