package api

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

// NewSession names a session on the daemon for the requests of the getter
// it returns.
func (c *Client) NewSession(context.Context) unixfs.BlockGetter {
	var id [16]byte
	rand.Read(id[:])
	return &apiSession{c: c, id: hex.EncodeToString(id[:])}
}

// apiSession fetches through the daemon's session id.
type apiSession struct {
	c  *Client
	id string
}

// GetBlock fetches c within the session.
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

// GetBlocks fetches cids within the session.
func (s *apiSession) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	return s.c.getBlocks(ctx, cids, s.id)
}

// maxSessions bounds the sessions kept for API clients: a new one past
// it ends the one idle longest.
const maxSessions = 256

// sessions are the sessions API clients named. A session ends once it
// has had no request in flight for idle (sessionIdle when zero), on a timer
// of its own, so sessions nobody uses any more cost nothing for long.
type sessions struct {
	idle time.Duration

	mu sync.Mutex
	m  map[string]*namedSession // guarded by mu
}

type namedSession struct {
	g      unixfs.BlockGetter
	cancel context.CancelFunc
	timer  *time.Timer
	active int       // guarded by sessions.mu: requests in flight
	last   time.Time // guarded by sessions.mu: when the last one ended
}

// get returns the session named id, started by start if new, for one
// request that calls done when it ends.
func (a *sessions) get(id string, start func(context.Context) unixfs.BlockGetter) (unixfs.BlockGetter, func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]*namedSession{}
	}
	s := a.m[id]
	if s == nil {
		if len(a.m) >= maxSessions {
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

func (a *sessions) idleFor() time.Duration {
	if a.idle > 0 {
		return a.idle
	}
	return sessionIdle
}

// expire ends s, named id, if it is still idle: its timer may have fired
// just as a request came.
func (a *sessions) expire(id string, s *namedSession) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m[id] == s && s.active == 0 && time.Since(s.last) >= a.idleFor() {
		a.endLocked(id, s)
	}
}

// endIdlestLocked ends the session idle longest, if one is idle at all.
func (a *sessions) endIdlestLocked() {
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

func (a *sessions) endLocked(id string, s *namedSession) {
	s.timer.Stop()
	s.cancel()
	delete(a.m, id)
}

// closeAll ends every session.
func (a *sessions) closeAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, s := range a.m {
		a.endLocked(id, s)
	}
}

// len returns the number of sessions kept.
func (a *sessions) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.m)
}
