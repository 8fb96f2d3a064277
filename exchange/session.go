package exchange

import (
	"context"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	lnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/httpnet"
	"github.com/bsfs/bsfs/exchange/session"
)

// Session is a group of related fetches (one file, one `get`): it learns
// which peers have the blocks and asks them rather than everyone.
type Session struct {
	e *Exchange
	s *session.Session
}

// NewSession starts a session that lasts until ctx ends or Close.
func (e *Exchange) NewSession(ctx context.Context) *Session {
	return &Session{e: e, s: e.newSession(ctx)}
}

// GetBlock is Exchange.GetBlock within the session.
func (s *Session) GetBlock(ctx context.Context, c cid.Cid) (block.Block, error) {
	sess, err := s.live()
	if err != nil {
		return block.Block{}, err
	}
	return s.e.getBlock(ctx, c, sess)
}

// GetBlocks is Exchange.GetBlocks within the session.
func (s *Session) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	sess, err := s.live()
	if err != nil {
		return nil, err
	}
	return s.e.getBlocks(ctx, cids, sess)
}

// live returns the session to fetch in: nil once it has ended (a session
// for the call then), ErrClosed if the exchange was closed when it began.
func (s *Session) live() (*session.Session, error) {
	if s.s == nil {
		return nil, ErrClosed
	}
	select {
	case <-s.s.Done():
		return nil, nil // ended: a session for this call
	default:
	}
	return s.s, nil
}

// Stats returns what the session learned of its peers.
func (s *Session) Stats() session.Stats {
	if s.s == nil {
		return session.Stats{}
	}
	return s.s.Stats()
}

// Close ends the session.
func (s *Session) Close() {
	if s.s != nil {
		s.e.closeSession(s.s)
	}
}

// newSession starts a session and registers it for the events it follows;
// nil once the exchange is closed.
func (e *Exchange) newSession(ctx context.Context) *session.Session {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	cfg := e.sessionCfg
	e.sessionSeq++
	cfg.Protector = e.net.Host().ConnManager()
	cfg.ProtectTag = fmt.Sprintf("bsfs-session-%d", e.sessionSeq)
	s := session.New(ctx, e.wm, sources{e}, cfg)
	// A session whose context ends is forgotten without waiting for Close.
	e.wg.Add(1)
	e.sessions[s] = context.AfterFunc(ctx, func() {
		defer e.wg.Done()
		e.closeSession(s)
	})
	return s
}

func (e *Exchange) closeSession(s *session.Session) {
	e.mu.Lock()
	stop, ok := e.sessions[s]
	delete(e.sessions, s)
	e.mu.Unlock()
	if ok {
		e.stopWatch(stop)
	}
	s.Close()
}

// stopWatch stops a session's watch of its context; a watch that has
// begun already is waited for by Close.
func (e *Exchange) stopWatch(stop func() bool) {
	if stop() {
		e.wg.Done()
	}
}

// eachSession calls f for every live session.
func (e *Exchange) eachSession(f func(*session.Session)) {
	e.mu.Lock()
	ss := make([]*session.Session, 0, len(e.sessions))
	for s := range e.sessions {
		ss = append(ss, s)
	}
	e.mu.Unlock()
	for _, s := range ss {
		f(s)
	}
}

// providerConnectTimeout bounds dialling one provider.
const providerConnectTimeout = 10 * time.Second

// maxProviders is how many providers one search connects to.
const maxProviders = 8

// findProviders asks content routing for providers of c and connects to
// them; sessions then ask them as new peers. A provider whose record names
// a usable HTTP gateway is connected over HTTP; failing that (or without
// one) over libp2p, if it has libp2p addresses.
func (e *Exchange) findProviders(ctx context.Context, c cid.Cid) {
	for ai := range e.providers.FindProviders(ctx, c, maxProviders) {
		h := e.net.Host()
		if ai.ID == h.ID() || h.Network().Connectedness(ai.ID) == lnet.Connected {
			continue
		}
		if e.http != nil && e.http.Connected(ai.ID) {
			continue
		}
		if e.http != nil && e.http.Usable(ai) {
			cctx, cancel := context.WithTimeout(ctx, providerConnectTimeout)
			err := e.http.Connect(cctx, ai)
			cancel()
			if err == nil {
				continue
			}
			e.log.Debug("bitswap: provider's http gateway not usable", "cid", c, "peer", ai.ID, "err", err)
		}
		if p2p := libp2pAddrs(ai); len(p2p.Addrs) < len(ai.Addrs) {
			if len(p2p.Addrs) == 0 {
				continue // an HTTP-only provider, and HTTP is off or failed
			}
			ai = p2p
		}
		cctx, cancel := context.WithTimeout(ctx, providerConnectTimeout)
		err := e.net.Connect(cctx, ai)
		cancel()
		if err != nil {
			e.log.Debug("bitswap: connect to provider failed", "cid", c, "peer", ai.ID, "err", err)
			continue
		}
		e.log.Info("bitswap: connected to provider", "cid", c, "peer", ai.ID)
	}
}

// libp2pAddrs returns ai without its HTTP addresses, which libp2p cannot
// dial.
func libp2pAddrs(ai peer.AddrInfo) peer.AddrInfo {
	out := peer.AddrInfo{ID: ai.ID}
	for _, a := range ai.Addrs {
		if !httpnet.IsHTTP(a) {
			out.Addrs = append(out.Addrs, a)
		}
	}
	return out
}

// SessionCount returns the number of live sessions.
func (e *Exchange) SessionCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.sessions)
}
