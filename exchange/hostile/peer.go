// Package hostile is a Bitswap peer that misbehaves on purpose, for the
// tests in this directory that attack real bsfs nodes over real libp2p
// streams. It writes frames by hand, so it can send what no honest encoder
// would: oversized or overflowing length prefixes, truncated frames,
// malformed protobuf, CIDs bsfs must refuse and blocks that lie.
package hostile

import (
	"bufio"
	"context"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	lnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/network"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

// Config configures a Peer. The zero value reads and discards every message.
type Config struct {
	// OnMessage is called, on the stream's reading goroutine, with each
	// message a victim sends us. While it runs, that stream is not read:
	// a blocking OnMessage is a slow reader.
	OnMessage func(s lnet.Stream, m *message.Message)
	// Deaf accepts the victim's streams and never reads them.
	Deaf bool
}

// Peer is a libp2p host speaking Bitswap by hand.
type Peer struct {
	Host host.Host
	cfg  Config

	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// NewPeer starts a Peer on a loopback TCP host built like a bsfs node's.
func NewPeer(cfg Config) (*Peer, error) {
	h, err := network.NewHost(network.HostConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		return nil, err
	}
	p := &Peer{Host: h, cfg: cfg, done: make(chan struct{})}
	for _, id := range network.AllProtocols() {
		h.SetStreamHandler(id, p.handle)
	}
	return p, nil
}

// Close shuts the host down and waits for the stream handlers.
func (p *Peer) Close() error {
	var err error
	p.once.Do(func() {
		close(p.done)
		err = p.Host.Close()
		p.wg.Wait()
	})
	return err
}

func (p *Peer) handle(s lnet.Stream) {
	p.wg.Add(1)
	defer p.wg.Done()
	select {
	case <-p.done:
		s.Reset()
		return
	default:
	}
	if p.cfg.Deaf {
		<-p.done
		s.Reset()
		return
	}
	br := bufio.NewReader(s)
	for {
		m, err := message.ReadFrom(br, 0)
		if err != nil {
			s.Reset()
			return
		}
		if p.cfg.OnMessage != nil {
			p.cfg.OnMessage(s, m)
		}
	}
}

// Connect connects to the peer at ai.
func (p *Peer) Connect(ctx context.Context, ai peer.AddrInfo) error {
	return p.Host.Connect(ctx, ai)
}

// Open opens a raw /ipfs/bitswap/1.2.0 stream to the peer to and
// completes the protocol negotiation.
func (p *Peer) Open(ctx context.Context, to peer.ID) (lnet.Stream, error) {
	s, err := p.Host.NewStream(ctx, to, message.Protocol120)
	if err != nil {
		return nil, fmt.Errorf("open stream to %s: %w", to, err)
	}
	return s, nil
}

// Send writes m as one frame, encoded for 1.2.0.
func Send(s lnet.Stream, m *message.Message) error {
	return message.WriteTo(s, m, message.V120)
}

// Frame returns body behind its unsigned-varint length.
func Frame(body []byte) []byte {
	b := protowire.AppendVarint(nil, uint64(len(body)))
	return append(b, body...)
}

// Field numbers of the Bitswap protobuf, as the specification numbers them.
const (
	fieldWantlist = 1
	fieldBlocks   = 2
	fieldPayload  = 3
	fieldPending  = 5

	fieldEntries = 1
	fieldFull    = 2

	fieldEntryBlock        = 1
	fieldEntryPriority     = 2
	fieldEntryWantType     = 4
	fieldEntrySendDontHave = 5

	fieldPrefix = 1
	fieldData   = 2
)

// Entry is a wantlist entry with arbitrary CID bytes.
func Entry(cidBytes []byte, priority int32, t wantlist.WantType, sendDontHave bool) []byte {
	var b []byte
	b = protowire.AppendTag(b, fieldEntryBlock, protowire.BytesType)
	b = protowire.AppendBytes(b, cidBytes)
	b = protowire.AppendTag(b, fieldEntryPriority, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(priority))
	if t != wantlist.WantBlock {
		b = protowire.AppendTag(b, fieldEntryWantType, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(t))
	}
	if sendDontHave {
		b = protowire.AppendTag(b, fieldEntrySendDontHave, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	return b
}

// Wantlist is a message body holding one wantlist of the given entries.
func Wantlist(full bool, entries ...[]byte) []byte {
	var wl []byte
	for _, e := range entries {
		wl = protowire.AppendTag(wl, fieldEntries, protowire.BytesType)
		wl = protowire.AppendBytes(wl, e)
	}
	if full {
		wl = protowire.AppendTag(wl, fieldFull, protowire.VarintType)
		wl = protowire.AppendVarint(wl, 1)
	}
	b := protowire.AppendTag(nil, fieldWantlist, protowire.BytesType)
	return protowire.AppendBytes(b, wl)
}

// Payload is a message body holding one 1.1.0 block: the CID prefix bytes
// and the data, whether or not they agree.
func Payload(prefix, data []byte) []byte {
	var pl []byte
	pl = protowire.AppendTag(pl, fieldPrefix, protowire.BytesType)
	pl = protowire.AppendBytes(pl, prefix)
	pl = protowire.AppendTag(pl, fieldData, protowire.BytesType)
	pl = protowire.AppendBytes(pl, data)
	b := protowire.AppendTag(nil, fieldPayload, protowire.BytesType)
	return protowire.AppendBytes(b, pl)
}

// RawBlock is a message body holding one 1.0.0 block (data only).
func RawBlock(data []byte) []byte {
	b := protowire.AppendTag(nil, fieldBlocks, protowire.BytesType)
	return protowire.AppendBytes(b, data)
}

// PendingOnly is a valid message body with no wantlist, blocks or
// presences: only the pending-bytes field.
func PendingOnly(n uint64) []byte {
	b := protowire.AppendTag(nil, fieldPending, protowire.VarintType)
	return protowire.AppendVarint(b, n)
}
