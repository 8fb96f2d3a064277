package wantmanager

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/wantlist"
)

// recorder is a Network that records what each peer was sent and can be
// told to fail; it keeps each peer's view of our wantlist as a server would.
type recorder struct {
	mu    sync.Mutex
	sent  map[peer.ID][]*message.Message
	view  map[peer.ID]map[string]bool
	fail  map[peer.ID]bool
	block chan struct{} // when non-nil, sends wait on it
}

func newRecorder() *recorder {
	return &recorder{sent: map[peer.ID][]*message.Message{}, view: map[peer.ID]map[string]bool{}, fail: map[peer.ID]bool{}}
}

func (r *recorder) SendMessage(ctx context.Context, p peer.ID, m *message.Message) error {
	r.mu.Lock()
	blk := r.block
	r.mu.Unlock()
	if blk != nil {
		select {
		case <-blk:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail[p] {
		return errors.New("injected failure")
	}
	r.sent[p] = append(r.sent[p], m)
	if m.Full || r.view[p] == nil {
		if m.Full {
			r.view[p] = map[string]bool{}
		} else if r.view[p] == nil {
			r.view[p] = map[string]bool{}
		}
	}
	for _, e := range m.Wants {
		if e.Cancel {
			delete(r.view[p], e.CID.KeyString())
		} else {
			r.view[p][e.CID.KeyString()] = true
		}
	}
	return nil
}

func (r *recorder) viewOf(p peer.ID) map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]bool{}
	for k := range r.view[p] {
		out[k] = true
	}
	return out
}

func (r *recorder) messages(p peer.ID) []*message.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*message.Message(nil), r.sent[p]...)
}

func testCIDs(n int) []cid.Cid {
	out := make([]cid.Cid, n)
	for i := range out {
		c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum(fmt.Appendf(nil, "block %d", i))
		if err != nil {
			panic(err)
		}
		out[i] = c
	}
	return out
}

func keys(cs []cid.Cid) map[string]bool {
	out := map[string]bool{}
	for _, c := range cs {
		out[c.KeyString()] = true
	}
	return out
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

const peerA, peerB = peer.ID("peer-a"), peer.ID("peer-b")

func TestBroadcastAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newRecorder()
		wm := New(net, Config{})
		defer wm.Close()
		wm.PeerConnected(peerA)
		cs := testCIDs(10)
		wm.Want(cs)
		wm.PeerConnected(peerB) // a late peer gets the whole list
		synctest.Wait()
		for _, p := range []peer.ID{peerA, peerB} {
			if got := net.viewOf(p); !equalSets(got, keys(cs)) {
				t.Fatalf("%s sees %d wants, want %d", p, len(got), len(cs))
			}
		}
		wm.Cancel(cs[:4])
		synctest.Wait()
		for _, p := range []peer.ID{peerA, peerB} {
			if got := net.viewOf(p); !equalSets(got, keys(cs[4:])) {
				t.Fatalf("%s after cancel sees %d wants, want %d", p, len(got), 6)
			}
		}
		if len(wm.Wantlist()) != 6 {
			t.Fatalf("wantlist %d, want 6", len(wm.Wantlist()))
		}
	})
}

func TestScopedWants(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newRecorder()
		wm := New(net, Config{})
		defer wm.Close()
		wm.PeerConnected(peerA)
		wm.PeerConnected(peerB)
		cs := testCIDs(3)
		wm.Want(cs[:1], peerA)
		synctest.Wait()
		if got := net.viewOf(peerB); len(got) != 0 {
			t.Fatalf("peer B got a want scoped to A: %v", got)
		}
		if got := net.viewOf(peerA); !equalSets(got, keys(cs[:1])) {
			t.Fatalf("peer A sees %v", got)
		}
		wm.Want(cs[:1]) // widening to broadcast
		synctest.Wait()
		if got := net.viewOf(peerB); !equalSets(got, keys(cs[:1])) {
			t.Fatalf("after widening, peer B sees %v", got)
		}
	})
}

