package exchange

import (
	"context"
	"errors"

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

// receive handles one message from p (over HTTP if viaHTTP): blocks are
// stored, the sessions hear what p sent, and then the blocks are delivered
// (they may satisfy our wants and wants of other peers); then p's wantlist
// changes are applied. The sessions hear of a block before its waiters
// wake: a waiter's cancel reaching a session first would hide who sent it.
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
		e.receiveBlocks(ctx, p, m.Blocks, viaHTTP, tell)
	} else {
		tell()
	}
	if !viaHTTP && (len(m.Wants) > 0 || m.Full) {
		e.engine.MessageReceived(ctx, p, m)
	}
}

// receiveBlocks stores the blocks we want, calls tell, and wakes their
// waiters. The decoder (or, for a block from an HTTP gateway, httpnet) has
// already checked each block's bytes against its CID, so a block is wanted
// exactly when its hash is one we wait for. A gateway keeps no ledger.
func (e *Exchange) receiveBlocks(ctx context.Context, p peer.ID, blks []block.Block, viaHTTP bool, tell func()) {
	if !viaHTTP {
		e.engine.BlocksReceived(p, blks)
	}
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

// store puts the wanted blocks in the blockstore, reusing wanted's backing
// array for the ones stored. A bad block is counted and dropped; a good
// block the store cannot keep (a full or failing disk) is returned as
// failed, so its waiters are told why instead of waiting on.
func (e *Exchange) store(ctx context.Context, p peer.ID, wanted []block.Block) (stored []block.Block, failed []storeFailure) {
	stored = wanted[:0]
	for _, b := range wanted {
		err := e.bs.Put(ctx, b)
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
