package session

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// call is one request the session made of the want manager.
type call struct {
	have  bool // want-have, else want-block
	again bool // WantAgain
	cids  []cid.Cid
	peers []peer.ID // nil: broadcast
}

// recorder stands in for the want manager and the network's peer list.
type recorder struct {
	mu    sync.Mutex
	calls []call
	peers []peer.ID
}

func (r *recorder) Want(cids []cid.Cid, peers ...peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{cids: cids, peers: peers})
}

func (r *recorder) WantAgain(cids []cid.Cid, peers ...peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{again: true, cids: cids, peers: peers})
}

func (r *recorder) WantHave(cids []cid.Cid, peers ...peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{have: true, cids: cids, peers: peers})
}

func (r *recorder) Peers() []peer.ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.peers)
}

// take returns the calls made since the last take.
func (r *recorder) take() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

// blocksAsked counts want-block CIDs sent to p (broadcasts excluded).
func blocksAsked(calls []call, p peer.ID) int {
	n := 0
	for _, c := range calls {
		if !c.have && slices.Contains(c.peers, p) {
			n += len(c.cids)
		}
	}
	return n
}

func broadcasts(calls []call) int {
	n := 0
	for _, c := range calls {
		if !c.have && c.peers == nil {
			n += len(c.cids)
		}
	}
	return n
}

func cids(n int) []cid.Cid {
	out := make([]cid.Cid, n)
	for i := range out {
		c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum(fmt.Appendf(nil, "%d", i))
		if err != nil {
			panic(err)
		}
		out[i] = c
	}
	return out
}

const a, b, c = peer.ID("a"), peer.ID("b"), peer.ID("c")

func newTest(t *testing.T, cfg Config, peers ...peer.ID) (*Session, *recorder) {
	r := &recorder{peers: peers}
	s := New(context.Background(), r, r, cfg)
	t.Cleanup(s.Close)
	return s, r
}

func TestAsksEveryoneThenOnePeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, r := newTest(t, Config{}, a, b, c)
		ws := cids(3)
		s.Want(ws)
		synctest.Wait()
		calls := r.take()
		if len(calls) != 1 || !calls[0].have || len(calls[0].peers) != 3 || len(calls[0].cids) != 3 {
			t.Fatalf("first calls %+v: want one want-have of 3 CIDs to 3 peers", calls)
		}
		s.Received(a, nil, ws, nil)
		s.Received(b, nil, ws, nil)
		synctest.Wait()
		calls = r.take()
		if blocksAsked(calls, a) != 3 || blocksAsked(calls, b) != 0 {
			t.Fatalf("calls %+v: want the 3 blocks asked of a only", calls)
		}
		s.Received(a, ws, nil, nil)
		synctest.Wait()
		if st := s.Stats(); st.Wants != 0 || len(st.Peers) != 2 || st.Peers[0].Peer != a || st.Peers[0].Blocks != 3 {
			t.Fatalf("stats %+v", st)
		}
		// Members known: a new want goes as want-block to one member and as
		// want-have to the other, with no broadcast.
		more := cids(4)[3:]
		s.Want(more)
		synctest.Wait()
		calls = r.take()
		if blocksAsked(calls, a)+blocksAsked(calls, b) != 1 || broadcasts(calls) != 0 {
			t.Fatalf("calls %+v: want one targeted want-block", calls)
		}
	})
}

func TestWindowSpreadsOverPeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, r := newTest(t, Config{PeerWindow: 8}, a, b)
		ws := cids(20)
		s.Want(ws)
		s.Received(a, nil, ws, nil)
		s.Received(b, nil, ws, nil)
		synctest.Wait()
		calls := r.take()
		if blocksAsked(calls, a) != 8 || blocksAsked(calls, b) != 8 {
			t.Fatalf("asked a %d, b %d; want 8 each (window)", blocksAsked(calls, a), blocksAsked(calls, b))
		}
		// Four blocks from a free room for four more.
		var got []cid.Cid
		for _, call := range calls {
			if !call.have && slices.Contains(call.peers, a) {
				got = append(got, call.cids...)
			}
		}
		s.Received(a, got[:4], nil, nil)
		synctest.Wait()
		if n := blocksAsked(r.take(), a); n != 4 {
			t.Fatalf("after 4 blocks, a was asked %d more; want 4", n)
		}
	})
}

