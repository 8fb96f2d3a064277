package session

import (
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// wantState is one block the session waits for.
type wantState struct {
	c     cid.Cid
	since time.Time
	// target is the peer asked with want-block ("" if none); asked is when.
	target peer.ID
	asked  time.Time
	// haves and dontHaves are the peers that answered so.
	haves     map[peer.ID]bool
	dontHaves map[peer.ID]bool
	// haveAsked are the peers sent want-have.
	haveAsked map[peer.ID]bool
	broadcast bool      // sent as want-block to everyone
	searched  time.Time // when the last provider search for it started
	timeouts  int       // want-blocks that went unanswered
}

// addWants asks for new wants: from members if the session has any,
// otherwise by asking every connected peer whether it has them.
func (s *Session) addWants(cids []cid.Cid, now time.Time) {
	var fresh []*wantState
	for _, c := range cids {
		k := string(c.Hash())
		if s.want[k] != nil || (s.cfg.Waited != nil && !s.cfg.Waited(c)) {
			continue
		}
		w := &wantState{c: c, since: now, haves: map[peer.ID]bool{}, dontHaves: map[peer.ID]bool{}, haveAsked: map[peer.ID]bool{}}
		s.want[k] = w
		fresh = append(fresh, w)
	}
	if len(fresh) == 0 {
		return
	}
	if s.cfg.BroadcastOnly {
		for _, w := range fresh {
			s.broadcast(w)
		}
		return
	}
	if len(s.members) == 0 {
		s.askEveryone(fresh)
		return
	}
	// Want-blocks go to members with room, grouped so each peer gets one
	// call; the rest wait for the HAVEs and for room (fill).
	byTarget := map[peer.ID][]cid.Cid{}
	for _, w := range fresh {
		p := s.bestMember(w)
		if p == "" || s.members[p].outstanding >= s.cfg.PeerWindow {
			continue
		}
		s.target(w, p, now)
		byTarget[p] = append(byTarget[p], w.c)
	}
	for p, cs := range byTarget {
		s.wants.Want(cs, p)
	}
	// The best other members are asked want-have, to know where else to
	// turn; not all of them: with many members (peers fetching the same
	// content become members too) the HAVE chatter would cost more than
	// the choice is worth.
	for i, m := range s.sortedMembers() {
		if i >= s.cfg.HaveFanout+1 { // +1: the target is among them
			break
		}
		var cs []cid.Cid
		for _, w := range fresh {
			if w.target != m.id && !w.haveAsked[m.id] {
				w.haveAsked[m.id] = true
				cs = append(cs, w.c)
			}
		}
		if len(cs) > 0 {
			s.wants.WantHave(cs, m.id)
		}
	}
}

// askEveryone sends want-have for ws to every connected peer. With no peer
// connected there is nobody to ask: the wants are broadcast at once, so
// that they go to whoever connects (and show in the wantlist).
func (s *Session) askEveryone(ws []*wantState) {
	peers := s.peers.Peers()
	if len(peers) == 0 {
		for _, w := range ws {
			s.broadcast(w)
		}
		return
	}
	cs := make([]cid.Cid, 0, len(ws))
	for _, w := range ws {
		cs = append(cs, w.c)
		for _, p := range peers {
			w.haveAsked[p] = true
		}
	}
	s.wants.WantHave(cs, peers...)
}

// target records p as the peer asked for w with want-block, moving the
// outstanding count from the previous target.
func (s *Session) target(w *wantState, p peer.ID, now time.Time) {
	if w.target != "" {
		if m := s.members[w.target]; m != nil && m.outstanding > 0 {
			m.outstanding--
		}
	}
	w.target, w.asked = p, now
	if m := s.members[p]; m != nil {
		m.outstanding++
	}
}

// fill sends p want-blocks, oldest first, for the wants it said HAVE to and
// nobody is asked for, while p has room in its window.
func (s *Session) fill(p peer.ID, now time.Time) {
	m := s.members[p]
	room := s.cfg.PeerWindow - m.outstanding
	if room <= 0 {
		return
	}
	var ws []*wantState
	for _, w := range s.want {
		if w.target == "" && w.haves[p] && !w.dontHaves[p] {
			ws = append(ws, w) // broadcast ones too: a target is asked again when it times out
		}
	}
	if len(ws) == 0 {
		return
	}
	slices.SortFunc(ws, func(a, b *wantState) int { return a.since.Compare(b.since) })
	if len(ws) > room {
		ws = ws[:room]
	}
	cs := make([]cid.Cid, len(ws))
	for i, w := range ws {
		s.target(w, p, now)
		cs[i] = w.c
	}
	s.wants.Want(cs, p)
}

// retarget moves w's want-block to another member that may have it, or to
// a broadcast when none is left.
func (s *Session) retarget(w *wantState, now time.Time) {
	if m := s.members[w.target]; m != nil && m.outstanding > 0 {
		m.outstanding--
	}
	w.target = ""
	if p := s.bestMember(w); p != "" && s.members[p].outstanding < s.cfg.PeerWindow {
		s.target(w, p, now)
		s.wants.Want([]cid.Cid{w.c}, p)
		s.count(func(st *Stats) { st.Retargets++ })
		return
	}
	if s.everyoneSaidNo(w) {
		s.broadcast(w)
	}
}

// everyoneSaidNo reports whether every peer asked about w said DONT_HAVE.
func (s *Session) everyoneSaidNo(w *wantState) bool {
	if len(w.haveAsked) == 0 {
		return false
	}
	for p := range w.haveAsked {
		if !w.dontHaves[p] {
			return false
		}
	}
	return true
}

// broadcast sends w as want-block to every peer, now and later ones.
func (s *Session) broadcast(w *wantState) {
	if w.broadcast {
		return
	}
	w.broadcast = true
	s.wants.Want([]cid.Cid{w.c})
	s.count(func(st *Stats) { st.Broadcasts++ })
}

// drop forgets the want for c, freeing its target's window.
func (s *Session) drop(c cid.Cid) {
	k := string(c.Hash())
	w := s.want[k]
	if w == nil {
		return
	}
	if m := s.members[w.target]; w.target != "" && m != nil && m.outstanding > 0 {
		m.outstanding--
	}
	delete(s.want, k)
}
