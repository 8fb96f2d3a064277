package exchange

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/session"
)

// receiver adapts the Exchange to network.Receiver.
type receiver struct{ e *Exchange }

func (r receiver) ReceiveMessage(ctx context.Context, p peer.ID, m *message.Message) {
	r.e.receive(ctx, p, m, false)
}

// PeerConnected starts asking p over Bitswap; if p's HTTP gateway was
// asked until now, it is let go first: a peer is one source, and Bitswap
// is preferred.
func (r receiver) PeerConnected(p peer.ID) {
	if r.e.http != nil && r.e.http.Connected(p) {
		r.e.http.Disconnect(p)
	}
	r.e.engine.PeerConnected(p)
	r.e.wm.PeerConnected(p)
	r.e.eachSession(func(s *session.Session) { s.PeerConnected(p) })
}

// PeerReconnected replays a disconnect and a connect of p on the wanting
// side, so p is asked again for everything: it may have forgotten our
// wants with the connection it lost. p's ledger, its wants of us, stays.
func (r receiver) PeerReconnected(p peer.ID) {
	r.e.wm.PeerDisconnected(p)
	r.e.eachSession(func(s *session.Session) { s.PeerDisconnected(p) })
	r.e.wm.PeerConnected(p)
	r.e.eachSession(func(s *session.Session) { s.PeerConnected(p) })
}

func (r receiver) PeerDisconnected(p peer.ID) {
	r.e.wm.PeerDisconnected(p)
	r.e.engine.PeerDisconnected(p)
	r.e.eachSession(func(s *session.Session) { s.PeerDisconnected(p) })
}

// httpReceiver adapts the Exchange to httpnet.Receiver: a gateway is
// connected and disconnected like a peer, on the wanting side only (we
// serve nothing over HTTP).
type httpReceiver struct{ e *Exchange }

func (r httpReceiver) ReceiveMessage(ctx context.Context, p peer.ID, m *message.Message) {
	r.e.receive(ctx, p, m, true)
}

func (r httpReceiver) GatewayConnected(p peer.ID) {
	r.e.wm.PeerConnected(p)
	r.e.eachSession(func(s *session.Session) { s.PeerConnected(p) })
}

func (r httpReceiver) GatewayDisconnected(p peer.ID) {
	r.e.wm.PeerDisconnected(p)
	r.e.eachSession(func(s *session.Session) { s.PeerDisconnected(p) })
}

// wantNetwork is the network the want manager sends through: a peer
// whose HTTP gateway is connected gets its wantlist over HTTP, every other
// over Bitswap.
type wantNetwork struct{ e *Exchange }

func (w wantNetwork) SendMessage(ctx context.Context, p peer.ID, m *message.Message) error {
	if w.e.http != nil && w.e.http.Connected(p) {
		return w.e.http.SendMessage(ctx, p, m)
	}
	return w.e.net.SendMessage(ctx, p, m)
}

// sources lists the peers a session may ask: the connected Bitswap peers
// and HTTP gateways.
type sources struct{ e *Exchange }

func (s sources) Peers() []peer.ID {
	ps := s.e.net.Peers()
	if s.e.http != nil {
		ps = append(ps, s.e.http.Peers()...)
	}
	return ps
}

