package decision

import (
	"context"
	"errors"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

// MessageReceived applies the wantlist of a message from p: a Full message
// replaces what p wanted, cancels revoke wants and their queued answers,
// and each new want is looked up in the store and answered when it can be.
// Wants stay in p's ledger until satisfied, so a block added later is sent
// then. When p's list is full, a new want whose block we have takes the
// place of the least urgent want whose block we lack (see lacking); at most
// Config.MaxWantlistEntries such wants of one message are looked up, and
// the others are ignored. MessageReceived reads block sizes from the store
// with ctx but never waits for a send. Blocks and presences in m are not
// its business.
func (e *Engine) MessageReceived(ctx context.Context, p peer.ID, m *message.Message) {
	if m == nil || (!m.Full && len(m.Wants) == 0) {
		return
	}
	check := e.applyWants(p, m)
	if len(check) == 0 {
		return
	}
	// Look the wants up without the lock: the store may be slow.
	for i := range check {
		check[i].size, check[i].err = e.bs.GetSize(ctx, check[i].want.CID)
		if err := check[i].err; err != nil && !errors.Is(err, block.ErrNotFound) && ctx.Err() == nil {
			e.log.Warn("bitswap: block store lookup failed", "cid", check[i].want.CID, "err", err)
		}
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.ledgers[p]
	if e.closed || l == nil {
		return // disconnected meanwhile
	}
	// Wants within the cap first, so that those we cannot serve are known
	// before the wants over it look for a place.
	for _, c := range check {
		if !c.over {
			e.answerLocked(p, l, c)
		}
	}
	for _, c := range check {
		if !c.over {
			continue
		}
		if !l.wants.Has(c.want.CID) {
			if c.err != nil || !e.makeRoomLocked(p, l) {
				e.stats.WantsIgnored++
				continue
			}
			l.wants.Add(c.want)
		}
		e.answerLocked(p, l, c)
	}
}

// lookup is a want whose block MessageReceived looks up in the store.
type lookup struct {
	want wantlist.Entry
	over bool // the want came over the cap and is not in the ledger
	size int
	err  error
}

// answerLocked queues the answer to p's want looked up in c, if p still
// wants it, and records whether we lack its block. e.mu is held.
func (e *Engine) answerLocked(p peer.ID, l *ledger, c lookup) {
	w, ok := l.wants.Get(c.want.CID)
	if !ok {
		return // cancelled meanwhile
	}
	switch {
	case c.err == nil:
		l.lacking.remove(w.CID)
		e.pushLocked(p, w, true, c.size)
	case errors.Is(c.err, block.ErrNotFound):
		// The block may have been added since the lookup: then its
		// answer is queued, and the want is one we can serve.
		if !e.queue.answers(p, w.CID.KeyString()) {
			l.lacking.add(w)
		}
		e.pushLocked(p, w, false, 0)
	}
	// Any other error: we cannot tell, so say nothing; the want stays.
}

// makeRoomLocked makes room in p's list for one more want, evicting the
// wants that give way first (and their queued answers) if it is full, and
// reports whether there is room. e.mu is held.
func (e *Engine) makeRoomLocked(p peer.ID, l *ledger) bool {
	for l.wants.Len() >= e.cfg.MaxWantlistEntries {
		c, ok := l.lacking.pop()
		if !ok {
			return false
		}
		if l.wants.Remove(c) {
			e.queue.remove(p, c.KeyString())
			e.stats.WantsEvicted++
		}
	}
	return true
}

// applyWants updates p's ledger with m's entries in order and returns the
// distinct CIDs to look up: the wants added or changed, and the new wants
// that came over the cap.
func (e *Engine) applyWants(p peer.ID, m *message.Message) []lookup {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	l := e.ledgerLocked(p)
	if m.Full {
		l.clear()
		e.queue.dropPeer(p)
	}
	var (
		check   []lookup
		seen    map[string]struct{}
		ignored uint64
		over    int
	)
	for i := range m.Wants {
		w := &m.Wants[i]
		if w.Cancel {
			if l.remove(w.CID) {
				e.queue.remove(p, w.CID.KeyString())
			}
			continue
		}
		// The cap first: it is the cheaper check, and the one a flood hits.
		full := l.wants.Len() >= e.cfg.MaxWantlistEntries && !l.wants.Has(w.CID)
		if (full && over >= e.cfg.MaxWantlistEntries) || !usable(w) {
			ignored++
			continue
		}
		entry := wantlist.Entry{CID: w.CID, Priority: w.Priority, WantType: w.WantType, SendDontHave: w.SendDontHave}
		if !full {
			l.wants.Add(entry)
		}
		k := w.CID.KeyString()
		if _, dup := seen[k]; dup {
			if full {
				ignored++
			}
			continue
		}
		if seen == nil {
			seen = make(map[string]struct{})
		}
		seen[k] = struct{}{}
		if full {
			over++
		}
		check = append(check, lookup{want: entry, over: full})
	}
	e.stats.WantsIgnored += ignored
	return check
}

// usable reports whether the engine can serve a want: a known want type
// and a CID bsfs supports that does not carry its own data. The empty
// block is served: Kubo asks for it.
func usable(w *message.Entry) bool {
	if w.WantType != wantlist.WantBlock && w.WantType != wantlist.WantHave {
		return false
	}
	return block.CheckCID(w.CID) == nil && !block.IsIdentity(w.CID)
}

// pushLocked queues the answer to want w of p, given whether the block is
// in the store and its size, and wakes a worker if p became ready. A
// missing block without SendDontHave needs no answer. e.mu is held.
func (e *Engine) pushLocked(p peer.ID, w wantlist.Entry, have bool, size int) {
	t := task{c: w.CID, key: w.CID.KeyString(), priority: w.Priority, dontHave: w.SendDontHave}
	switch {
	case have && (w.WantType == wantlist.WantBlock || size <= e.cfg.InlineHaveLimit):
		t.kind, t.size = kindBlock, size
	case have:
		t.kind = kindHave
	case w.SendDontHave:
		t.kind = kindDontHave
	default:
		return
	}
	if e.queue.push(p, t) {
		e.work.Signal()
	}
}

// BlocksReceived records in p's ledger the blocks p sent us.
func (e *Engine) BlocksReceived(p peer.ID, blks []block.Block) {
	if len(blks) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	l := e.ledgerLocked(p)
	for _, b := range blks {
		l.blocksRecv++
		l.bytesRecv += uint64(len(b.Data))
	}
}

// BlocksAdded tells the engine that blks are now in the store: peers that
// want them are answered.
func (e *Engine) BlocksAdded(blks []block.Block) {
	if len(blks) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	for p, l := range e.ledgers {
		if l.wants.Len() == 0 {
			continue
		}
		for _, b := range blks {
			if w, ok := l.wants.Get(b.CID); ok {
				l.lacking.remove(b.CID)
				e.pushLocked(p, w, true, len(b.Data))
			}
		}
	}
}

// PeerConnected opens a ledger for p.
func (e *Engine) PeerConnected(p peer.ID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.ledgerLocked(p)
	}
}

// PeerDisconnected forgets p: its ledger, its wants and its queued tasks.
// A message being sent to p finishes or fails on its own.
func (e *Engine) PeerDisconnected(p peer.ID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.ledgers, p)
	e.queue.dropPeer(p)
}
