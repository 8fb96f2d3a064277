// Package wantmanager tells peers which blocks this node wants.
//
// The WantManager holds every want of the node and one MessageQueue per
// connected peer. A want is broadcast to all peers or scoped to some (the
// hook sessions use). Each queue batches the changes for its peer into as
// few messages as possible without a fixed delay: while one message is on
// the wire, further changes accumulate and go out together in the next. A
// queue keeps at most MaxInFlight wants outstanding at its peer (servers cap
// a peer's wantlist, Kubo at 1024), sends the whole list to a newly
// connected peer, after a failed send, and every RebroadcastInterval.
package wantmanager

import (
	"cmp"
	"context"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

// Network sends messages to peers.
type Network interface {
	SendMessage(ctx context.Context, p peer.ID, m *message.Message) error
}

// Defaults for Config.
const (
	DefaultRebroadcastInterval = 30 * time.Second
	// DefaultMaxInFlight stays under the 1024 entries that Kubo and bsfs
	// servers keep of a peer's wantlist, so no want is silently dropped.
	DefaultMaxInFlight = 1000
	// DefaultMaxEntriesPerMessage keeps one message small (about 50 bytes
	// an entry) so a large wantlist change does not delay the next one.
	DefaultMaxEntriesPerMessage = 4096
)

// Config configures a WantManager. The zero value is usable.
type Config struct {
	RebroadcastInterval  time.Duration
	MaxInFlight          int
	MaxEntriesPerMessage int
	// RetryDelay is the wait after a failed send before the queue tries
	// again (doubling up to the rebroadcast interval); zero means 1 s.
	RetryDelay time.Duration
	Logger     *slog.Logger
}

// Stats counts the WantManager's activity.
type Stats struct {
	Wants        int    // wants currently held
	Peers        int    // peers with a message queue
	MessagesSent uint64 // wantlist messages sent successfully
	SendFailures uint64
	EntriesSent  uint64 // want entries (not cancels) sent
	CancelsSent  uint64
	Rebroadcasts uint64
}

// want is one block the node wants, and how it is asked of each peer.
type want struct {
	c        cid.Cid
	priority int32
	// broadcast: every connected peer is asked, with want-block.
	broadcast bool
	// peers holds the peers asked individually and the type each is
	// asked with (a broadcast want-block overrides a want-have).
	peers map[peer.ID]wantlist.WantType
}

// typeFor returns how p is asked for w, and whether it is asked at all.
func (w *want) typeFor(p peer.ID) (wantlist.WantType, bool) {
	if w.broadcast {
		return wantlist.WantBlock, true
	}
	t, ok := w.peers[p]
	return t, ok
}

// WantManager holds the node's wants and the per-peer message queues.
type WantManager struct {
	net Network
	cfg Config
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Lock order: WantManager.mu, then MessageQueue.mu.
	mu       sync.Mutex
	wants    map[string]*want
	queues   map[peer.ID]*MessageQueue
	priority int32
	stats    Stats
	closed   bool
}

// New returns a WantManager that sends through net.
func New(net Network, cfg Config) *WantManager {
	if cfg.RebroadcastInterval == 0 {
		cfg.RebroadcastInterval = DefaultRebroadcastInterval
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxEntriesPerMessage == 0 {
		cfg.MaxEntriesPerMessage = DefaultMaxEntriesPerMessage
	}
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &WantManager{
		net:      net,
		cfg:      cfg,
		log:      cfg.Logger,
		ctx:      ctx,
		cancel:   cancel,
		wants:    make(map[string]*want),
		queues:   make(map[peer.ID]*MessageQueue),
		priority: math.MaxInt32,
	}
}

// Want asks for cids with want-block. With no peers the wants go to every
// connected peer (and to peers that connect later); otherwise only to the
// given peers, which are asked to answer DONT_HAVE if they lack a block.
// Wanting a CID already wanted widens its scope. A peer already sent
// want-block for a CID is not sent it again: sessions fetching the same
// block ask the same peer, and a second want-block that reaches the peer
// after it sent the block makes it send the block again.
func (wm *WantManager) Want(cids []cid.Cid, peers ...peer.ID) {
	wm.want(cids, wantlist.WantBlock, peers, false)
}

// WantAgain is Want, except that peers already sent want-block for a CID
// are sent it again: a peer that left a want-block unanswered may have
// dropped it (its send failed, say).
func (wm *WantManager) WantAgain(cids []cid.Cid, peers ...peer.ID) {
	wm.want(cids, wantlist.WantBlock, peers, true)
}

// WantHave asks peers whether they have cids (want-have, with
// send-dont-have set), without asking for the blocks. A peer already asked
// for a block with want-block is not asked again. Peers whose protocol
// cannot carry want-have are sent want-block instead by the network.
func (wm *WantManager) WantHave(cids []cid.Cid, peers ...peer.ID) {
	if len(peers) == 0 {
		return
	}
	wm.want(cids, wantlist.WantHave, peers, false)
}

func (wm *WantManager) want(cids []cid.Cid, t wantlist.WantType, peers []peer.ID, again bool) {
	wm.mu.Lock()
	defer wm.mu.Unlock()
	if wm.closed {
		return
	}
	for _, c := range cids {
		k := c.KeyString()
		w := wm.wants[k]
		if w == nil {
			w = &want{c: c, priority: wm.nextPriority()}
			wm.wants[k] = w
		}
		if w.broadcast {
			// Everyone has want-block already; WantAgain asks the named
			// peers again.
			if again {
				for _, p := range peers {
					if q := wm.queues[p]; q != nil {
						q.resend(k)
					}
				}
			}
			continue
		}
		if len(peers) == 0 {
			w.broadcast = true
			w.peers = nil
			for _, q := range wm.queues {
				q.add(k, w.c, w.priority, wantlist.WantBlock, false)
			}
			continue
		}
		if w.peers == nil {
			w.peers = make(map[peer.ID]wantlist.WantType, len(peers))
		}
		for _, p := range peers {
			if old, ok := w.peers[p]; ok && old == wantlist.WantBlock {
				if q := wm.queues[p]; q != nil && again {
					q.resend(k)
				}
				continue
			}
			w.peers[p] = t
			if q := wm.queues[p]; q != nil {
				q.add(k, w.c, w.priority, t, true)
			}
		}
	}
}

// Cancel drops the wants for cids and sends CANCEL to every peer that was
// told of them.
func (wm *WantManager) Cancel(cids []cid.Cid) {
	wm.mu.Lock()
	defer wm.mu.Unlock()
	for _, c := range cids {
		k := c.KeyString()
		if _, ok := wm.wants[k]; !ok {
			continue
		}
		delete(wm.wants, k)
		for _, q := range wm.queues {
			q.cancel(k, c)
		}
	}
}

// Wanted reports whether c is wanted.
func (wm *WantManager) Wanted(c cid.Cid) bool {
	wm.mu.Lock()
	defer wm.mu.Unlock()
	_, ok := wm.wants[c.KeyString()]
	return ok
}

// Wantlist returns the CIDs wanted, most urgent first.
func (wm *WantManager) Wantlist() []cid.Cid {
	wm.mu.Lock()
	defer wm.mu.Unlock()
	ws := make([]*want, 0, len(wm.wants))
	for _, w := range wm.wants {
		ws = append(ws, w)
	}
	sortWants(ws)
	out := make([]cid.Cid, len(ws))
	for i, w := range ws {
		out[i] = w.c
	}
	return out
}

// SentTo returns the wants p has been told of and not cancelled, most
// urgent first: our wantlist as p sees it.
func (wm *WantManager) SentTo(p peer.ID) []message.Entry {
	wm.mu.Lock()
	q := wm.queues[p]
	wm.mu.Unlock()
	if q == nil {
		return nil
	}
	q.mu.Lock()
	out := make([]message.Entry, 0, len(q.sent))
	for _, e := range q.sent {
		out = append(out, wantEntry(e))
	}
	q.mu.Unlock()
	slices.SortFunc(out, func(a, b message.Entry) int { return cmp.Compare(b.Priority, a.Priority) })
	return out
}

// PeerConnected starts a message queue for p and sends it every want that
// applies to it.
func (wm *WantManager) PeerConnected(p peer.ID) {
	wm.mu.Lock()
	defer wm.mu.Unlock()
	if wm.closed || wm.queues[p] != nil {
		return
	}
	q := newMessageQueue(wm, p)
	ws := make([]*want, 0, len(wm.wants))
	for _, w := range wm.wants {
		if _, ok := w.typeFor(p); ok {
			ws = append(ws, w)
		}
	}
	sortWants(ws)
	for _, w := range ws {
		t, _ := w.typeFor(p)
		q.add(w.c.KeyString(), w.c, w.priority, t, !w.broadcast)
	}
	wm.queues[p] = q
	wm.wg.Add(1)
	go q.run(wm.ctx)
}

// PeerDisconnected stops p's message queue. Its wants stay wanted: they go
// to the other peers and to p again if it comes back.
func (wm *WantManager) PeerDisconnected(p peer.ID) {
	wm.mu.Lock()
	q := wm.queues[p]
	delete(wm.queues, p)
	for _, w := range wm.wants {
		delete(w.peers, p)
	}
	wm.mu.Unlock()
	if q != nil {
		q.stop()
	}
}

// Peers returns the peers that have a message queue.
func (wm *WantManager) Peers() []peer.ID {
	wm.mu.Lock()
	defer wm.mu.Unlock()
	out := make([]peer.ID, 0, len(wm.queues))
	for p := range wm.queues {
		out = append(out, p)
	}
	return out
}

// Stats returns the counters so far.
func (wm *WantManager) Stats() Stats {
	wm.mu.Lock()
	defer wm.mu.Unlock()
	s := wm.stats
	s.Wants = len(wm.wants)
	s.Peers = len(wm.queues)
	return s
}

// Close stops every queue and waits for them.
func (wm *WantManager) Close() error {
	wm.mu.Lock()
	wm.closed = true
	qs := wm.queues
	wm.queues = map[peer.ID]*MessageQueue{}
	wm.mu.Unlock()
	wm.cancel()
	for _, q := range qs {
		q.stop()
	}
	wm.wg.Wait()
	return nil
}

// nextPriority hands out decreasing priorities so older wants come first.
func (wm *WantManager) nextPriority() int32 {
	if wm.priority > 1 {
		wm.priority--
	}
	return wm.priority
}

func (wm *WantManager) count(f func(*Stats)) {
	wm.mu.Lock()
	f(&wm.stats)
	wm.mu.Unlock()
}
