package decision

import (
	"fmt"
	"runtime"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/internal/blocktest"
)

func TestLedgers(t *testing.T) {
	run(t, Config{}, func(t *testing.T, v *env) {
		a, b := testBlock(t, "a"), testBlock(t, "bb")
		v.e.PeerConnected("idle")
		v.e.BlocksReceived("p", []block.Block{a, b})
		lo, hi := wantBlock(blocktest.CID(t, "lo")), wantBlock(blocktest.CID(t, "hi"))
		lo.Priority, hi.Priority = 1, 9
		v.receive("p", msg(lo, hi))
		l, ok := v.e.Ledger("p")
		if !ok || l.BlocksReceived != 2 || l.BytesReceived != 3 || l.WantlistSize != 2 || l.Peer != "p" {
			t.Fatalf("ledger %+v, %v", l, ok)
		}
		if wl := v.e.WantlistFor("p"); len(wl) != 2 || !wl[0].CID.Equals(hi.CID) {
			t.Fatalf("wantlist %+v, want hi first", wl)
		}
		var peers []peer.ID
		for _, l := range v.e.Ledgers() {
			peers = append(peers, l.Peer)
		}
		slices.Sort(peers)
		if !slices.Equal(peers, []peer.ID{"idle", "p"}) {
			t.Fatalf("ledgers of %v", peers)
		}
		v.e.PeerDisconnected("p")
		if _, ok := v.e.Ledger("p"); ok || v.e.WantlistFor("p") != nil {
			t.Fatal("ledger kept after disconnect")
		}
	})
}

// Peers coming and going leave nothing behind.
func TestPeerDisconnectedFreesState(t *testing.T) {
	const peers, wants, present = 1000, MaxWantlistEntries, 128
	cids := make([]cid.Cid, wants)
	for i := range cids {
		cids[i] = blocktest.CID(t, fmt.Sprint(i))
	}
	run(t, Config{Workers: 1}, func(t *testing.T, v *env) {
		for _, c := range cids[:present] {
			v.store.putSized(c, 1000)
		}
		release := blockWorker(t, v) // tasks stay queued
		base := heapAlloc()
		for i := range peers {
			m := &message.Message{Wants: make([]message.Entry, wants)}
			for j, c := range cids {
				m.Wants[j] = wantBlock(c)
			}
			p := peer.ID(fmt.Sprint("peer", i))
			v.e.PeerConnected(p)
			v.receive(p, m)
		}
		s := v.e.Stats()
		if s.Peers != peers+1 || s.Wants != peers*wants+1 || s.QueuedTasks != peers*present {
			t.Fatalf("before disconnect: %+v", s)
		}
		held := heapAlloc() - base
		for i := range peers {
			v.e.PeerDisconnected(peer.ID(fmt.Sprint("peer", i)))
		}
		v.e.PeerDisconnected("blocker") // while a worker serves it
		s = v.e.Stats()
		if s.Peers != 0 || s.Wants != 0 || s.QueuedTasks != 0 {
			t.Fatalf("after disconnect: %+v", s)
		}
		// The memory the wants and tasks took is released.
		kept := heapAlloc() - base
		t.Logf("heap: %d bytes while connected, %d after disconnect", held, kept)
		if kept > held/20 {
			t.Fatalf("%d bytes still held after disconnect", kept)
		}
		release()
		settle()
		v.e.mu.Lock()
		left := len(v.e.queue.peers)
		v.e.mu.Unlock()
		if left != 0 {
			t.Fatalf("task queue keeps %d peers", left)
		}

		// Churn: a peer connects, asks, and leaves, a thousand times.
		for i := range peers {
			p := peer.ID(fmt.Sprint("churn", i))
			v.e.PeerConnected(p)
			v.receive(p, msg(wantBlock(cids[i%wants]), wantHave(cids[(i+1)%wants])))
			v.e.PeerDisconnected(p)
		}
		settle()
		v.e.mu.Lock()
		left, ledgers := len(v.e.queue.peers), len(v.e.ledgers)
		v.e.mu.Unlock()
		if left != 0 || ledgers != 0 {
			t.Fatalf("after churn: %d queued peers, %d ledgers", left, ledgers)
		}
	})
}

// heapAlloc returns the bytes of live heap objects after a collection.
func heapAlloc() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