// TestBatching: changes made while a send is on the wire go out together in
// the next message, without a fixed delay.
func TestBatching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newRecorder()
		net.block = make(chan struct{})
		wm := New(net, Config{})
		defer wm.Close()
		wm.PeerConnected(peerA)
		cs := testCIDs(101)
		wm.Want(cs[:1])
		synctest.Wait() // the first message is now blocked in SendMessage
		for _, c := range cs[1:] {
			wm.Want([]cid.Cid{c})
		}
		close(net.block)
		synctest.Wait()
		msgs := net.messages(peerA)
		if len(msgs) != 2 {
			t.Fatalf("%d messages, want 2 (one, then a batch of 100)", len(msgs))
		}
		if len(msgs[1].Wants) != 100 {
			t.Fatalf("second message has %d wants, want 100", len(msgs[1].Wants))
		}
	})
}

// TestMaxInFlight: no more wants outstanding at a peer than the cap; as wants
// are satisfied the backlog follows.
func TestMaxInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newRecorder()
		wm := New(net, Config{MaxInFlight: 10})
		defer wm.Close()
		wm.PeerConnected(peerA)
		cs := testCIDs(25)
		wm.Want(cs)
		synctest.Wait()
		if got := net.viewOf(peerA); !equalSets(got, keys(cs[:10])) {
			t.Fatalf("peer sees %d wants, want the first 10", len(got))
		}
		wm.Cancel(cs[:10])
		synctest.Wait()
		if got := net.viewOf(peerA); !equalSets(got, keys(cs[10:20])) {
			t.Fatalf("peer sees %d wants, want the next 10", len(got))
		}
	})
}

// TestRebroadcastAndRetry: a failed send is retried with the full list, and
// the list is sent whole every rebroadcast interval.
func TestRebroadcastAndRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newRecorder()
		net.fail[peerA] = true
		wm := New(net, Config{RebroadcastInterval: time.Minute, RetryDelay: time.Second})
		defer wm.Close()
		wm.PeerConnected(peerA)
		cs := testCIDs(5)
		wm.Want(cs)
		synctest.Wait()
		if n := len(net.messages(peerA)); n != 0 {
			t.Fatalf("%d messages recorded while failing", n)
		}
		net.mu.Lock()
		net.fail[peerA] = false
		net.mu.Unlock()
		time.Sleep(2 * time.Second) // fake time: past the retry delay
		synctest.Wait()
		msgs := net.messages(peerA)
		if len(msgs) != 1 || !msgs[0].Full || len(msgs[0].Wants) != 5 {
			t.Fatalf("after retry: %d messages; want one full list of 5", len(msgs))
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		msgs = net.messages(peerA)
		if len(msgs) != 2 || !msgs[1].Full || len(msgs[1].Wants) != 5 {
			t.Fatalf("after the rebroadcast interval: %d messages; want a second full list", len(msgs))
		}
		if s := wm.Stats(); s.SendFailures == 0 || s.Rebroadcasts == 0 {
			t.Fatalf("stats %+v: failures and rebroadcasts not counted", s)
		}
	})
}

func TestDisconnectKeepsWants(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newRecorder()
		wm := New(net, Config{})
		defer wm.Close()
		wm.PeerConnected(peerA)
		cs := testCIDs(3)
		wm.Want(cs)
		synctest.Wait()
		wm.PeerDisconnected(peerA)
		if len(wm.Peers()) != 0 {
			t.Fatal("queue left after disconnect")
		}
		net.mu.Lock()
		delete(net.view, peerA)
		net.mu.Unlock()
		wm.PeerConnected(peerA)
		synctest.Wait()
		if got := net.viewOf(peerA); !equalSets(got, keys(cs)) {
			t.Fatalf("reconnected peer sees %d wants, want 3", len(got))
		}
	})
}

// TestWantHaveThenBlock: a want-have goes only to the peers named, with
// send-dont-have; upgrading to want-block re-sends the entry.
func TestWantHaveThenBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newRecorder()
		wm := New(net, Config{})
		defer wm.Close()
		wm.PeerConnected(peerA)
		wm.PeerConnected(peerB)
		cs := testCIDs(1)
		wm.WantHave(cs, peerA, peerB)
		synctest.Wait()
		for _, p := range []peer.ID{peerA, peerB} {
			msgs := net.messages(p)
			if len(msgs) != 1 || len(msgs[0].Wants) != 1 {
				t.Fatalf("%s: %d messages, want one with one entry", p, len(msgs))
			}
			if e := msgs[0].Wants[0]; e.WantType != wantlist.WantHave || !e.SendDontHave {
				t.Fatalf("%s was sent %+v, want want-have with send-dont-have", p, e)
			}
		}
		wm.Want(cs, peerA)
		wm.WantHave(cs, peerA) // no downgrade
		synctest.Wait()
		msgs := net.messages(peerA)
		if len(msgs) != 2 || msgs[1].Wants[0].WantType != wantlist.WantBlock {
			t.Fatalf("peer A: %d messages; want the entry re-sent as want-block", len(msgs))
		}
		if n := len(net.messages(peerB)); n != 1 {
			t.Fatalf("peer B got %d messages, want 1 (the upgrade was scoped to A)", n)
		}
		wm.Cancel(cs)
		synctest.Wait()
		for _, p := range []peer.ID{peerA, peerB} {
			if v := net.viewOf(p); len(v) != 0 {
				t.Fatalf("%s still sees %d wants after cancel", p, len(v))
			}
		}
	})
}

