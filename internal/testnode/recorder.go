package testnode

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	lnet "github.com/libp2p/go-libp2p/core/network"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/exchange/hostile"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/wantlist"
	"github.com/bsfs/bsfs/internal/poll"
)

// WantRecorder is a peer that answers nothing and records the multihashes
// of the wants it hears (cancels left out).
type WantRecorder struct {
	p     *hostile.Peer
	mu    sync.Mutex
	wants map[string]bool
	told  map[string]bool // the presences it hears
	syncs int
}

// RecordWants connects a recording peer to h and waits until h has it
// among its peers. The peer is closed when the test ends.
func RecordWants(t testing.TB, h host.Host) *WantRecorder {
	t.Helper()
	r := &WantRecorder{wants: make(map[string]bool), told: make(map[string]bool)}
	p, err := hostile.NewPeer(hostile.Config{OnMessage: func(_ lnet.Stream, m *message.Message) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, w := range m.Wants {
			if !w.Cancel {
				r.wants[string(w.CID.Hash())] = true
			}
		}
		for _, pr := range m.Presences {
			r.told[string(pr.CID.Hash())] = true
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	t.Cleanup(func() { p.Close() })
	Connect(t, p.Host, h)
	poll.Until(t, 10*time.Second, "the recorder connected", func() bool { return h.Network().Connectedness(p.Host.ID()) == lnet.Connected })
	return r
}

// Wanted reports whether a want for c's multihash reached the recorder.
func (r *WantRecorder) Wanted(c cid.Cid) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.wants[string(c.Hash())]
}

// Sync returns once the recorder has heard everything h sent it before
// Sync was called. A node sends a peer its wants and its answers on one
// stream, in order: Sync asks h for a block nobody has, and waits for the
// DONT_HAVE.
func (r *WantRecorder) Sync(t testing.TB, h host.Host) {
	t.Helper()
	r.mu.Lock()
	r.syncs++
	n := r.syncs
	r.mu.Unlock()
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum(fmt.Appendf(nil, "recorder sync %d", n))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := r.p.Open(ctx, h.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := hostile.Send(s, &message.Message{Wants: []message.Entry{{CID: c, Priority: 1, WantType: wantlist.WantBlock, SendDontHave: true}}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the recorder's sync answered", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.told[string(c.Hash())]
	})
}
