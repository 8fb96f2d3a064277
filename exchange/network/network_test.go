package network

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/wantlist"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/poll"
)

// inbox is a Receiver that records what arrives.
type inbox struct {
	mu     sync.Mutex
	msgs   []*message.Message
	from   []peer.ID
	up     map[peer.ID]bool
	events int
}

func (r *inbox) ReceiveMessage(_ context.Context, p peer.ID, m *message.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	r.from = append(r.from, p)
}

func (r *inbox) PeerConnected(p peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.up == nil {
		r.up = map[peer.ID]bool{}
	}
	r.up[p] = true
	r.events++
}

func (r *inbox) PeerDisconnected(p peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.up, p)
	r.events++
}

func (r *inbox) snapshot() (msgs []*message.Message, up map[peer.ID]bool, events int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	up = map[peer.ID]bool{}
	for p := range r.up {
		up[p] = true
	}
	return append([]*message.Message(nil), r.msgs...), up, r.events
}

func newTestNetwork(t *testing.T, protocols ...protocol.ID) (*Network, *inbox, host.Host) {
	t.Helper()
	h, err := NewHost(HostConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	n := New(h, Config{Protocols: protocols})
	in := &inbox{}
	if err := n.Start(in); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Close()
		h.Close()
	})
	return n, in, h
}

// TestSendNegotiatesVersion sends a message with a want-have, a block and a
// presence between a full node and one restricted to each version, and
// checks the receiver gets what that version can carry.
func TestSendNegotiatesVersion(t *testing.T) {
	data := []byte("some block")
	b, err := block.New(cid.Prefix{Version: 0, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}, data)
	if err != nil {
		t.Fatal(err)
	}
	m := &message.Message{
		Wants: []message.Entry{
			{CID: b.CID, Priority: 5, WantType: wantlist.WantBlock},
			{CID: b.CID, Priority: 4, WantType: wantlist.WantHave, SendDontHave: true},
		},
		Blocks:    []block.Block{b},
		Presences: []message.Presence{{CID: b.CID, Type: message.DontHave}},
	}
	for _, tc := range []struct {
		proto     protocol.ID
		version   message.Version
		wants     int
		presences int
	}{
		{message.Protocol120, message.V120, 2, 1},
		// Older versions cannot carry want-have: it becomes want-block.
		{message.Protocol110, message.V110, 2, 0},
		{message.Protocol100, message.V100, 2, 0},
		{message.ProtocolBitswap, message.V100, 2, 0},
	} {
		t.Run(string(tc.proto), func(t *testing.T) {
			sender, _, sh := newTestNetwork(t)
			_, in, rh := newTestNetwork(t, tc.proto)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := sh.Connect(ctx, peer.AddrInfo{ID: rh.ID(), Addrs: rh.Addrs()}); err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second send reuses the stream
				if err := sender.SendMessage(ctx, rh.ID(), m); err != nil {
					t.Fatal(err)
				}
			}
			if v, ok := sender.Version(rh.ID()); !ok || v != tc.version {
				t.Fatalf("negotiated %v (open %v), want %v", v, ok, tc.version)
			}
			poll.Until(t, 5*time.Second, "two messages", func() bool { msgs, _, _ := in.snapshot(); return len(msgs) == 2 })
			msgs, _, _ := in.snapshot()
			got := msgs[1]
			if len(got.Wants) != tc.wants || len(got.Presences) != tc.presences || len(got.Blocks) != 1 {
				t.Fatalf("got %d wants, %d presences, %d blocks; want %d, %d, 1", len(got.Wants), len(got.Presences), len(got.Blocks), tc.wants, tc.presences)
			}
			for _, e := range got.Wants {
				if !tc.version.SupportsHave() && e.WantType != wantlist.WantBlock {
					t.Fatalf("a %v peer was sent %+v", tc.version, e)
				}
			}
			if !got.Blocks[0].CID.Equals(b.CID) || string(got.Blocks[0].Data) != string(data) {
				t.Fatalf("block arrived as %s %q", got.Blocks[0].CID, got.Blocks[0].Data)
			}
			if st := sender.Stats(); st.MessagesSent != 2 {
				t.Fatalf("MessagesSent = %d, want 2", st.MessagesSent)
			}
		})
	}
}

