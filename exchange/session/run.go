package session

import (
	"cmp"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

type eventKind int

const (
	evWant eventKind = iota
	evCancel
	evReceived
	evConnected
	evDisconnected
)

type event struct {
	kind             eventKind
	peer             peer.ID
	cids             []cid.Cid
	haves, dontHaves []cid.Cid
}

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

// tick is how often the loop checks deadlines while wants are pending.
const tick = 100 * time.Millisecond

func (s *Session) run() {
	defer close(s.done)
	defer s.unprotectAll()
	// The timer runs only while wants are pending: an idle session (such
	// as one an API client keeps between its requests) sleeps until an
	// event comes.
	timer := time.NewTimer(tick)
	defer timer.Stop()
	armed := true
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
		case <-timer.C:
			armed = false
			s.checkDeadlines(time.Now())
		}
		s.mu.Lock()
		evs := s.events
		s.events = nil
		s.mu.Unlock()
		for _, ev := range evs {
			s.handle(ev, time.Now())
		}
		s.publish()
		if !armed && len(s.want) > 0 {
			timer.Reset(tick)
			armed = true
		}
	}
}

func (s *Session) handle(ev event, now time.Time) {
	switch ev.kind {
	case evWant:
		s.addWants(ev.cids, now)
	case evCancel:
		for _, c := range ev.cids {
			s.drop(c)
		}
	case evReceived:
		s.received(ev.peer, ev.cids, ev.haves, ev.dontHaves, now)
	case evConnected:
		s.connected(ev.peer)
	case evDisconnected:
		s.disconnected(ev.peer, now)
	}
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

// observe folds a round trip into the member's latency.
func (m *member) observe(rtt time.Duration) {
	if m.latency == 0 {
		m.latency = rtt
		return
	}
	m.latency = time.Duration(DefaultLatencySmoothing*float64(rtt) + (1-DefaultLatencySmoothing)*float64(m.latency))
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

// publish copies the loop's view into Stats.
func (s *Session) publish() {
	ms := s.sortedMembers()
	ps := make([]PeerStat, len(ms))
	for i, m := range ms {
		ps[i] = PeerStat{Peer: m.id, Blocks: m.blocks, Haves: m.haves, DontHaves: m.dontHaves, Latency: m.latency}
	}
	s.mu.Lock()
	s.stats.Peers = ps
	s.stats.Wants = len(s.want)
	s.mu.Unlock()
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
