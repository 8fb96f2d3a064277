package wantmanager

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

// entry is a want as a queue tracks it.
type entry struct {
	c        cid.Cid
	priority int32
	t        wantlist.WantType
	// sendDontHave asks the peer to say DONT_HAVE rather than stay silent:
	// set for wants aimed at chosen peers, not for broadcasts.
	sendDontHave bool
}

// MessageQueue batches wantlist changes for one peer and sends them from its
// own goroutine, so a slow peer delays only itself.
type MessageQueue struct {
	wm   *WantManager
	peer peer.ID
	wake chan struct{}
	done chan struct{}

	mu sync.Mutex // guards the fields below
	// wanted holds every want that applies to the peer, sent or not.
	wanted map[string]entry
	// sent holds the wants the peer has been told of.
	sent map[string]entry
	// backlog lists wants not yet sent, in arrival order; it may hold keys
	// since cancelled or sent, which are skipped.
	backlog []string
	// again lists sent wants to send again (an upgrade to want-block, a
	// retry): they go ahead of the backlog and outside MaxInFlight, as
	// they take no more room at the peer. Keys no longer sent are skipped.
	again []string
	// cancels are CANCELs to send.
	cancels map[string]cid.Cid
	// full: the next message replaces the peer's view of our wantlist.
	full    bool
	stopped bool
}

func newMessageQueue(wm *WantManager, p peer.ID) *MessageQueue {
	return &MessageQueue{
		wm:      wm,
		peer:    p,
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		wanted:  make(map[string]entry),
		sent:    make(map[string]entry),
		cancels: make(map[string]cid.Cid),
		full:    true,
	}
}

func (q *MessageQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// add records a want for the peer. A want-have already sent is upgraded by
// sending the entry again as want-block.
func (q *MessageQueue) add(k string, c cid.Cid, priority int32, t wantlist.WantType, sendDontHave bool) {
	q.mu.Lock()
	old, ok := q.wanted[k]
	switch {
	case !ok:
		q.wanted[k] = entry{c: c, priority: priority, t: t, sendDontHave: sendDontHave}
		delete(q.cancels, k)
		if _, sent := q.sent[k]; !sent {
			q.backlog = append(q.backlog, k)
		}
	case old.t == wantlist.WantHave && t == wantlist.WantBlock:
		e := entry{c: c, priority: priority, t: t, sendDontHave: sendDontHave || old.sendDontHave}
		q.wanted[k] = e
		if _, sent := q.sent[k]; sent {
			q.sent[k] = e
			q.again = append(q.again, k)
		}
	default:
		q.mu.Unlock()
		return
	}
	q.mu.Unlock()
	q.signal()
}

// resend sends a want already sent again in the next message.
func (q *MessageQueue) resend(k string) {
	q.mu.Lock()
	_, sent := q.sent[k]
	if sent {
		q.again = append(q.again, k)
	}
	q.mu.Unlock()
	if sent {
		q.signal()
	}
}

func (q *MessageQueue) cancel(k string, c cid.Cid) {
	q.mu.Lock()
	delete(q.wanted, k)
	_, sent := q.sent[k]
	if sent {
		delete(q.sent, k)
		q.cancels[k] = c
	}
	q.mu.Unlock()
	if sent {
		q.signal()
	}
}

func (q *MessageQueue) stop() {
	q.mu.Lock()
	if !q.stopped {
		q.stopped = true
		close(q.done)
	}
	q.mu.Unlock()
}

// run sends whatever has accumulated each time it is woken, until stopped.
func (q *MessageQueue) run(ctx context.Context) {
	defer q.wm.wg.Done()
	rebroadcast := time.NewTicker(q.wm.cfg.RebroadcastInterval)
	defer rebroadcast.Stop()
	var retry <-chan time.Time
	delay := q.wm.cfg.RetryDelay
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.done:
			return
		case <-q.wake:
		case <-retry:
			retry = nil
		case <-rebroadcast.C:
			q.mu.Lock()
			q.full = len(q.sent) > 0 || len(q.backlog) > 0
			q.mu.Unlock()
			q.wm.count(func(s *Stats) { s.Rebroadcasts++ })
		}
		for {
			m, wants, cancels := q.next()
			if m == nil {
				break
			}
			err := q.wm.net.SendMessage(ctx, q.peer, m)
			if err != nil {
				q.failed(err)
				if retry == nil {
					retry = time.After(delay)
					delay = min(2*delay, q.wm.cfg.RebroadcastInterval)
				}
				break
			}
			delay = q.wm.cfg.RetryDelay
			q.wm.count(func(s *Stats) {
				s.MessagesSent++
				s.EntriesSent += uint64(wants)
				s.CancelsSent += uint64(cancels)
			})
		}
	}
}

