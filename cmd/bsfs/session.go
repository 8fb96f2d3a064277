package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/unixfs"
)

// A file read through the daemon's API (bsfs cat, get, a mount using the
// daemon) keeps one exchange session on the daemon for all its requests:
// the client names it, and the daemon forgets it after sessionIdle without
// a request.
const sessionIdle = time.Minute

// NewSession returns a getter whose fetches share one exchange session
// until ctx ends; offline it reads the local store.
func (n *repoNode) NewSession(ctx context.Context) unixfs.BlockGetter {
	if n.ex == nil {
		return unixfs.Local(n.repo.Blockstore())
	}
	return n.ex.NewSession(ctx)
}

// NewSession makes sessions a reader of nodeBlocks can use.
func (b nodeBlocks) NewSession(ctx context.Context) unixfs.BlockGetter {
	return b.n.NewSession(ctx)
}

var _ unixfs.Sessioner = nodeBlocks{}

// NewSession names a session on the daemon for the requests of the getter
// it returns.
func (c *apiClient) NewSession(context.Context) unixfs.BlockGetter {
	var id [16]byte
	rand.Read(id[:])
	return &apiSession{c: c, id: hex.EncodeToString(id[:])}
}

// apiSession fetches through the daemon's session id.
type apiSession struct {
	c  *apiClient
	id string
}

func (s *apiSession) GetBlock(ctx context.Context, c cid.Cid) (block.Block, error) {
	ch, err := s.GetBlocks(ctx, []cid.Cid{c})
	if err != nil {
		return block.Block{}, err
	}
	if b, ok := <-ch; ok {
		return b, nil
	}
	if err := ctx.Err(); err != nil {
		return block.Block{}, err
	}
	return block.Block{}, block.ErrNotFound
}

func (s *apiSession) GetBlocks(ctx context.Context, cids []cid.Cid) (<-chan block.Block, error) {
	return s.c.getBlocks(ctx, cids, s.id)
}

// sessionServer is a node that keeps sessions for API clients.
type sessionServer interface {
	apiSession(id string) unixfs.BlockGetter
}

// apiSessions are the sessions API clients named.
type apiSessions struct {
	mu sync.Mutex
	m  map[string]*namedSession
}

type namedSession struct {
	s      *exchange.Session
	cancel context.CancelFunc
	last   time.Time
}

// apiSession returns the session named id, starting it if new, and ends
// the sessions idle for longer than sessionIdle.
func (n *repoNode) apiSession(id string) unixfs.BlockGetter {
	if n.ex == nil {
		return unixfs.Local(n.repo.Blockstore())
	}
	n.sessions.mu.Lock()
	defer n.sessions.mu.Unlock()
	now := time.Now()
	for k, s := range n.sessions.m {
		if now.Sub(s.last) > sessionIdle {
			s.cancel()
			delete(n.sessions.m, k)
		}
	}
	if n.sessions.m == nil {
		n.sessions.m = map[string]*namedSession{}
	}
	s := n.sessions.m[id]
	if s == nil {
		ctx, cancel := context.WithCancel(context.Background())
		s = &namedSession{s: n.ex.NewSession(ctx), cancel: cancel}
		n.sessions.m[id] = s
	}
	s.last = now
	return s.s
}

// closeSessions ends every API session.
func (n *repoNode) closeSessions() {
	n.sessions.mu.Lock()
	defer n.sessions.mu.Unlock()
	for k, s := range n.sessions.m {
		s.cancel()
		delete(n.sessions.m, k)
	}
}