// TestPeerEvents: one connect event per peer however many connections, and
// a disconnect when the last one closes.
func TestPeerEvents(t *testing.T) {
	_, in, ah := newTestNetwork(t)
	_, _, bh := newTestNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ah.Connect(ctx, peer.AddrInfo{ID: bh.ID(), Addrs: bh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "connect event", func() bool { _, up, _ := in.snapshot(); return up[bh.ID()] })
	if err := ah.Network().ClosePeer(bh.ID()); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "disconnect event", func() bool { _, up, _ := in.snapshot(); return !up[bh.ID()] })
	if _, _, events := in.snapshot(); events != 2 {
		t.Fatalf("%d events, want 2", events)
	}
}

// TestNotSupported: a peer that speaks no Bitswap gets ErrNotSupported.
func TestNotSupported(t *testing.T) {
	sender, _, sh := newTestNetwork(t)
	other, err := NewHost(HostConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sh.Connect(ctx, peer.AddrInfo{ID: other.ID(), Addrs: other.Addrs()}); err != nil {
		t.Fatal(err)
	}
	err = sender.SendMessage(ctx, other.ID(), &message.Message{Full: true})
	if !errors.Is(err, ErrNotSupported) {
		t.Fatalf("SendMessage to a non-bitswap peer: %v, want ErrNotSupported", err)
	}
}

// journal is a Receiver that records the order of what it is told, and
// holds the second message it receives until released.
type journal struct {
	mu      sync.Mutex
	log     []string // "up", "msg", "down"
	msgs    int
	held    chan struct{}
	release chan struct{}
}

func (j *journal) note(ev string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.log = append(j.log, ev)
}

func (j *journal) entries() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.log...)
}

// ReceiveMessage notes a message once it has been handled.
func (j *journal) ReceiveMessage(context.Context, peer.ID, *message.Message) {
	j.mu.Lock()
	j.msgs++
	second := j.msgs == 2
	j.mu.Unlock()
	if second {
		close(j.held)
		<-j.release
	}
	j.note("msg")
}

func (j *journal) PeerConnected(peer.ID)    { j.note("up") }
func (j *journal) PeerDisconnected(peer.ID) { j.note("down") }

// TestMessageAfterDisconnect: a peer sends two messages and leaves while
// the second is being delivered, which then ends after the disconnect
// event. The receiver is told again that the peer is gone, so that what it
// made of that message for the peer (a ledger of its wants, in the
// exchange) is forgotten too.
func TestMessageAfterDisconnect(t *testing.T) {
	h, err := NewHost(HostConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	n := New(h, Config{})
	j := &journal{held: make(chan struct{}), release: make(chan struct{})}
	if err := n.Start(j); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Close()
		h.Close()
	})
	other, err := NewHost(HostConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := other.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := other.NewStream(ctx, h.ID(), message.Protocol120)
	if err != nil {
		t.Fatal(err)
	}
	m := &message.Message{Wants: []message.Entry{{CID: cid.NewCidV1(cid.Raw, blocktest.Hash(t, []byte("wanted"))), WantType: wantlist.WantHave}}}
	for range 2 {
		if err := message.WriteTo(s, m, message.V120); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	<-j.held // the second message is being delivered
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, "disconnect event", func() bool { return slices.Contains(j.entries(), "down") })
	close(j.release)
	poll.Until(t, 5*time.Second, "stream handled", func() bool { n.mu.Lock(); defer n.mu.Unlock(); return len(n.incoming) == 0 })
	got := j.entries()
	if strings.Count(strings.Join(got, " "), "msg") != 2 || got[len(got)-1] != "down" {
		t.Fatalf("receiver was told %q; want both messages, and the peer gone after the last", got)
	}
}
