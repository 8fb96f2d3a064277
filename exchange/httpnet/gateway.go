package httpnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

// gateway is one connected gateway: its queue of requests and the workers
// that make them.
type gateway struct {
	n      *Network
	peer   peer.ID
	base   *url.URL
	ctx    context.Context // ends when the gateway is dropped
	cancel context.CancelFunc

	mu       sync.Mutex // guards the fields below
	queue    []*request
	reqs     map[string]*request // queued or running, by CID key
	running  int                 // workers
	failures int                 // failed requests in a row
}

// request is one want as a request to make.
type request struct {
	c        cid.Cid
	get      bool // GET the block; else HEAD
	dontHave bool // answer DONT_HAVE when the gateway lacks it
	ctx      context.Context
	cancel   context.CancelFunc
	started  bool
	dead     bool // cancelled while queued
}

// apply turns a wantlist message into requests.
func (g *gateway) apply(m *message.Message) {
	g.mu.Lock()
	if m.Full {
		listed := make(map[string]bool, len(m.Wants))
		for _, e := range m.Wants {
			if !e.Cancel {
				listed[e.CID.KeyString()] = true
			}
		}
		for k, r := range g.reqs {
			if !listed[k] {
				g.abortLocked(k, r)
			}
		}
	}
	for _, e := range m.Wants {
		k := e.CID.KeyString()
		old := g.reqs[k]
		if e.Cancel {
			if old != nil {
				g.abortLocked(k, old)
			}
			continue
		}
		get := e.WantType == wantlist.WantBlock
		switch {
		case old == nil:
		case old.get || !get:
			old.dontHave = old.dontHave || e.SendDontHave
			continue // asked already
		case !old.started:
			old.get = true // a queued HEAD becomes the GET
			old.dontHave = old.dontHave || e.SendDontHave
			continue
		default:
			g.abortLocked(k, old) // a running HEAD gives way to the GET
		}
		ctx, cancel := context.WithCancel(g.ctx)
		r := &request{c: e.CID, get: get, dontHave: e.SendDontHave, ctx: ctx, cancel: cancel}
		g.reqs[k] = r
		g.queue = append(g.queue, r)
	}
	g.compactLocked()
	for g.running < g.n.cfg.Workers && g.running < len(g.queue) && g.n.track() {
		g.running++
		go g.work()
	}
	g.mu.Unlock()
}

// abortLocked forgets the request for k and cancels it.
func (g *gateway) abortLocked(k string, r *request) {
	delete(g.reqs, k)
	r.dead = true
	r.cancel()
}

// compactLocked drops cancelled requests from the queue.
func (g *gateway) compactLocked() {
	g.queue = slices.DeleteFunc(g.queue, func(r *request) bool { return r.dead })
}

// next takes the next request: the oldest GET, else the oldest HEAD; nil
// when there is none, and the worker then ends.
func (g *gateway) next() *request {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.compactLocked()
	i := slices.IndexFunc(g.queue, func(r *request) bool { return r.get })
	if i < 0 && len(g.queue) > 0 {
		i = 0
	}
	if i < 0 || g.ctx.Err() != nil {
		g.running--
		return nil
	}
	r := g.queue[i]
	g.queue = slices.Delete(g.queue, i, i+1)
	r.started = true
	return r
}

// finished forgets r once answered, and reports whether it was still
// wanted (not cancelled meanwhile).
func (g *gateway) finished(r *request) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := r.c.KeyString()
	if g.reqs[k] != r {
		return false
	}
	delete(g.reqs, k)
	return true
}

func (g *gateway) work() {
	defer g.n.wg.Done()
	for {
		r := g.next()
		if r == nil {
			return
		}
		g.serve(r)
		r.cancel()
	}
}

// outcome is what one request found.
type outcome int

const (
	found outcome = iota
	missing
	failed
	lying // a block that does not match its CID
	aborted
)