// next builds the next message from the changes accumulated, moving the
// wants it carries into sent. It returns nil when there is nothing to send.
func (q *MessageQueue) next() (m *message.Message, wants, cancels int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return nil, 0, 0
	}
	limit := q.wm.cfg.MaxEntriesPerMessage
	m = &message.Message{}
	if q.full {
		// Replace the peer's view: everything sent so far, then the backlog.
		m.Full = true
		q.cancels = make(map[string]cid.Cid)
		for _, e := range q.sent {
			m.Wants = append(m.Wants, wantEntry(e))
		}
		slices.SortFunc(m.Wants, func(a, b message.Entry) int { return cmp.Compare(b.Priority, a.Priority) })
		q.full = false
		q.again = nil // in the full list already
	}
	for k, c := range q.cancels {
		if len(m.Wants) >= limit {
			break
		}
		m.Wants = append(m.Wants, message.Entry{CID: c, Cancel: true})
		delete(q.cancels, k)
		cancels++
	}
	for len(q.again) > 0 && len(m.Wants) < limit {
		k := q.again[0]
		q.again[0] = ""
		q.again = q.again[1:]
		if e, sent := q.sent[k]; sent {
			m.Wants = append(m.Wants, wantEntry(e))
			wants++
		}
	}
	if len(q.again) == 0 {
		q.again = nil
	}
	for len(q.backlog) > 0 && len(m.Wants) < limit && len(q.sent) < q.wm.cfg.MaxInFlight {
		k := q.backlog[0]
		q.backlog[0] = ""
		q.backlog = q.backlog[1:]
		e, ok := q.wanted[k]
		if !ok {
			continue
		}
		if _, sent := q.sent[k]; sent {
			continue
		}
		q.sent[k] = e
		m.Wants = append(m.Wants, wantEntry(e))
		wants++
	}
	if len(q.backlog) == 0 {
		q.backlog = nil // let the array go
	}
	if len(m.Wants) == 0 && !m.Full {
		return nil, 0, 0
	}
	if m.Full && len(m.Wants) == 0 && wants == 0 {
		// An empty full list tells the peer we want nothing: worth sending
		// only if it had something from us, which a fresh queue has not.
		return nil, 0, 0
	}
	return m, wants, cancels
}

// failed records a failed send: the peer's view of our wantlist is unknown,
// so the next message replaces it.
func (q *MessageQueue) failed(err error) {
	q.mu.Lock()
	q.full = true
	q.mu.Unlock()
	q.wm.count(func(s *Stats) { s.SendFailures++ })
	if !errors.Is(err, context.Canceled) {
		q.wm.log.Debug("bitswap: send wantlist failed", "peer", q.peer, "err", err)
	}
}

func wantEntry(e entry) message.Entry {
	return message.Entry{CID: e.c, Priority: e.priority, WantType: e.t, SendDontHave: e.sendDontHave}
}

func sortWants(ws []*want) {
	slices.SortFunc(ws, func(a, b *want) int { return cmp.Compare(b.priority, a.priority) })
}