// receive handles one message from p (over HTTP if viaHTTP): its blocks
// are counted in p's ledger (a gateway keeps none) and stored off the
// stream's goroutine (goReceive); once stored, the sessions hear what p
// sent, and then the blocks are delivered (they may satisfy our wants and
// wants of other peers). p's wantlist changes are applied at once. The
// sessions hear of a block before its waiters wake: a waiter's cancel
// reaching a session first would hide who sent it.
func (e *Exchange) receive(ctx context.Context, p peer.ID, m *message.Message, viaHTTP bool) {
	tell := func() {}
	if len(m.Blocks) > 0 || len(m.Presences) > 0 {
		blocks := make([]cid.Cid, len(m.Blocks))
		for i, b := range m.Blocks {
			blocks[i] = b.CID
		}
		var haves, dontHaves []cid.Cid
		for _, pr := range m.Presences {
			if pr.Type == message.Have {
				haves = append(haves, pr.CID)
			} else if pr.Type == message.DontHave {
				dontHaves = append(dontHaves, pr.CID)
			}
		}
		tell = func() { e.eachSession(func(s *session.Session) { s.Received(p, blocks, haves, dontHaves) }) }
	}
	if len(m.Blocks) > 0 {
		if !viaHTTP {
			e.engine.BlocksReceived(p, m.Blocks)
		}
		e.goReceive(func() { e.receiveBlocks(ctx, p, m.Blocks, viaHTTP, tell) })
	} else {
		tell()
	}
	if !viaHTTP && (len(m.Wants) > 0 || m.Full) {
		e.engine.MessageReceived(ctx, p, m)
	}
}

// maxReceiving bounds the messages whose blocks are being stored at once,
// all peers together, and so the received block data held in memory
// (each message is at most message.MaxMessageSize).
const maxReceiving = 4

// goReceive runs f, the storing of one message's blocks, on a goroutine of
// its own once fewer than maxReceiving do, so the stream goes on reading
// and decoding the next messages while the disk works; when all are busy
// it waits, and the peer's sends with it. Close waits for the goroutines;
// after Close f is dropped.
func (e *Exchange) goReceive(f func()) {
	select {
	case e.receiving <- struct{}{}:
	case <-e.ctx.Done():
		return
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		<-e.receiving
		return
	}
	e.wg.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		defer func() { <-e.receiving }()
		f()
	}()
}

// receiveBlocks stores the blocks we want, calls tell, and wakes their
// waiters. The decoder (or, for a block from an HTTP gateway, httpnet) has
// already checked each block's bytes against its CID, so a block is wanted
// exactly when its hash is one we wait for.
func (e *Exchange) receiveBlocks(ctx context.Context, p peer.ID, blks []block.Block, viaHTTP bool, tell func()) {
	wanted, unwanted := e.sortWanted(blks)
	stored, failed := e.store(ctx, p, wanted)
	e.provide(stored)
	tell()
	satisfied, done := e.settle(stored, failed, viaHTTP)
	e.dropUnwanted(ctx, p, unwanted)
	for _, cs := range done {
		e.wm.Cancel(cs)
	}
	if len(satisfied) > 0 {
		e.engine.BlocksAdded(satisfied)
	}
}

// sortWanted splits blks into those we wait for and the rest.
func (e *Exchange) sortWanted(blks []block.Block) (wanted, unwanted []block.Block) {
	e.mu.Lock()
	defer e.mu.Unlock()
	wanted = make([]block.Block, 0, len(blks))
	for _, b := range blks {
		if e.pending.wanted(b.CID) {
			wanted = append(wanted, b)
		} else {
			unwanted = append(unwanted, b)
		}
	}
	return wanted, unwanted
}

// storeFailure is a good block the store could not keep, and why.
type storeFailure struct {
	b   block.Block
	err error
}

// maxStoring bounds the blocks of one message stored at once. A block's
// store is mostly system calls that wait (a new file, its data, its
// link), so a few in flight keep the cores busy where one at a time left
// them idle; the data is the message's, already in memory.
const maxStoring = 8

