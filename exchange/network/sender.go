package network

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	lnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multistream"

	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

// sender owns the outgoing stream to one peer. Sends are serialised by mu;
// a failed write resets the stream and the next send negotiates a new one.
type sender struct {
	mu      sync.Mutex
	stream  lnet.Stream
	version message.Version
	closed  bool
}

func (s *sender) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.stream != nil {
		s.stream.Reset()
		s.stream = nil
	}
}

// SendMessage writes m to p, encoded for the protocol version negotiated with
// p, opening a stream if none is open. It retries once on a fresh stream when
// a reused stream fails. It returns ErrNotSupported when p speaks no Bitswap
// protocol we offer.
func (n *Network) SendMessage(ctx context.Context, p peer.ID, m *message.Message) error {
	s, err := n.sender(p)
	if err != nil {
		return err
	}
	// Sized for 1.2.0, which carries everything, before the peer's
	// version is known; write sizes it again only for an older peer.
	sized := m.SizeFor(message.V120)
	timeout := n.cfg.SendTimeout
	if timeout == 0 {
		timeout = 30*time.Second + time.Duration(sized.Len())*time.Second/(1<<20)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if s.closed {
			return fmt.Errorf("send to %s: %w", p, lnet.ErrReset)
		}
		reused := s.stream != nil
		if !reused {
			if err := n.openStream(ctx, p, s); err != nil {
				return err
			}
		}
		err := n.write(ctx, s, m, sized)
		if err == nil {
			n.mu.Lock()
			n.stats.MessagesSent++
			n.mu.Unlock()
			return nil
		}
		s.stream.Reset()
		s.stream = nil
		if !reused || attempt > 0 || ctx.Err() != nil {
			return fmt.Errorf("send to %s: %w", p, err)
		}
	}
}

// Version returns the protocol version negotiated with p for sending, if a
// stream is open.
func (n *Network) Version(p peer.ID) (message.Version, bool) {
	n.mu.Lock()
	s := n.senders[p]
	n.mu.Unlock()
	if s == nil {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version, s.stream != nil
}

func (n *Network) sender(p peer.ID) (*sender, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, errors.New("network closed")
	}
	s := n.senders[p]
	if s == nil {
		s = &sender{}
		n.senders[p] = s
	}
	return s, nil
}

func (n *Network) openStream(ctx context.Context, p peer.ID, s *sender) error {
	st, err := n.host.NewStream(ctx, p, n.protocols...)
	if err != nil {
		var notSupported multistream.ErrNotSupported[protocol.ID]
		if errors.As(err, &notSupported) || errors.Is(err, multistream.ErrNotSupported[protocol.ID]{}) {
			return fmt.Errorf("%w: %s", ErrNotSupported, p)
		}
		return fmt.Errorf("open bitswap stream to %s: %w", p, err)
	}
	if err := st.Scope().SetService(serviceName); err != nil {
		st.Reset()
		return fmt.Errorf("open bitswap stream to %s: %w", p, err)
	}
	v, ok := message.VersionOf(string(st.Protocol()))
	if !ok {
		st.Reset()
		return fmt.Errorf("%w: %s negotiated %q", ErrNotSupported, p, st.Protocol())
	}
	s.stream, s.version = st, v
	return nil
}

// write writes m to s's stream; sized is m sized for some version, used
// if it is s's.
func (n *Network) write(ctx context.Context, s *sender, m *message.Message, sized message.Sized) error {
	deadline, _ := ctx.Deadline()
	_ = s.stream.SetWriteDeadline(deadline)
	// Writes are not context-aware; a cancelled ctx resets the stream so a
	// blocked write returns.
	st := s.stream
	stop := context.AfterFunc(ctx, func() { _ = st.SetWriteDeadline(time.Now()) })
	defer stop()
	if sized.Version() != s.version {
		sized = forVersion(m, s.version).SizeFor(s.version)
	}
	return sized.WriteFrames(st, message.MaxMessageSize)
}

// forVersion adapts m to a peer whose protocol cannot carry want-have: it
// asks for those blocks with want-block instead, so the wants are not lost
// (the encoder would drop them). Other messages are returned as they are.
func forVersion(m *message.Message, v message.Version) *message.Message {
	if v.SupportsHave() {
		return m
	}
	i := slices.IndexFunc(m.Wants, func(e message.Entry) bool { return !e.Cancel && e.WantType == wantlist.WantHave })
	if i < 0 {
		return m
	}
	out := *m
	out.Wants = slices.Clone(m.Wants)
	for j := i; j < len(out.Wants); j++ {
		if e := &out.Wants[j]; !e.Cancel && e.WantType == wantlist.WantHave {
			e.WantType, e.SendDontHave = wantlist.WantBlock, false
		}
	}
	return &out
}
