package hostile_test

import (
	"context"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	lnet "github.com/libp2p/go-libp2p/core/network"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/hostile"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/session"
	"github.com/bsfs/bsfs/exchange/wantlist"
	"github.com/bsfs/bsfs/exchange/wantmanager"
	"github.com/bsfs/bsfs/internal/blocktest"
)

// TestReconnectMidFetch (case 9, boxo#1163): the only peer that has the
// blocks sends half of them, then drops the connection and reconnects at
// once. The victim sends its wants again on the new connection and the
// fetch completes, well before any time-out or rebroadcast could have
// re-sent them.
func TestReconnectMidFetch(t *testing.T) {
	const (
		blocks = 8
		before = 4 // blocks sent before the bounce
		timers = 30 * time.Second
	)
	v := newVictim(t, exchange.Config{
		Session: session.Config{BlockTimeout: timers, SilenceTimeout: timers, ProviderDelay: timers},
		Wants:   wantmanager.Config{RebroadcastInterval: timers},
	})
	blks := make([]block.Block, blocks)
	byKey := map[string]int{}
	cids := make([]cid.Cid, blocks)
	for i := range blks {
		blks[i] = mustBlock(t, rawPrefix, blocktest.RandomBytes(t, 10_000))
		cids[i] = blks[i].CID
		byKey[blks[i].CID.KeyString()] = i
	}

	type arrival struct {
		conn lnet.Conn
		m    *message.Message
	}
	arrivals := make(chan arrival, 1024)
	p := newPeer(t, hostile.Config{OnMessage: func(s lnet.Stream, m *message.Message) {
		select {
		case arrivals <- arrival{s.Conn(), m}:
		default:
			t.Error("responder fell behind")
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Connect(ctx, v.addrInfo()); err != nil {
		t.Fatal(err)
	}

	fetched := make(chan int, 1)
	go func() {
		st, err := v.ex.GetBlocks(ctx, cids)
		if err != nil {
			t.Error(err)
			fetched <- 0
			return
		}
		n := 0
		for range st.C() {
			n++
		}
		fetched <- n
	}()

	reply := func(m *message.Message) {
		s, err := p.Open(ctx, v.host.ID())
		if err != nil {
			t.Errorf("reply: %v", err)
			return
		}
		if err := hostile.Send(s, m); err != nil {
			t.Errorf("reply: %v", err)
		}
		s.Close()
	}
	// The responder: HAVE for want-have, the block for want-block; before
	// the bounce only for the first blocks, after it for every want that
	// arrives on the new connection.
	var (
		oldConn       lnet.Conn
		sent          = map[int]bool{}
		bounced       bool
		wantsAfter    = map[int]bool{}
		start         = time.Now()
		bounceAt      time.Duration
		answeredAfter int
	)
	for range 10_000 {
		var a arrival
		select {
		case a = <-arrivals:
		case n := <-fetched:
			t.Logf("fetched %d of %d blocks in %v, bounce at %v; wants for %d blocks re-sent on the new connection, %d answered after it",
				n, blocks, time.Since(start).Round(time.Millisecond), bounceAt.Round(time.Millisecond), len(wantsAfter), answeredAfter)
			if n != blocks {
				t.Fatalf("fetched %d of %d blocks", n, blocks)
			}
			if !bounced {
				t.Fatal("finished without the bounce: nothing was tested")
			}
			if len(wantsAfter) < blocks-before {
				t.Errorf("only %d wants re-sent after the bounce", len(wantsAfter))
			}
			return
		case <-ctx.Done():
			t.Fatalf("fetch hung: %d blocks sent before the bounce, bounced %v, %d wants after it; the victim sees the peer %v over %d connections, with %d wants sent to it",
				len(sent), bounced, len(wantsAfter), v.host.Network().Connectedness(p.Host.ID()), len(v.host.Network().ConnsToPeer(p.Host.ID())), len(v.ex.WantlistSentTo(p.Host.ID())))
		}
		if bounced && a.conn == oldConn {
			continue // a leftover of the dropped connection
		}
		out := &message.Message{}
		for _, e := range a.m.Wants {
			i, ok := byKey[e.CID.KeyString()]
			if !ok || e.Cancel {
				continue
			}
			if bounced {
				wantsAfter[i] = true
			} else if i >= before {
				continue
			}
			if e.WantType == wantlist.WantHave {
				out.Presences = append(out.Presences, message.Presence{CID: e.CID, Type: message.Have})
			} else {
				out.Blocks = append(out.Blocks, blks[i])
				sent[i] = true
			}
		}
		if !out.Empty() {
			reply(out)
			if bounced {
				answeredAfter++
			}
		}
		if !bounced && len(sent) == before {
			// Drop the connection and come straight back.
			bounced, oldConn, bounceAt = true, a.conn, time.Since(start)
			if err := p.Host.Network().ClosePeer(v.host.ID()); err != nil {
				t.Fatal(err)
			}
			if err := p.Connect(ctx, v.addrInfo()); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Fatal("responder loop ran out")
}
