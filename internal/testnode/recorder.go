package testnode

import (
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	lnet "github.com/libp2p/go-libp2p/core/network"

	"github.com/bsfs/bsfs/exchange/hostile"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/internal/poll"
)

// WantRecorder is a peer that answers nothing and records the multihashes
// of the wants it hears (cancels left out).
type WantRecorder struct {
	mu    sync.Mutex
	wants map[string]bool
}

// RecordWants connects a recording peer to h and waits until h has it
// among its peers. The peer is closed when the test ends.
func RecordWants(t testing.TB, h host.Host) *WantRecorder {
	t.Helper()
	r := &WantRecorder{wants: make(map[string]bool)}
	p, err := hostile.NewPeer(hostile.Config{OnMessage: func(_ lnet.Stream, m *message.Message) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, w := range m.Wants {
			if !w.Cancel {
				r.wants[string(w.CID.Hash())] = true
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
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
