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
	const timers = 30 * time.Second
	v := newVictim(t, exchange.Config{
		Session: session.Config{BlockTimeout: timers, SilenceTimeout: timers, ProviderDelay: timers},
		Wants:   wantmanager.Config{RebroadcastInterval: timers},
	})
	r := newBouncer(t)
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
	fetched := fetchCount(t, ctx, v, r.cids)
	r.start = time.Now()

	// The responder: HAVE for want-have, the block for want-block; before
	// the bounce only for the first blocks, after it for every want that
	// arrives on the new connection.
	for range 10_000 {
		var a arrival
		select {
		case a = <-arrivals:
		case n := <-fetched:
			r.check(t, n)
			return
		case <-ctx.Done():
			t.Fatalf("fetch hung: %d blocks sent before the bounce, bounced %v, %d wants after it; the victim sees the peer %v over %d connections, with %d wants sent to it",
				len(r.sent), r.bounced, len(r.wantsAfter), v.host.Network().Connectedness(p.Host.ID()), len(v.host.Network().ConnsToPeer(p.Host.ID())), len(v.ex.WantlistSentTo(p.Host.ID())))
		}
		if r.bounced && a.conn == r.oldConn {
			continue // a leftover of the dropped connection
		}
		if out := r.answer(a.m); !out.Empty() {
			reply(t, ctx, p, v, out)
			if r.bounced {
				r.answeredAfter++
			}
		}
		if !r.bounced && len(r.sent) == bounceBefore {
			// Drop the connection and come straight back.
			r.bounced, r.oldConn, r.bounceAt = true, a.conn, time.Since(r.start)
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

// The blocks TestReconnectMidFetch fetches, and how many of them are sent
// before the bounce.
const (
	bounceBlocks = 8
	bounceBefore = 4
)

// arrival is a message the hostile peer received and the connection it
// came on.
type arrival struct {
	conn lnet.Conn
	m    *message.Message
}

// bouncer is the responder's state in TestReconnectMidFetch: the blocks
// it holds, which it sent, and which wants came after the bounce.
type bouncer struct {
	blks          []block.Block
	cids          []cid.Cid
	byKey         map[string]int
	oldConn       lnet.Conn
	sent          map[int]bool
	bounced       bool
	wantsAfter    map[int]bool
	start         time.Time
	bounceAt      time.Duration
	answeredAfter int
}

// newBouncer makes the blocks to fetch.
func newBouncer(t *testing.T) *bouncer {
	r := &bouncer{
		blks:       make([]block.Block, bounceBlocks),
		cids:       make([]cid.Cid, bounceBlocks),
		byKey:      map[string]int{},
		sent:       map[int]bool{},
		wantsAfter: map[int]bool{},
	}
	for i := range r.blks {
		r.blks[i] = mustBlock(t, rawPrefix, blocktest.RandomBytes(t, 10_000))
		r.cids[i] = r.blks[i].CID
		r.byKey[r.blks[i].CID.KeyString()] = i
	}
	return r
}

// answer returns the reply to m's wants: before the bounce only for the
// first blocks, after it for every want.
func (r *bouncer) answer(m *message.Message) *message.Message {
	out := &message.Message{}
	for _, e := range m.Wants {
		i, ok := r.byKey[e.CID.KeyString()]
		if !ok || e.Cancel {
			continue
		}
		if r.bounced {
			r.wantsAfter[i] = true
		} else if i >= bounceBefore {
			continue
		}
		if e.WantType == wantlist.WantHave {
			out.Presences = append(out.Presences, message.Presence{CID: e.CID, Type: message.Have})
		} else {
			out.Blocks = append(out.Blocks, r.blks[i])
			r.sent[i] = true
		}
	}
	return out
}

// check checks the fetch of n blocks completed through the bounce.
func (r *bouncer) check(t *testing.T, n int) {
	t.Helper()
	t.Logf("fetched %d of %d blocks in %v, bounce at %v; wants for %d blocks re-sent on the new connection, %d answered after it",
		n, bounceBlocks, time.Since(r.start).Round(time.Millisecond), r.bounceAt.Round(time.Millisecond), len(r.wantsAfter), r.answeredAfter)
	if n != bounceBlocks {
		t.Fatalf("fetched %d of %d blocks", n, bounceBlocks)
	}
	if !r.bounced {
		t.Fatal("finished without the bounce: nothing was tested")
	}
	if len(r.wantsAfter) < bounceBlocks-bounceBefore {
		t.Errorf("only %d wants re-sent after the bounce", len(r.wantsAfter))
	}
}

// fetchCount fetches cids through v in the background and sends how many
// blocks arrived.
func fetchCount(t *testing.T, ctx context.Context, v *victim, cids []cid.Cid) <-chan int {
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
	return fetched
}

// reply sends m from p to v on a new stream.
func reply(t *testing.T, ctx context.Context, p *hostile.Peer, v *victim, m *message.Message) {
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
