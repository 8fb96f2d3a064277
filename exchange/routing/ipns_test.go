package routing_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	lrouting "github.com/libp2p/go-libp2p/core/routing"
)

// TestIPNSThroughDHT: a record one end of a chain puts on the DHT is found
// from the other end; a record that is not the key's is refused by the
// DHT's IPNS validator before it is sent.
func TestIPNSThroughDHT(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	nodes := bsfsChain(t, 3)
	pub, far := nodes[0], nodes[2]
	sk := pub.host.Peerstore().PrivKey(pub.host.ID())
	name := ipns.NameFromPeer(pub.host.ID())
	if _, err := far.r.GetIPNS(ctx, name); !errors.Is(err, lrouting.ErrNotFound) {
		t.Fatalf("GetIPNS before any put = %v, want ErrNotFound", err)
	}
	c := pub.put(t, 100).CID
	rec, err := ipns.NewRecord(sk, path.FromCid(c), 1, time.Now().Add(time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.r.PutIPNS(ctx, name, rec); err != nil {
		t.Fatal(err)
	}
	recs, err := far.r.GetIPNS(ctx, name)
	if err != nil || len(recs) != 1 {
		t.Fatalf("GetIPNS = %v, %v", recs, err)
	}
	if v, err := recs[0].Value(); err != nil || v.String() != "/ipfs/"+c.String() {
		t.Fatalf("record points at %v (%v), want /ipfs/%s", v, err, c)
	}
	// A record for another node's name, signed with this node's key.
	other := ipns.NameFromPeer(far.host.ID())
	if err := pub.r.PutIPNS(ctx, other, rec); err == nil {
		t.Error("PutIPNS of a record signed by another key succeeded")
	}
}