func TestDontHaveMovesAndBroadcasts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, r := newTest(t, Config{}, a, b)
		ws := cids(1)
		s.Want(ws)
		s.Received(a, nil, ws, nil)
		s.Received(b, nil, ws, nil)
		synctest.Wait()
		r.take()
		s.Received(a, nil, nil, ws) // a was asked and refuses
		synctest.Wait()
		if n := blocksAsked(r.take(), b); n != 1 {
			t.Fatalf("after a's DONT_HAVE, b asked %d; want 1", n)
		}
		s.Received(b, nil, nil, ws)
		synctest.Wait()
		if n := broadcasts(r.take()); n != 1 {
			t.Fatalf("after everyone's DONT_HAVE, %d broadcasts; want 1", n)
		}
	})
}

func TestTimeoutAsksAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, r := newTest(t, Config{BlockTimeout: time.Second}, a)
		ws := cids(1)
		s.Want(ws)
		s.Received(a, nil, ws, nil)
		synctest.Wait()
		r.take()
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		calls := r.take()
		if n := blocksAsked(calls, a); n != 1 || !calls[0].again {
			t.Fatalf("after the time-out a was asked %d times (%+v); want once more, with WantAgain", n, calls)
		}
		if s.Stats().Retargets != 1 {
			t.Fatalf("retargets %d, want 1", s.Stats().Retargets)
		}
	})
}

func TestNoPeersBroadcastsAndSearches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		searched := 0
		cfg := Config{
			ProviderDelay: 2 * time.Second,
			FindProviders: func(context.Context, cid.Cid) { mu.Lock(); searched++; mu.Unlock() },
		}
		s, r := newTest(t, cfg)
		s.Want(cids(2))
		synctest.Wait()
		if n := broadcasts(r.take()); n != 2 {
			t.Fatalf("%d broadcasts with no peer to ask; want 2 at once", n)
		}
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if searched != 2 {
			t.Fatalf("%d provider searches; want one a CID", searched)
		}
		// A peer that connects is asked about what nobody has.
		s.PeerConnected(a)
		synctest.Wait()
		if calls := r.take(); len(calls) != 0 {
			t.Fatalf("broadcast wants re-asked of a new peer: %+v", calls)
		}
	})
}

func TestPeerLeavesAfterDontHaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := newTest(t, Config{MaxDontHaves: 3}, a, b)
		ws := cids(4)
		s.Want(ws)
		s.Received(a, nil, ws[:1], nil) // a joins
		s.Received(b, nil, ws, nil)
		synctest.Wait()
		s.Received(a, nil, nil, ws[1:])
		synctest.Wait()
		for _, p := range s.Stats().Peers {
			if p.Peer == a {
				t.Fatalf("a still a member after 3 DONT_HAVEs in a row: %+v", p)
			}
		}
	})
}

// TestNoSearchWhileAPeerHasIt: a want some peer said HAVE to is slow, not
// lost: no provider search is started for it.
func TestNoSearchWhileAPeerHasIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		searched := 0
		cfg := Config{
			ProviderDelay: time.Second,
			BlockTimeout:  time.Minute,
			FindProviders: func(context.Context, cid.Cid) { mu.Lock(); searched++; mu.Unlock() },
		}
		s, _ := newTest(t, cfg, a)
		ws := cids(3)
		s.Want(ws)
		s.Received(a, nil, ws[:2], nil)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if searched != 1 {
			t.Fatalf("%d provider searches; want 1, for the want nobody has", searched)
		}
	})
}

// TestTimeoutMovesToAnotherHaver: a want-block the target leaves
// unanswered goes to another member that said HAVE; a want nobody else
// has is asked of the other connected peers, then broadcast.
func TestTimeoutMovesToAnotherHaver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, r := newTest(t, Config{BlockTimeout: time.Second}, a, b, c)
		ws := cids(2)
		s.Want(ws)
		s.Received(a, nil, ws, nil) // a has both and is asked for both
		s.Received(b, nil, ws[:1], nil)
		synctest.Wait()
		if n := blocksAsked(r.take(), a); n != 2 {
			t.Fatalf("a asked for %d blocks, want 2", n)
		}
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		calls := r.take()
		if n := blocksAsked(calls, b); n != 1 {
			t.Fatalf("after a's silence b was asked for %d blocks, want the one it has", n)
		}
		time.Sleep(1500 * time.Millisecond) // a second time-out for the other
		synctest.Wait()
		if n := broadcasts(r.take()); n < 1 {
			t.Fatal("a want nobody else has was not broadcast after a second time-out")
		}
	})
}