// serve makes r and reports the answer.
func (g *gateway) serve(r *request) {
	start := g.n.cfg.now()
	b, out, wait, err := g.fetch(r)
	if !g.finished(r) || g.ctx.Err() != nil {
		return // cancelled: nobody waits for the answer
	}
	m := &message.Message{}
	switch out {
	case found:
		if r.get {
			m.Blocks = []block.Block{b}
		} else {
			m.Presences = []message.Presence{{CID: r.c, Type: message.Have}}
		}
	case missing, failed, lying:
		if r.dontHave {
			m.Presences = []message.Presence{{CID: r.c, Type: message.DontHave}}
		}
	case aborted:
		return
	}
	// The answer goes first: a gateway dropped for this failure is gone
	// once the receiver hears of it.
	if !m.Empty() {
		g.n.recv.ReceiveMessage(g.ctx, g.peer, m)
	}
	g.account(r, out, wait, err, g.n.cfg.now().Sub(start))
}

// account records the outcome against the gateway, dropping it when it
// failed too often or lied.
func (g *gateway) account(r *request, out outcome, wait time.Duration, err error, took time.Duration) {
	method := "HEAD"
	if r.get {
		method = "GET"
	}
	switch out {
	case found, missing:
		g.mu.Lock()
		g.failures = 0
		g.mu.Unlock()
		return
	case lying:
		g.n.count(func(s *Stats) { s.Failures++; s.InvalidBlocks++ })
		g.n.drop(g, wait, fmt.Errorf("%s %s: %w", method, r.c, err))
		return
	}
	g.n.count(func(s *Stats) { s.Failures++ })
	g.mu.Lock()
	g.failures++
	n := g.failures
	g.mu.Unlock()
	g.n.log.Debug("bitswap: http gateway request failed", "gateway", g.base.String(), "peer", g.peer, "cid", r.c, "method", method, "took", took, "err", err)
	if n >= g.n.cfg.MaxFailures {
		g.n.drop(g, wait, fmt.Errorf("%d failures in a row, the last %s %s: %w", n, method, r.c, err))
	}
}

// errTooLarge is a body longer than MaxBlockSize.
var errTooLarge = errors.New("response larger than the maximum block size")

// fetch makes r's request. It returns the block (for a GET that found it),
// the outcome, a wait the gateway asked for, and the error of a failure.
func (g *gateway) fetch(r *request) (block.Block, outcome, time.Duration, error) {
	ctx, cancel := context.WithTimeout(r.ctx, g.n.cfg.RequestTimeout)
	defer cancel()
	method := http.MethodHead
	if r.get {
		method = http.MethodGet
	}
	g.n.count(func(s *Stats) { s.Requests++ })
	resp, err := g.n.do(ctx, method, g.base, "/ipfs/"+r.c.String())
	if err != nil {
		if r.ctx.Err() != nil {
			return block.Block{}, aborted, 0, err
		}
		return block.Block{}, failed, 0, err
	}
	defer discard(resp)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusGone, http.StatusForbidden, http.StatusUnavailableForLegalReasons,
		http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return block.Block{}, missing, 0, nil
	default:
		return block.Block{}, failed, retryAfter(resp, g.n.cfg.now()), fmt.Errorf("%s", resp.Status)
	}
	if !r.get {
		return block.Block{}, found, 0, nil
	}
	max := g.n.cfg.MaxBlockSize
	if resp.ContentLength > max {
		return block.Block{}, failed, 0, fmt.Errorf("%w: %d bytes announced, limit %d", errTooLarge, resp.ContentLength, max)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	switch {
	case r.ctx.Err() != nil:
		return block.Block{}, aborted, 0, r.ctx.Err()
	case err != nil:
		return block.Block{}, failed, 0, err
	case int64(len(data)) > max:
		return block.Block{}, failed, 0, fmt.Errorf("%w: limit %d", errTooLarge, max)
	}
	b, err := block.Verified(r.c, data)
	if err != nil {
		return block.Block{}, lying, 0, err
	}
	return b, found, 0, nil
}
