package exchange_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/poll"
)

// countObserver counts the measurements it is given.
type countObserver struct{ n atomic.Int64 }

func (o *countObserver) Observe(float64) { o.n.Add(1) }

// TestCloseEndsUnreadFetch: Close ends a GetBlocks call whose caller
// neither reads its stream nor leaves, with the latency observed: the
// stream is closed once Close returns, saying so, and TestMain's leak
// check finds nothing left of it.
func TestCloseEndsUnreadFetch(t *testing.T) {
	obs := new(countObserver)
	n := newNodeOn(t, exchange.Config{BlockLatency: obs.Observe}, nil)
	have := put(t, n, rawV1, blocktest.RandomBytes(t, 100))
	missing := put(t, newNode(t), rawV1, blocktest.RandomBytes(t, 100)).CID
	st, err := n.ex.GetBlocks(t.Context(), []cid.Cid{have.CID, missing})
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the local block's latency observed", func() bool { return obs.n.Load() == 1 })
	if err := n.ex.Close(); err != nil {
		t.Fatal(err)
	}
	if b, ok := <-st.C(); ok {
		t.Errorf("block %s delivered after Close", b.CID)
	}
	if err := st.Err(); !errors.Is(err, exchange.ErrClosed) {
		t.Errorf("stream ended with %v, want exchange.ErrClosed", err)
	}
}
