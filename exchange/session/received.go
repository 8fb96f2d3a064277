package session

import (
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// received handles what p sent of the session's wants: a block or a HAVE
// makes p a member, a DONT_HAVE moves a want p was asked for elsewhere
// (and a run of them makes p leave). A member p is then given the
// want-blocks it said HAVE to, as its window allows.
func (s *Session) received(p peer.ID, blocks, haves, dontHaves []cid.Cid, now time.Time) {
	for _, c := range blocks {
		w := s.want[string(c.Hash())]
		if w == nil {
			continue
		}
		m := s.join(p)
		m.blocks++
		m.dontHaveRun = 0
		if w.target == p {
			m.observe(now.Sub(w.asked))
		}
		s.drop(c)
	}
	for _, c := range haves {
		w := s.want[string(c.Hash())]
		if w == nil {
			continue // another session's, or already here
		}
		m := s.join(p)
		m.haves++
		m.dontHaveRun = 0
		w.haves[p] = true
	}
	for _, c := range dontHaves {
		w := s.want[string(c.Hash())]
		if w == nil {
			continue
		}
		w.dontHaves[p] = true
		if m := s.members[p]; m != nil {
			m.dontHaves++
			m.dontHaveRun++
			if m.dontHaveRun >= s.cfg.MaxDontHaves {
				s.leave(p, now)
			}
		}
		if w.target == p {
			s.retarget(w, now)
		} else if w.target == "" && s.everyoneSaidNo(w) {
			s.broadcast(w)
		}
	}
	if s.members[p] != nil {
		s.fill(p, now)
	}
}
