package session

import (
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// checkDeadlines moves want-blocks that took too long, broadcasts wants
// nobody claimed, and starts provider searches.
func (s *Session) checkDeadlines(now time.Time) {
	for _, w := range s.want {
		switch {
		case w.target != "":
			timeout := s.cfg.BlockTimeout
			if m := s.members[w.target]; m != nil && 4*m.latency > timeout {
				timeout = 4 * m.latency
			}
			if now.Sub(w.asked) > timeout {
				s.timedOut(w, now)
			}
		case w.broadcast || len(w.haves) > 0:
		case now.Sub(w.since) > s.cfg.SilenceTimeout:
			s.broadcast(w)
		}
		// Providers are looked for only for a want no peer has said HAVE
		// to (a busy peer that has it is not a reason to search), one
		// search at a time for the session: its providers likely have the
		// session's other blocks too. A want still unanswered is looked
		// for again every ProviderRetry: its content may have been
		// announced since, or the routing tables filled.
		due := w.searched.IsZero() || now.Sub(w.searched) > s.cfg.ProviderRetry
		if due && len(w.haves) == 0 && !s.searching.Load() && s.cfg.FindProviders != nil && now.Sub(w.since) > s.cfg.ProviderDelay {
			w.searched = now
			s.searching.Store(true)
			s.count(func(st *Stats) { st.ProviderSearch++ })
			s.wg.Add(1)
			go func(c cid.Cid) {
				defer s.wg.Done()
				defer s.searching.Store(false)
				s.cfg.FindProviders(s.ctx, c)
			}(w.c)
		}
	}
	for p := range s.members {
		s.fill(p, now)
	}
}

// timedOut handles a want-block that went unanswered. Another member that
// said HAVE takes it (at once if it has room, else when it has); with no
// such member the same peer is asked again (it may have dropped the want,
// a send that failed on its side, say) and every other connected peer is
// asked want-have; a second time-out broadcasts it.
func (s *Session) timedOut(w *wantState, now time.Time) {
	s.count(func(st *Stats) { st.Retargets++ })
	old := w.target
	w.timeouts++
	alternative := false
	for _, m := range s.sortedMembers() {
		if m.id == old || !w.haves[m.id] || w.dontHaves[m.id] {
			continue
		}
		if m.outstanding < s.cfg.PeerWindow {
			s.target(w, m.id, now)
			s.wants.Want([]cid.Cid{w.c}, m.id)
			return
		}
		alternative = true
	}
	if alternative {
		// Leave it to fill, which gives it to a member with room.
		if m := s.members[old]; m != nil && m.outstanding > 0 {
			m.outstanding--
		}
		w.target = ""
		w.dontHaves[old] = true
		return
	}
	w.asked = now
	s.wants.WantAgain([]cid.Cid{w.c}, old)
	var others []peer.ID
	for _, p := range s.peers.Peers() {
		if p != old && !w.haveAsked[p] {
			w.haveAsked[p] = true
			others = append(others, p)
		}
	}
	if len(others) > 0 {
		s.wants.WantHave([]cid.Cid{w.c}, others...)
	}
	if w.timeouts >= 2 {
		s.broadcast(w)
	}
}