// store puts the wanted blocks in the blockstore, a few at a time,
// reusing wanted's backing array for the ones stored (in their order). A
// bad block is counted and dropped; a good block the store cannot keep (a
// full or failing disk) is returned as failed, so its waiters are told
// why instead of waiting on. It returns once every Put has.
func (e *Exchange) store(ctx context.Context, p peer.ID, wanted []block.Block) (stored []block.Block, failed []storeFailure) {
	errs := make([]error, len(wanted))
	if len(wanted) == 1 {
		errs[0] = e.bs.Put(ctx, wanted[0])
	} else {
		var (
			wg   sync.WaitGroup
			next atomic.Int64
		)
		for range min(maxStoring, len(wanted)) {
			wg.Go(func() {
				for i := int(next.Add(1)) - 1; i < len(wanted); i = int(next.Add(1)) - 1 {
					errs[i] = e.bs.Put(ctx, wanted[i])
				}
			})
		}
		wg.Wait()
	}
	stored = wanted[:0]
	for i, b := range wanted {
		err := errs[i]
		switch {
		case err == nil:
			stored = append(stored, b)
		case invalid(err):
			e.count(func(s *Stats) { s.InvalidBlocks++ })
			e.log.Warn("bitswap: block from peer not stored", "cid", b.CID, "peer", p, "err", err)
		case ctx.Err() != nil:
			e.log.Debug("bitswap: block from peer not stored", "cid", b.CID, "peer", p, "err", err)
		default:
			e.log.Error("bitswap: block from peer cannot be stored", "cid", b.CID, "peer", p, "err", err)
			failed = append(failed, storeFailure{b, err})
		}
	}
	return stored, failed
}

// provide announces the stored blocks, if the Exchange announces any.
func (e *Exchange) provide(stored []block.Block) {
	if e.stored == nil || len(stored) == 0 {
		return
	}
	cids := make([]cid.Cid, len(stored))
	for i, b := range stored {
		cids[i] = b.CID
	}
	e.stored.ProvideAsync(cids...)
}

// settle fails the waiters of the blocks that could not be stored and
// delivers the stored blocks to theirs, counting each. It returns the
// blocks that satisfied a waiter and, per block, the CIDs no longer wanted.
func (e *Exchange) settle(stored []block.Block, failed []storeFailure, viaHTTP bool) (satisfied []block.Block, done [][]cid.Cid) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range failed {
		e.stats.StoreErrors++
		if cs := e.pending.fail(f.b.CID, f.err); len(cs) > 0 {
			done = append(done, cs)
		}
	}
	for _, b := range stored {
		if cs := e.pending.deliver(b); len(cs) > 0 {
			satisfied = append(satisfied, b)
			done = append(done, cs)
			e.stats.BlocksReceived++
			e.stats.DataReceived += uint64(len(b.Data))
			if viaHTTP {
				e.stats.HTTPBlocksReceived++
				e.stats.HTTPDataReceived += uint64(len(b.Data))
			}
		} else {
			// Another peer's copy was delivered while this one was stored.
			e.stats.DupBlksReceived++
			e.stats.DupDataReceived += uint64(len(b.Data))
		}
	}
	return satisfied, done
}

// dropUnwanted counts the blocks nobody waited for: as duplicates if we
// have them already, as unwanted otherwise.
func (e *Exchange) dropUnwanted(ctx context.Context, p peer.ID, unwanted []block.Block) {
	for _, b := range unwanted {
		if has, err := e.bs.Has(ctx, b.CID); err == nil && has {
			e.count(func(s *Stats) { s.DupBlksReceived++; s.DupDataReceived += uint64(len(b.Data)) })
			continue
		}
		e.count(func(s *Stats) { s.UnwantedBlocks++ })
		e.log.Debug("bitswap: unwanted block dropped", "cid", b.CID, "peer", p)
	}
}

// invalid reports whether a Put failed because the block itself is bad, as
// opposed to the store failing to keep a good block.
func invalid(err error) bool {
	return errors.Is(err, block.ErrHashMismatch) || errors.Is(err, block.ErrTooLarge) ||
		errors.Is(err, block.ErrUnsupportedCID) || errors.Is(err, block.ErrCIDTooLong)
}

func (e *Exchange) count(f func(*Stats)) {
	e.mu.Lock()
	f(&e.stats)
	e.mu.Unlock()
}
