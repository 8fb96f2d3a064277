package exchange

import (
	"fmt"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
)

// subscription is one GetBlocks call waiting for its blocks.
type subscription struct {
	cids []cid.Cid        // distinct, read-only
	ch   chan block.Block // buffered for every CID: a push never blocks

	mu        sync.Mutex // guards the fields below
	delivered map[string]bool
	closed    bool
	err       error // why it was closed early, if it failed
}

func newSubscription(cids []cid.Cid) *subscription {
	seen := make(map[string]bool, len(cids))
	distinct := make([]cid.Cid, 0, len(cids))
	for _, c := range cids {
		if !seen[c.KeyString()] {
			seen[c.KeyString()] = true
			distinct = append(distinct, c)
		}
	}
	return &subscription{
		cids:      distinct,
		ch:        make(chan block.Block, len(distinct)),
		delivered: make(map[string]bool, len(distinct)),
	}
}

// claim marks c delivered and reports whether it was not already.
func (s *subscription) claim(c cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.delivered[c.KeyString()] {
		return false
	}
	s.delivered[c.KeyString()] = true
	return true
}

// has reports whether c was delivered to the subscriber.
func (s *subscription) has(c cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered[c.KeyString()]
}

// push hands b to the subscriber unless it already has it.
func (s *subscription) push(b block.Block) {
	if s.claim(b.CID) {
		s.ch <- b
	}
}

func (s *subscription) close() { s.fail(nil) }

// fail closes the subscription early with err, unless it is closed
// already.
func (s *subscription) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.err = err
		close(s.ch)
	}
}

// failure returns the error fail closed the subscription with, if any.
func (s *subscription) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// waiter is a subscription's interest in one CID.
type waiter struct {
	sub *subscription
	c   cid.Cid
}

// pendingWants maps a multihash (as a string) to the subscriptions waiting
// for it. Keying by multihash lets a block that arrives under another CID
// version or codec (a 1.0.0 peer only sends CIDv0) satisfy every CID with
// the same hash. Guarded by Exchange.mu.
type pendingWants map[string][]waiter

func (pw pendingWants) add(c cid.Cid, s *subscription) {
	k := string(c.Hash())
	pw[k] = append(pw[k], waiter{sub: s, c: c})
}

func (pw pendingWants) wanted(c cid.Cid) bool {
	_, ok := pw[string(c.Hash())]
	return ok
}

// remove drops s's interest in c, if any, and reports whether no one else
// waits for exactly c, so a want for it can be cancelled.
func (pw pendingWants) remove(c cid.Cid, s *subscription) bool {
	k := string(c.Hash())
	ws := pw[k]
	if len(ws) == 0 {
		return true
	}
	kept := ws[:0]
	others := false
	for _, w := range ws {
		switch {
		case w.sub == s && w.c.Equals(c):
		default:
			kept = append(kept, w)
			if w.c.Equals(c) {
				others = true
			}
		}
	}
	if len(kept) == 0 {
		delete(pw, k)
	} else {
		pw[k] = kept
	}
	return !others
}

// deliver hands b to everyone waiting for its multihash, each under the CID
// it asked for, and returns those CIDs (their wants are now satisfied).
func (pw pendingWants) deliver(b block.Block) []cid.Cid {
	k := string(b.CID.Hash())
	ws := pw[k]
	if len(ws) == 0 {
		return nil
	}
	delete(pw, k)
	var done []cid.Cid
	for _, w := range ws {
		w.sub.push(block.Block{CID: w.c, Data: b.Data})
		if !containsCID(done, w.c) {
			done = append(done, w.c)
		}
	}
	return done
}

// fail ends the wait of everyone waiting for c's multihash with err (a
// block that could not be stored): each subscription closes early with an
// error naming the CID it asked for. It returns those CIDs, whose wants
// are to be cancelled.
func (pw pendingWants) fail(c cid.Cid, err error) []cid.Cid {
	k := string(c.Hash())
	ws := pw[k]
	delete(pw, k)
	var done []cid.Cid
	for _, w := range ws {
		w.sub.fail(fmt.Errorf("get block %s: %w", w.c, err))
		if !containsCID(done, w.c) {
			done = append(done, w.c)
		}
	}
	return done
}

func (pw pendingWants) closeAll() {
	for k, ws := range pw {
		for _, w := range ws {
			w.sub.close()
		}
		delete(pw, k)
	}
}

func containsCID(cs []cid.Cid, c cid.Cid) bool {
	for _, x := range cs {
		if x.Equals(c) {
			return true
		}
	}
	return false
}
