// Package session fetches a group of related blocks (one file's DAG, one
// `get`) from the peers that turn out to have them.
//
// A session starts knowing nobody: it asks every connected peer whether it
// has the blocks (want-have) and asks for each block (want-block) from one
// peer that said it has it. Peers that answer join the session; from then
// on each new want goes as want-block to the session peer expected to
// answer first (fewest blocks outstanding, then lowest latency) and as
// want-have to the others, so the session learns where else to turn. A
// peer that keeps answering DONT_HAVE leaves the session. A want-block
// left unanswered, or refused, moves to another peer that said HAVE; a want
// nobody has (or nobody to ask) moves to a broadcast, and after
// ProviderDelay to a provider search. Asking one peer per block is what keeps duplicate blocks down as
// peers are added.
//
// All state is owned by one goroutine (run); the methods only queue events.
package session

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Wants is the want manager as a session uses it.
type Wants interface {
	// Want sends want-block for cids to peers, or to every peer if none;
	// not again to a peer already sent it.
	Want(cids []cid.Cid, peers ...peer.ID)
	// WantAgain is Want that sends want-block again to a peer already
	// sent it, which may have dropped it.
	WantAgain(cids []cid.Cid, peers ...peer.ID)
	// WantHave sends want-have (with send-dont-have) for cids to peers.
	WantHave(cids []cid.Cid, peers ...peer.ID)
}

// Protector keeps the connections to useful peers from being trimmed: the
// libp2p connection manager.
type Protector interface {
	Protect(p peer.ID, tag string)
	Unprotect(p peer.ID, tag string) bool
}

// Peers lists the peers connected now.
type Peers interface {
	Peers() []peer.ID
}

// Defaults for Config.
const (
	DefaultBlockTimeout     = 2 * time.Second
	DefaultSilenceTimeout   = 10 * time.Second
	DefaultProviderDelay    = time.Second
	DefaultProviderRetry    = time.Minute
	DefaultMaxDontHaves     = 16
	DefaultPeerWindow       = 128
	DefaultHaveFanout       = 3
	DefaultLatencySmoothing = 0.5
)

// Config configures a Session. The zero value is usable.
type Config struct {
	// BlockTimeout is how long a want-block may go unanswered before the
	// block is asked of another peer: at least this, or four times the
	// peer's observed latency if that is longer.
	BlockTimeout time.Duration
	// SilenceTimeout is how long a want may go without any answer from
	// the peers asked (a busy peer answers HAVE late; one that lacks a
	// block says DONT_HAVE) before it is broadcast as want-block.
	SilenceTimeout time.Duration
	// ProviderDelay is how long a want waits before FindProviders is asked.
	ProviderDelay time.Duration
	// ProviderRetry is how long after a provider search a want that is
	// still unanswered is searched for again.
	ProviderRetry time.Duration
	// FindProviders, if set, looks for providers of c and connects to them;
	// the session then asks them like any new peer. It runs in its own
	// goroutine and must return when ctx ends.
	FindProviders func(ctx context.Context, c cid.Cid)
	// Waited, if set, reports whether a call still waits for a CID; a
	// want for a block delivered before the session took the want up is
	// dropped rather than sent.
	Waited func(c cid.Cid) bool
	// MaxDontHaves is the number of DONT_HAVEs in a row after which a peer
	// leaves the session.
	MaxDontHaves int
	// PeerWindow is how many want-blocks one peer may have outstanding;
	// the rest wait for a peer with room, which spreads a large fetch over
	// every peer that has the blocks. The default keeps a peer's messages
	// full of small blocks: 128 blocks of 4 KiB are half a message, and a
	// round trip each 32 blocks left both ends waiting.
	PeerWindow int
	// Protector, if set, protects the connection to every member (a peer
	// that answered the session with a block or a HAVE), under ProtectTag,
	// until it leaves or the session ends: the connection manager must not
	// trim a peer a fetch is counting on.
	Protector  Protector
	ProtectTag string
	// HaveFanout is how many members besides the target a new want is
	// asked of with want-have.
	HaveFanout int
	// BroadcastOnly asks every peer for every block with want-block at
	// once, learning nothing: what a node without sessions does. For
	// comparison and diagnosis.
	BroadcastOnly bool
	Logger        *slog.Logger
}