// guard records which peers are protected, and under which tags.
type guard struct {
	mu        sync.Mutex
	protected map[peer.ID]int
}

func (g *guard) Protect(p peer.ID, _ string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.protected == nil {
		g.protected = map[peer.ID]int{}
	}
	g.protected[p]++
}

func (g *guard) Unprotect(p peer.ID, _ string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.protected[p]--
	if g.protected[p] == 0 {
		delete(g.protected, p)
	}
	return len(g.protected) > 0
}

func (g *guard) peers() []peer.ID {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []peer.ID
	for p, n := range g.protected {
		if n > 0 {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// TestMembersProtected: a peer that says HAVE is protected from the
// connection manager as soon as it does, not only once a block arrives;
// one that only says DONT_HAVE is not; a member that leaves is let go, and
// the rest when the session closes.
func TestMembersProtected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &guard{}
		s, _ := newTest(t, Config{Protector: g, ProtectTag: "session-1", MaxDontHaves: 2}, a, b, c)
		ws := cids(3)
		s.Want(ws)
		s.Received(a, nil, ws, nil)
		s.Received(b, nil, ws[:1], nil)
		s.Received(c, nil, nil, ws)
		synctest.Wait()
		if got := g.peers(); !slices.Equal(got, []peer.ID{a, b}) {
			t.Fatalf("protected %v after HAVEs from a and b and DONT_HAVEs from c; want [a b]", got)
		}
		s.Received(b, nil, nil, ws[1:]) // two DONT_HAVEs in a row: b leaves
		synctest.Wait()
		if got := g.peers(); !slices.Equal(got, []peer.ID{a}) {
			t.Fatalf("protected %v after b left; want [a]", got)
		}
		s.Close()
		synctest.Wait()
		if got := g.peers(); len(got) != 0 {
			t.Fatalf("protected %v after the session closed; want none", got)
		}
	})
}

// TestSearchAgain: a want still unanswered after its provider search is
// searched for again every ProviderRetry (its content may have been
// announced since), and no more once answered.
func TestSearchAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		searched := 0
		count := func() int { mu.Lock(); defer mu.Unlock(); return searched }
		cfg := Config{
			ProviderDelay: time.Second,
			ProviderRetry: 10 * time.Second,
			FindProviders: func(context.Context, cid.Cid) { mu.Lock(); searched++; mu.Unlock() },
		}
		s, _ := newTest(t, cfg)
		ws := cids(1)
		s.Want(ws)
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if n := count(); n != 1 {
			t.Fatalf("%d searches after the provider delay; want 1", n)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n := count(); n != 1 {
			t.Fatalf("%d searches within the retry interval; want still 1", n)
		}
		time.Sleep(6 * time.Second)
		synctest.Wait()
		if n := count(); n != 2 {
			t.Fatalf("%d searches after the retry interval; want 2", n)
		}
		s.Received(a, ws, nil, nil)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if n := count(); n != 2 {
			t.Fatalf("%d searches after the block came; want no more than 2", n)
		}
	})
}

// TestWantNobodyWaitsFor: a want whose block was delivered before the
// session took it up (Config.Waited says nobody waits for it) is not sent.
func TestWantNobodyWaitsFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ws := cids(2)
		done := ws[0]
		s, r := newTest(t, Config{Waited: func(c cid.Cid) bool { return !c.Equals(done) }}, a)
		s.Want(ws)
		synctest.Wait()
		for _, call := range r.take() {
			if slices.ContainsFunc(call.cids, done.Equals) {
				t.Fatalf("the delivered block was wanted: %+v", call)
			}
		}
		if st := s.Stats(); st.Wants != 1 {
			t.Fatalf("%d wants held, want 1", st.Wants)
		}
	})
}