func TestSentTo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newRecorder()
		wm := New(net, Config{})
		defer wm.Close()
		wm.PeerConnected(peerA)
		cs := testCIDs(3)
		wm.Want(cs[:2])
		wm.WantHave(cs[2:], peerA)
		synctest.Wait()
		got := wm.SentTo(peerA)
		if len(got) != 3 || !got[0].CID.Equals(cs[0]) || got[2].WantType != wantlist.WantHave {
			t.Fatalf("SentTo = %+v; want 3 entries, oldest first, the last a want-have", got)
		}
		if wm.SentTo(peerB) != nil {
			t.Fatal("SentTo of an unknown peer not nil")
		}
	})
}

// TestWantAgain: naming a peer already sent want-block for a CID sends
// nothing (another session asking the same peer for the same block must
// not make it send the block twice); WantAgain sends it again, scoped or
// broadcast.
func TestWantAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newRecorder()
		wm := New(net, Config{})
		defer wm.Close()
		wm.PeerConnected(peerA)
		wm.PeerConnected(peerB)
		cs := testCIDs(2)
		scoped, broadcast := cs[:1], cs[1:]
		wm.Want(scoped, peerA)
		wm.Want(broadcast)
		synctest.Wait()
		sentA := len(net.messages(peerA))
		wm.Want(scoped, peerA)
		wm.Want(broadcast, peerA)
		synctest.Wait()
		if n := len(net.messages(peerA)); n != sentA {
			t.Fatalf("wanting again what peer A was sent: %d more messages, want none", n-sentA)
		}
		for _, c := range cs {
			wm.WantAgain([]cid.Cid{c}, peerA)
			synctest.Wait()
			msgs := net.messages(peerA)
			last := msgs[len(msgs)-1]
			if len(msgs) != sentA+1 || len(last.Wants) != 1 || !last.Wants[0].CID.Equals(c) || last.Wants[0].WantType != wantlist.WantBlock {
				t.Fatalf("WantAgain: %d messages after %d, last %+v; want one with want-block for %s", len(msgs), sentA, last, c)
			}
			sentA++
		}
		if n := len(net.messages(peerB)); n != 1 {
			t.Fatalf("peer B got %d messages, want 1 (the broadcast; WantAgain was scoped to A)", n)
		}
	})
}

// TestUpgradeWithFullWindow: a want-have already sent and then upgraded to
// want-block goes out at once, even while MaxInFlight wants are out and
// more wait: it takes no more room at the peer than it had. Queued behind
// the waiting wants, it waited for room only blocks could free, and a
// fetch of more blocks than the cap got none.
func TestUpgradeWithFullWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := newRecorder()
		wm := New(net, Config{MaxInFlight: 10})
		defer wm.Close()
		wm.PeerConnected(peerA)
		cs := testCIDs(25)
		wm.WantHave(cs, peerA)
		synctest.Wait()
		before := len(net.messages(peerA))
		wm.Want(cs[:3], peerA)
		synctest.Wait()
		// The upgrades may go out in one message or over a few.
		blocks := map[string]bool{}
		for _, m := range net.messages(peerA)[before:] {
			for _, e := range m.Wants {
				if e.WantType == wantlist.WantBlock {
					blocks[e.CID.KeyString()] = true
				}
			}
		}
		if !equalSets(blocks, keys(cs[:3])) {
			t.Fatalf("messages since the upgrade ask want-block for %d CIDs, want the 3 upgraded", len(blocks))
		}
		if got := net.viewOf(peerA); len(got) != 10 {
			t.Fatalf("peer sees %d wants, want 10", len(got))
		}
	})
}
