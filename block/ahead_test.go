package block_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
)

// GetAhead gives the results in the order asked, with at most n calls at
// once, and stops when told, after the calls it started have returned.
func TestGetAhead(t *testing.T) {
	var cids []cid.Cid
	for i := range 20 {
		b, err := block.New(cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}, []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		cids = append(cids, b.CID)
	}
	for _, n := range []int{1, 4} {
		var running, most, calls atomic.Int32
		get := func(c cid.Cid) (block.Block, error) {
			calls.Add(1)
			r := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); r > m && !most.CompareAndSwap(m, r); m = most.Load() {
			}
			time.Sleep(time.Millisecond)
			return block.Block{CID: c}, nil
		}
		var got []cid.Cid
		block.GetAhead(cids, n, get, func(c cid.Cid, b block.Block, err error) bool {
			if err != nil || !b.CID.Equals(c) {
				t.Errorf("n=%d: %s gave %s, %v", n, c, b.CID, err)
			}
			got = append(got, c)
			return len(got) < 10
		})
		if len(got) != 10 {
			t.Fatalf("n=%d: %d results after stopping at 10", n, len(got))
		}
		for i, c := range got {
			if !c.Equals(cids[i]) {
				t.Errorf("n=%d: result %d is %s, want %s", n, i, c, cids[i])
			}
		}
		if m := most.Load(); m > int32(n) {
			t.Errorf("n=%d: %d calls at once", n, m)
		}
		if r := running.Load(); r != 0 {
			t.Errorf("n=%d: %d calls still running after GetAhead returned", n, r)
		}
		if c := calls.Load(); c > int32(10+n-1) {
			t.Errorf("n=%d: %d calls for 10 results", n, c)
		}
	}
}
