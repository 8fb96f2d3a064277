package exchange_test

import (
	"context"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	lnet "github.com/libp2p/go-libp2p/core/network"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/network"
	"github.com/bsfs/bsfs/exchange/session"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/testnode"
)

// newNodeWith is newNode with an exchange configuration.
func newNodeWith(t testing.TB, cfg exchange.Config) *testNode {
	t.Helper()
	return newNodeOn(t, cfg, nil)
}

// seed gives every server the same n blocks and returns their CIDs.
func seed(t testing.TB, servers []*testNode, n, size int) []cid.Cid {
	cids := make([]cid.Cid, 0, n)
	for range n {
		b, err := block.New(rawV1, blocktest.RandomBytes(t, size))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range servers {
			if err := s.bs.Put(context.Background(), b); err != nil {
				t.Fatal(err)
			}
		}
		cids = append(cids, b.CID)
	}
	return cids
}

// fetchWith fetches cids through a session of a fresh client connected to
// every server, and returns the client's stats and its session's.
func fetchWith(t *testing.T, servers []*testNode, cids []cid.Cid, cfg session.Config) (exchange.Stats, session.Stats) {
	t.Helper()
	client := newNodeWith(t, exchange.Config{Session: cfg})
	for _, s := range servers {
		testnode.Connect(t, client.host, s.host)
	}
	poll.Until(t, 10*time.Second, "peers connected", func() bool { return len(client.host.Network().Peers()) == len(servers) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sess := client.ex.NewSession(ctx)
	defer sess.Close()
	st, err := sess.GetBlocks(ctx, cids)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range st.C() {
		got++
	}
	if got != len(cids) {
		t.Fatalf("fetched %d of %d blocks", got, len(cids))
	}
	// Let copies still on the wire arrive, so they are counted.
	waitCopiesCounted(t, client, servers)
	return client.ex.Stats(), sess.Stats()
}

// TestSessionFewerDuplicates fetches the same blocks from three peers that
// all have them, once with a session and once broadcasting want-block to
// everyone: the session must receive fewer duplicates, and pull from more
// than one peer.
func TestSessionFewerDuplicates(t *testing.T) {
	servers := []*testNode{newNode(t), newNode(t), newNode(t)}
	cids := seed(t, servers, 300, 16<<10)

	bst, _ := fetchWith(t, servers, cids, session.Config{BroadcastOnly: true})
	sst, sess := fetchWith(t, servers, cids, session.Config{})
	t.Logf("%d blocks from 3 peers: broadcast %d duplicates (%d bytes), session %d duplicates (%d bytes)",
		len(cids), bst.DupBlksReceived, bst.DupDataReceived, sst.DupBlksReceived, sst.DupDataReceived)
	for _, p := range sess.Peers {
		t.Logf("session peer %s: %d blocks, %d HAVEs, %d DONT_HAVEs, latency %v", p.Peer, p.Blocks, p.Haves, p.DontHaves, p.Latency)
	}
	if sst.DupBlksReceived >= bst.DupBlksReceived {
		t.Fatalf("session received %d duplicates, broadcast %d: want fewer", sst.DupBlksReceived, bst.DupBlksReceived)
	}
	contributors := 0
	for _, p := range sess.Peers {
		if p.Blocks > 0 {
			contributors++
		}
	}
	if contributors < 2 {
		t.Fatalf("blocks came from %d peer(s), want the fetch spread over several", contributors)
	}
}

// TestSessionFallsBack: when the session's peers do not have a block, it is
// found at a peer that connects later.
func TestSessionFallsBack(t *testing.T) {
	client, member, other := newNode(t), newNode(t), newNode(t)
	first := seed(t, []*testNode{member}, 1, 1000)
	late := seed(t, []*testNode{other}, 1, 2000)
	testnode.Connect(t, client.host, member.host)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sess := client.ex.NewSession(ctx)
	defer sess.Close()
	if _, err := sess.GetBlock(ctx, first[0]); err != nil {
		t.Fatal(err)
	}
	cm := client.host.ConnManager()
	poll.Until(t, 10*time.Second, "useful peer protected", func() bool { return cm.IsProtected(member.host.ID(), "") })
	done := make(chan error, 1)
	go func() {
		_, err := sess.GetBlock(ctx, late[0])
		done <- err
	}()
	poll.Until(t, 10*time.Second, "member refuses", func() bool {
		for _, p := range sess.Stats().Peers {
			if p.Peer == member.host.ID() && p.DontHaves > 0 {
				return true
			}
		}
		return false
	})
	testnode.Connect(t, client.host, other.host)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sess.Close()
	if cm.IsProtected(member.host.ID(), "") {
		t.Fatal("peer still protected after the session closed")
	}
}

// TestSessionEndsWithContext: a session whose context ends stops following
// events without a Close.
func TestSessionEndsWithContext(t *testing.T) {
	n := newNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	sess := n.ex.NewSession(ctx)
	if got := n.ex.SessionCount(); got != 1 {
		t.Fatalf("%d sessions, want 1", got)
	}
	cancel()
	poll.Until(t, 10*time.Second, "session forgotten", func() bool { return n.ex.SessionCount() == 0 })
	// An ended session still serves, through a session of the call's own.
	b := put(t, n, rawV1, []byte("after the end"))
	got, err := sess.GetBlock(context.Background(), b.CID)
	if err != nil || string(got.Data) != "after the end" {
		t.Fatalf("GetBlock on an ended session: %q, %v", got.Data, err)
	}
}

// Issue 14: the connection manager trims idle peers down to its low water
// mark, but never a peer an active session fetches from.
func TestSessionPeerSurvivesTrim(t *testing.T) {
	n := testnode.NewOn(t, network.HostConfig{ConnsLow: 1, ConnsHigh: 2, GracePeriod: time.Nanosecond}, exchange.Config{}, nil)
	client := &testNode{host: n.Host, bs: n.Store, ex: n.Ex}
	member := newNode(t)
	idle := []*testNode{newNode(t), newNode(t), newNode(t)}
	cids := seed(t, []*testNode{member}, 2, 1000)
	testnode.Connect(t, client.host, member.host)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sess := client.ex.NewSession(ctx)
	defer sess.Close()
	if _, err := sess.GetBlock(ctx, cids[0]); err != nil {
		t.Fatal(err)
	}
	// The idle peers look busier than the member: more streams open. An
	// unprotected member would be trimmed first.
	for _, p := range idle {
		testnode.Connect(t, client.host, p.host)
		for range 4 {
			st, err := client.host.NewStream(ctx, p.host.ID(), network.AllProtocols()[0])
			if err != nil {
				t.Fatal(err)
			}
			defer st.Reset()
		}
	}
	client.host.ConnManager().TrimOpenConns(ctx)
	net := client.host.Network()
	// The trim leaves as many unprotected peers as the low water mark.
	left := 0
	for _, p := range idle {
		if net.Connectedness(p.host.ID()) == lnet.Connected {
			left++
		}
	}
	if left > 1 {
		t.Errorf("%d of %d idle peers still connected after the trim, want at most 1", left, len(idle))
	}
	if net.Connectedness(member.host.ID()) != lnet.Connected {
		t.Fatal("the session's peer was trimmed")
	}
	// The session goes on fetching from it.
	if _, err := sess.GetBlock(ctx, cids[1]); err != nil {
		t.Fatal(err)
	}
}

// waitCopiesCounted waits until client has counted every block servers
// sent it, copies still on the wire after a fetch included: until no server
// holds a want of client's or an answer to send, and client counts as many
// blocks received as they sent it.
func waitCopiesCounted(t testing.TB, client *testNode, servers []*testNode) {
	t.Helper()
	poll.Until(t, 10*time.Second, "the copies on the wire counted", func() bool {
		var sent uint64
		for _, s := range servers {
			l, _ := s.ex.Engine().Ledger(client.host.ID())
			if l.WantlistSize > 0 || s.ex.Engine().Stats().QueuedTasks > 0 {
				return false
			}
			sent += l.BlocksSent
		}
		st := client.ex.Stats()
		return st.BlocksReceived+st.DupBlksReceived+st.UnwantedBlocks == sent
	})
}
