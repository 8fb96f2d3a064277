package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/unixfs"
)

// A file read through the daemon's API (bsfs cat, get, a mount using the
// daemon) keeps one exchange session on the daemon for all its requests:
// the client names it, and the daemon ends it after sessionIdle without a
// request.
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
	st, err := s.GetBlocks(ctx, []cid.Cid{c})
	if err != nil {
		return block.Block{}, err
	}
	if b, ok := <-st.C(); ok {
		return b, nil
	}
	if err := ctx.Err(); err != nil {
		return block.Block{}, err
	}
	if err := st.Err(); err != nil {
		return block.Block{}, err
	}
	return block.Block{}, block.ErrNotFound
}

func (s *apiSession) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	return s.c.getBlocks(ctx, cids, s.id)
}

// sessionServer is a node that keeps sessions for API clients.
type sessionServer interface {
	// apiSession returns the session named id for one request, which
	// calls done when it ends.
	apiSession(id string) (g unixfs.BlockGetter, done func())
}

// maxAPISessions bounds the sessions kept for API clients: a new one past
// it ends the one idle longest.
const maxAPISessions = 256

// apiSessions are the sessions API clients named. A session ends once it
// has had no request in flight for idle (sessionIdle when zero), on a timer
// of its own, so sessions nobody uses any more cost nothing for long.
type apiSessions struct {
	idle time.Duration

	mu sync.Mutex
	m  map[string]*namedSession // guarded by mu
}

type namedSession struct {
	g      unixfs.BlockGetter
	cancel context.CancelFunc
	timer  *time.Timer
	active int       // guarded by apiSessions.mu: requests in flight
	last   time.Time // guarded by apiSessions.mu: when the last one ended
}

// get returns the session named id, started by start if new, for one
// request that calls done when it ends.
func (a *apiSessions) get(id string, start func(context.Context) unixfs.BlockGetter) (unixfs.BlockGetter, func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]*namedSession{}
	}
	s := a.m[id]
	if s == nil {
		if len(a.m) >= maxAPISessions {
			a.endIdlestLocked()
		}
		ctx, cancel := context.WithCancel(context.Background())
		s = &namedSession{g: start(ctx), cancel: cancel}
		s.timer = time.AfterFunc(a.idleFor(), func() { a.expire(id, s) })
		a.m[id] = s
	}
	s.active++
	var once sync.Once
	return s.g, func() {
		once.Do(func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			s.active--
			s.last = time.Now()
			s.timer.Reset(a.idleFor())
		})
	}
}

func (a *apiSessions) idleFor() time.Duration {
	if a.idle > 0 {
		return a.idle
	}
	return sessionIdle
}

// expire ends s, named id, if it is still idle: its timer may have fired
// just as a request came.
func (a *apiSessions) expire(id string, s *namedSession) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m[id] == s && s.active == 0 && time.Since(s.last) >= a.idleFor() {
		a.endLocked(id, s)
	}
}

// endIdlestLocked ends the session idle longest, if one is idle at all.
func (a *apiSessions) endIdlestLocked() {
	var idlest string
	for id, s := range a.m {
		if s.active == 0 && (idlest == "" || s.last.Before(a.m[idlest].last)) {
			idlest = id
		}
	}
	if idlest != "" {
		a.endLocked(idlest, a.m[idlest])
	}
}

func (a *apiSessions) endLocked(id string, s *namedSession) {
	s.timer.Stop()
	s.cancel()
	delete(a.m, id)
}

// closeAll ends every session.
func (a *apiSessions) closeAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, s := range a.m {
		a.endLocked(id, s)
	}
}

// len returns the number of sessions kept.
func (a *apiSessions) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.m)
}

// apiSession returns the session named id for one request; offline, the
// local store.
func (n *repoNode) apiSession(id string) (unixfs.BlockGetter, func()) {
	if n.ex == nil {
		return unixfs.Local(n.repo.Blockstore()), func() {}
	}
	return n.sessions.get(id, func(ctx context.Context) unixfs.BlockGetter { return n.ex.NewSession(ctx) })
}

// closeSessions ends every API session.
func (n *repoNode) closeSessions() { n.sessions.closeAll() }
