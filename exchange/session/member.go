package session

import (
	"cmp"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// member is a peer that answered the session.
type member struct {
	id          peer.ID
	blocks      int
	haves       int
	dontHaves   int
	dontHaveRun int           // DONT_HAVEs in a row
	latency     time.Duration // smoothed want-block round trip
	outstanding int           // want-blocks sent and not answered
}

// bestMember picks the member to ask for w: one that said HAVE if any, with
// the fewest want-blocks outstanding, then the lowest latency.
func (s *Session) bestMember(w *wantState) peer.ID {
	var best *member
	better := func(a, b *member) bool {
		ah, bh := w.haves[a.id], w.haves[b.id]
		if ah != bh {
			return ah
		}
		if a.outstanding != b.outstanding {
			return a.outstanding < b.outstanding
		}
		return a.latency < b.latency
	}
	for _, m := range s.members {
		if w.dontHaves[m.id] {
			continue
		}
		if best == nil || better(m, best) {
			best = m
		}
	}
	if best == nil {
		return ""
	}
	return best.id
}

// join returns p's member record, making p a member (and protecting its
// connection) if it is not one yet.
func (s *Session) join(p peer.ID) *member {
	m := s.members[p]
	if m == nil {
		m = &member{id: p}
		s.members[p] = m
		if s.cfg.Protector != nil {
			s.cfg.Protector.Protect(p, s.cfg.ProtectTag)
		}
	}
	return m
}

// observe folds a round trip into the member's latency.
func (m *member) observe(rtt time.Duration) {
	if m.latency == 0 {
		m.latency = rtt
		return
	}
	m.latency = time.Duration(DefaultLatencySmoothing*float64(rtt) + (1-DefaultLatencySmoothing)*float64(m.latency))
}

// connected asks a new peer about the wants no member has claimed.
func (s *Session) connected(p peer.ID) {
	var cs []cid.Cid
	for _, w := range s.want {
		if len(w.haves) == 0 && !w.haveAsked[p] && !w.broadcast {
			w.haveAsked[p] = true
			cs = append(cs, w.c)
		}
	}
	if len(cs) > 0 {
		s.wants.WantHave(cs, p)
	}
}

// disconnected lets p leave and forgets what it was asked and answered.
func (s *Session) disconnected(p peer.ID, now time.Time) {
	s.leave(p, now)
	for _, w := range s.want {
		delete(w.haveAsked, p)
		delete(w.haves, p)
	}
}

// leave removes p from the members and moves its want-blocks elsewhere.
func (s *Session) leave(p peer.ID, now time.Time) {
	if _, ok := s.members[p]; !ok {
		return
	}
	if s.cfg.Protector != nil {
		s.cfg.Protector.Unprotect(p, s.cfg.ProtectTag)
	}
	delete(s.members, p)
	for _, w := range s.want {
		if w.target == p {
			w.target = ""
			w.dontHaves[p] = true
			s.retarget(w, now)
		}
	}
}

// sortedMembers lists the members, most blocks sent first.
func (s *Session) sortedMembers() []*member {
	ms := make([]*member, 0, len(s.members))
	for _, m := range s.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int {
		if c := cmp.Compare(b.blocks, a.blocks); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	return ms
}

// unprotectAll releases the connection protection the session took.
func (s *Session) unprotectAll() {
	if s.cfg.Protector == nil {
		return
	}
	for p := range s.members {
		s.cfg.Protector.Unprotect(p, s.cfg.ProtectTag)
	}
}
