package decision

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

// worker serves ready peers one message at a time until Close.
func (e *Engine) worker() {
	defer e.wg.Done()
	e.mu.Lock()
	for {
		for !e.closed && !e.queue.hasReady() {
			e.work.Wait()
		}
		if e.closed {
			e.mu.Unlock()
			return
		}
		pt, tasks := e.queue.pop(e.cfg.MaxMessageBytes-pendingOverhead, e.cfg.MaxQueuedBytesPerPeer)
		pending := pt.data
		e.mu.Unlock()
		m := e.build(tasks, pending)
		var err error
		if !m.Empty() {
			err = e.sender.SendMessage(e.ctx, pt.id, m)
			if err != nil && e.ctx.Err() == nil {
				e.log.Debug("bitswap: send failed", "peer", pt.id, "err", err)
			}
		}
		e.mu.Lock()
		e.queue.done(pt)
		if !m.Empty() {
			e.accountLocked(pt.id, m, err)
		}
	}
}

// maxReading bounds the blocks of one message read at once. Reading a
// block is a file read and a hash of its data: a message's blocks are
// read side by side, so a peer's next message is ready sooner.
const maxReading = 4

// build reads the data of the tasks' blocks, a few at a time, and
// assembles the message in the tasks' order. pending is the block data
// still queued for the peer. A block gone from the store since its task was
// queued becomes a DONT_HAVE if the peer asked for those, and is otherwise
// left out; its want stays in the ledger.
func (e *Engine) build(tasks []*task, pending int) *message.Message {
	m := &message.Message{PendingBytes: int32(min(pending, math.MaxInt32))}
	got := e.read(tasks)
	for i, t := range tasks {
		switch t.kind {
		case kindBlock:
			b, err := got[i].b, got[i].err
			if err == nil {
				// The peer asked for exactly t.c: a store keyed by
				// multihash may return the block under another CID.
				m.Blocks = append(m.Blocks, block.Block{CID: t.c, Data: b.Data})
				continue
			}
			if !errors.Is(err, block.ErrNotFound) {
				if e.ctx.Err() == nil {
					e.log.Warn("bitswap: reading a block to send failed", "cid", t.c, "err", err)
				}
				continue
			}
			if t.dontHave {
				m.Presences = append(m.Presences, message.Presence{CID: t.c, Type: message.DontHave})
			}
		case kindHave:
			m.Presences = append(m.Presences, message.Presence{CID: t.c, Type: message.Have})
		case kindDontHave:
			m.Presences = append(m.Presences, message.Presence{CID: t.c, Type: message.DontHave})
		}
	}
	return m
}

// readResult is a block read from the store, or why it could not be.
type readResult struct {
	b   block.Block
	err error
}

// read gets the blocks of the block tasks from the store, at most
// maxReading at once; the result at i is tasks[i]'s.
func (e *Engine) read(tasks []*task) []readResult {
	out := make([]readResult, len(tasks))
	var idx []int
	for i, t := range tasks {
		if t.kind == kindBlock {
			idx = append(idx, i)
		}
	}
	get := func(i int) {
		out[i].b, out[i].err = e.bs.Get(e.ctx, tasks[i].c)
	}
	if len(idx) <= 1 {
		for _, i := range idx {
			get(i)
		}
		return out
	}
	var (
		wg   sync.WaitGroup
		next atomic.Int64
	)
	for range min(maxReading, len(idx)) {
		wg.Go(func() {
			for j := int(next.Add(1)) - 1; j < len(idx); j = int(next.Add(1)) - 1 {
				get(idx[j])
			}
		})
	}
	wg.Wait()
	return out
}

// accountLocked records the outcome of sending m to p. After a successful
// send, wants answered by a block or a HAVE leave p's ledger; a DONT_HAVE
// leaves the want in place. After a failure, the wants stay and nothing is
// retried until the peer asks again or the block is added again. e.mu is
// held.
func (e *Engine) accountLocked(p peer.ID, m *message.Message, err error) {
	if err != nil {
		e.stats.SendErrors++
		return
	}
	e.stats.MessagesSent++
	l := e.ledgers[p] // nil if p disconnected during the send
	for _, b := range m.Blocks {
		n := uint64(len(b.Data))
		e.stats.BlocksSent++
		e.stats.BytesSent += n
		if l != nil {
			l.blocksSent++
			l.bytesSent += n
			l.remove(b.CID)
		}
	}
	for _, pr := range m.Presences {
		if pr.Type == message.DontHave {
			e.stats.DontHavesSent++
			continue
		}
		e.stats.HavesSent++
		if l != nil {
			// A want upgraded to want-block since stays: its block is queued.
			l.removeType(pr.CID, wantlist.WantHave)
		}
	}
}
