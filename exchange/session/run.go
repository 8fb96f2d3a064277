package session

import (
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// eventKind says what an event reports.
type eventKind int

const (
	evWant eventKind = iota
	evCancel
	evReceived
	evConnected
	evDisconnected
)

// event is a call on the Session, queued for the loop to handle.
type event struct {
	kind             eventKind
	peer             peer.ID
	cids             []cid.Cid
	haves, dontHaves []cid.Cid
}

// tick is how often the loop checks deadlines while wants are pending.
const tick = 100 * time.Millisecond

// run is the session's loop: it alone touches the wants and members,
// handling the queued events and, while wants are pending, the deadlines.
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

// handle applies one event.
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
