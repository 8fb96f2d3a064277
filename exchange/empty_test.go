package exchange_test

import (
	"context"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/testnode"
)

// emptyCIDs are the empty block under each supported hash, and as CIDv0.
func emptyCIDs(t testing.TB) []cid.Cid {
	t.Helper()
	var out []cid.Cid
	for _, p := range []cid.Prefix{
		rawV1, dagPB0,
		{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_512, MhLength: -1},
		{Version: 1, Codec: cid.Raw, MhType: mh.BLAKE2B_MIN + 31, MhLength: -1},
		{Version: 1, Codec: cid.Raw, MhType: mh.BLAKE3, MhLength: -1},
	} {
		c, err := p.Sum(nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// The empty block, under any supported hash, is answered at once with no
// peer holding it, and never wanted on the wire.
func TestEmptyBlockNeverWanted(t *testing.T) {
	n := newNode(t)
	rec := testnode.RecordWants(t, n.host)
	cids := emptyCIDs(t)
	for _, c := range cids {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		b, err := n.ex.GetBlock(ctx, c)
		cancel()
		if err != nil {
			t.Fatalf("GetBlock(%s) with no peer holding it: %v", c, err)
		}
		if !b.CID.Equals(c) || b.Data == nil || len(b.Data) != 0 {
			t.Fatalf("GetBlock(%s) = %s, %q (nil %v)", c, b.CID, b.Data, b.Data == nil)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := n.ex.GetBlocks(ctx, cids)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range st.C() {
		got++
	}
	if got != len(cids) {
		t.Fatalf("GetBlocks delivered %d of the %d empty blocks", got, len(cids))
	}

	// The recorder does hear wants: a block nobody has is asked for.
	absent := put(t, newNode(t), rawV1, []byte("only elsewhere")).CID
	actx, acancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer acancel()
	if _, err := n.ex.GetBlock(actx, absent); err == nil {
		t.Fatal("got a block nobody connected has")
	}
	poll.Until(t, 10*time.Second, "the recorder to hear the want of an absent block", func() bool { return rec.Wanted(absent) })
	for _, c := range cids {
		if rec.Wanted(c) {
			t.Errorf("the empty block %s was wanted on the wire", c)
		}
	}
	if wl := n.ex.Wantlist(); len(wl) != 0 {
		t.Errorf("wantlist %v, want empty", wl)
	}
}