// Stats describes a session's view of its peers.
type Stats struct {
	Peers          []PeerStat
	Wants          int
	Broadcasts     uint64 // wants that fell back to broadcast
	ProviderSearch uint64 // provider searches started
	Retargets      uint64 // want-blocks moved to another peer
}

// PeerStat is what a session learned of one peer.
type PeerStat struct {
	Peer      peer.ID
	Blocks    int
	Haves     int
	DontHaves int
	Latency   time.Duration
}

// Session is one group of related fetches. Wants are keyed by multihash, so
// a block that arrives under another CID version still counts.
type Session struct {
	wants Wants
	peers Peers
	cfg   Config

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wg     sync.WaitGroup // provider searches
	// searching is set while a provider search runs.
	searching atomic.Bool

	mu     sync.Mutex // guards events and stats
	events []event
	kick   chan struct{}
	stats  Stats

	// Only touched by the run loop.
	want    map[string]*wantState
	members map[peer.ID]*member
}

// New starts a session; it ends when ctx does or Close is called.
func New(ctx context.Context, wants Wants, peers Peers, cfg Config) *Session {
	if cfg.BlockTimeout == 0 {
		cfg.BlockTimeout = DefaultBlockTimeout
	}
	if cfg.SilenceTimeout == 0 {
		cfg.SilenceTimeout = DefaultSilenceTimeout
	}
	if cfg.ProviderDelay == 0 {
		cfg.ProviderDelay = DefaultProviderDelay
	}
	if cfg.ProviderRetry == 0 {
		cfg.ProviderRetry = DefaultProviderRetry
	}
	if cfg.MaxDontHaves == 0 {
		cfg.MaxDontHaves = DefaultMaxDontHaves
	}
	if cfg.HaveFanout == 0 {
		cfg.HaveFanout = DefaultHaveFanout
	}
	if cfg.PeerWindow == 0 {
		cfg.PeerWindow = DefaultPeerWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Session{
		wants:   wants,
		peers:   peers,
		cfg:     cfg,
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		kick:    make(chan struct{}, 1),
		want:    make(map[string]*wantState),
		members: make(map[peer.ID]*member),
	}
	go s.run()
	return s
}

// Close ends the session and waits for its goroutines.
func (s *Session) Close() {
	s.cancel()
	<-s.done
	s.wg.Wait()
}

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Want asks for cids on the session's behalf.
func (s *Session) Want(cids []cid.Cid) { s.post(event{kind: evWant, cids: cids}) }

// Cancel stops asking for cids (they arrived, or nobody waits any more).
func (s *Session) Cancel(cids []cid.Cid) { s.post(event{kind: evCancel, cids: cids}) }

// Received reports what p sent: blocks, HAVEs and DONT_HAVEs.
func (s *Session) Received(p peer.ID, blocks, haves, dontHaves []cid.Cid) {
	s.post(event{kind: evReceived, peer: p, cids: blocks, haves: haves, dontHaves: dontHaves})
}

// PeerConnected tells the session about a new peer, which is then asked
// about the wants no member has.
func (s *Session) PeerConnected(p peer.ID) { s.post(event{kind: evConnected, peer: p}) }

// PeerDisconnected removes p from the session.
func (s *Session) PeerDisconnected(p peer.ID) { s.post(event{kind: evDisconnected, peer: p}) }

// Stats returns the session's counters and peers, best first.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Peers = append([]PeerStat(nil), s.stats.Peers...)
	return st
}

func (s *Session) post(ev event) {
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Session) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}
