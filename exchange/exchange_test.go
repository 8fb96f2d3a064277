package exchange_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/network"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/testnode"
)

// testNode is a real node: a libp2p host on loopback, a flatfs blockstore in
// a temporary directory and an exchange.
type testNode struct {
	host host.Host
	bs   *blockstore.Blockstore
	ex   *exchange.Exchange
}

func newNode(t testing.TB, protocols ...protocol.ID) *testNode {
	t.Helper()
	return newNodeOn(t, exchange.Config{Network: network.Config{Protocols: protocols}}, nil)
}

// newNodeOn is a real node on loopback whose exchange is configured by cfg
// and stores through wrap (nil: in its blockstore as is).
func newNodeOn(t testing.TB, cfg exchange.Config, wrap func(bs *blockstore.Blockstore, dir string) exchange.Blockstore) *testNode {
	t.Helper()
	n := testnode.NewWrapped(t, cfg, wrap)
	return &testNode{host: n.Host, bs: n.Store, ex: n.Ex}
}

// put stores data on n under prefix and returns the block.
func put(t *testing.T, n *testNode, prefix cid.Prefix, data []byte) block.Block {
	t.Helper()
	b, err := block.New(prefix, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.bs.Put(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if err := n.ex.NotifyNewBlocks(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	rawV1  = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}
	dagPB0 = cid.Prefix{Version: 0, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}
)

// TestExchangeEachVersion fetches blocks between two bsfs nodes, one of them
// restricted to a single protocol version, in both directions, for CIDv0 and
// CIDv1 blocks.
func TestExchangeEachVersion(t *testing.T) {
	for _, proto := range []protocol.ID{message.Protocol120, message.Protocol110, message.Protocol100} {
		t.Run(string(proto), func(t *testing.T) {
			restricted := newNode(t, proto)
			full := newNode(t)
			testnode.Connect(t, full.host, restricted.host)
			for _, pair := range []struct {
				name     string
				from, to *testNode
			}{{"restricted serves", restricted, full}, {"restricted fetches", full, restricted}} {
				for _, prefix := range []cid.Prefix{rawV1, dagPB0} {
					b := put(t, pair.from, prefix, blocktest.RandomBytes(t, 100_000))
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					got, err := pair.to.ex.GetBlock(ctx, b.CID)
					cancel()
					if err != nil {
						t.Fatalf("%s, CIDv%d: %v", pair.name, prefix.Version, err)
					}
					if !got.CID.Equals(b.CID) || !bytes.Equal(got.Data, b.Data) {
						t.Fatalf("%s: got %s (%d bytes), want %s", pair.name, got.CID, len(got.Data), b.CID)
					}
					if has, _ := pair.to.bs.Has(context.Background(), b.CID); !has {
						t.Fatalf("%s: fetched block not stored", pair.name)
					}
				}
			}
		})
	}
}

// TestGetBlocksMany fetches a thousand blocks in one call and checks each
// arrives exactly once.
func TestGetBlocksMany(t *testing.T) {
	server, client := newNode(t), newNode(t)
	testnode.Connect(t, client.host, server.host)
	const n = 1000
	want := make(map[string][]byte, n)
	cids := make([]cid.Cid, 0, n)
	for i := range n {
		b := put(t, server, rawV1, blocktest.RandomBytes(t, 1024+i))
		want[b.CID.KeyString()] = b.Data
		cids = append(cids, b.CID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := client.ex.GetBlocks(ctx, cids)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for b := range st.C() {
		data, ok := want[b.CID.KeyString()]
		if !ok {
			t.Fatalf("unexpected or repeated block %s", b.CID)
		}
		if !bytes.Equal(data, b.Data) {
			t.Fatalf("block %s: wrong bytes", b.CID)
		}
		delete(want, b.CID.KeyString())
		got++
	}
	if got != n {
		t.Fatalf("got %d blocks, want %d (ctx: %v)", got, n, ctx.Err())
	}
	if s := client.ex.Stats(); s.BlocksReceived != n || s.DupBlksReceived != 0 {
		t.Fatalf("stats: received %d, duplicates %d; want %d, 0", s.BlocksReceived, s.DupBlksReceived, n)
	}
}

// Close ends the GetBlocks streams, saying so, and waits for the
// goroutines serving them: that of a block nobody has, and that of a
// local block its caller does not read.
func TestCloseEndsStreams(t *testing.T) {
	n := newNode(t)
	absent, err := block.New(rawV1, []byte("nobody has this"))
	if err != nil {
		t.Fatal(err)
	}
	local := put(t, n, rawV1, blocktest.RandomBytes(t, 1000))
	waiting, err := n.ex.GetBlocks(t.Context(), []cid.Cid{absent.CID})
	if err != nil {
		t.Fatal(err)
	}
	unread, err := n.ex.GetBlocks(t.Context(), []cid.Cid{local.CID})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.ex.Close(); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*block.Stream{"waiting": waiting, "unread": unread} {
		for b := range st.C() {
			t.Errorf("%s: received %s after Close", name, b.CID)
		}
		if err := st.Err(); !errors.Is(err, exchange.ErrClosed) {
			t.Errorf("%s: stream ended with %v, want ErrClosed", name, err)
		}
	}
	if _, err := n.ex.GetBlocks(t.Context(), []cid.Cid{local.CID}); !errors.Is(err, exchange.ErrClosed) {
		t.Errorf("GetBlocks after Close: %v, want ErrClosed", err)
	}
}

// TestSharedWant: concurrent callers for one CID share a want and all get
// the block; identity CIDs are answered locally.
func TestSharedWantAndIdentity(t *testing.T) {
	server, client := newNode(t), newNode(t)
	b := block.Block{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	data := blocktest.RandomBytes(t, 5000)
	c, _ := rawV1.Sum(data)
	errs := make(chan error, 5)
	for range 5 {
		go func() {
			got, err := client.ex.GetBlock(ctx, c)
			if err == nil && !bytes.Equal(got.Data, data) {
				err = errors.New("wrong bytes")
			}
			errs <- err
		}()
	}
	poll.Until(t, 10*time.Second, "want registered", func() bool { return len(client.ex.Wantlist()) == 1 })
	b = put(t, server, rawV1, data)
	testnode.Connect(t, client.host, server.host)
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	_ = b

	id, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.IDENTITY, MhLength: -1}.Sum([]byte("inline"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := client.ex.GetBlock(ctx, id)
	if err != nil || string(got.Data) != "inline" {
		t.Fatalf("identity CID: %q, %v", got.Data, err)
	}
	if len(client.ex.Wantlist()) != 0 {
		t.Fatalf("wantlist not empty: %v", client.ex.Wantlist())
	}
}

// TestCancelSendsCancel: when the only caller gives up, the want leaves the
// peer's ledger (a CANCEL went over the wire).
func TestCancelSendsCancel(t *testing.T) {
	a, b := newNode(t), newNode(t)
	testnode.Connect(t, a.host, b.host)
	c, _ := rawV1.Sum([]byte("nobody has this"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := a.ex.GetBlock(ctx, c)
		done <- err
	}()
	poll.Until(t, 10*time.Second, "want reaches the peer", func() bool { return wantsAt(b, a.host.ID(), c) })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("GetBlock after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("GetBlock did not return after cancel")
	}
	poll.Until(t, 10*time.Second, "cancel reaches the peer", func() bool { return !wantsAt(b, a.host.ID(), c) })
	if len(a.ex.Wantlist()) != 0 {
		t.Fatalf("wantlist not empty after cancel: %v", a.ex.Wantlist())
	}
}

// TestDisconnectMidWant: a peer that leaves while we want a block does not
// leave the want stuck; a peer that connects later with the block serves it.
func TestDisconnectMidWant(t *testing.T) {
	a, empty, holder := newNode(t), newNode(t), newNode(t)
	testnode.Connect(t, a.host, empty.host)
	b := put(t, holder, rawV1, blocktest.RandomBytes(t, 2000))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := a.ex.GetBlock(ctx, b.CID)
		done <- err
	}()
	poll.Until(t, 10*time.Second, "want reaches the first peer", func() bool { return wantsAt(empty, a.host.ID(), b.CID) })
	if err := empty.host.Network().ClosePeer(a.host.ID()); err != nil {
		t.Fatal(err)
	}
	testnode.Connect(t, a.host, holder.host)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestMismatchedBlockNotStored: a peer sends a block whose bytes do not match
// the CID it claims; it is not stored and the want stays open.
func TestMismatchedBlockNotStored(t *testing.T) {
	a := newNode(t)
	evil, err := network.NewHost(network.HostConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer evil.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := evil.Connect(ctx, peer.AddrInfo{ID: a.host.ID(), Addrs: a.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	real := blocktest.RandomBytes(t, 1000)
	c, _ := rawV1.Sum(real)
	wantCtx, wantCancel := context.WithTimeout(ctx, 3*time.Second)
	defer wantCancel()
	done := make(chan error, 1)
	go func() {
		_, err := a.ex.GetBlock(wantCtx, c)
		done <- err
	}()
	poll.Until(t, 10*time.Second, "want registered", func() bool { return len(a.ex.Wantlist()) == 1 })

	fake := blocktest.RandomBytes(t, 1000)
	s, err := evil.NewStream(ctx, a.host.ID(), message.Protocol120)
	if err != nil {
		t.Fatal(err)
	}
	// The block claims c but carries other bytes: the receiver derives the
	// CID from the bytes, so it cannot satisfy c.
	m := &message.Message{Blocks: []block.Block{{CID: c, Data: fake}}}
	if err := message.WriteTo(s, m, message.V120); err != nil {
		t.Fatal(err)
	}
	s.Close()
	poll.Until(t, 10*time.Second, "message received", func() bool { return a.ex.Stats().UnwantedBlocks == 1 })
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetBlock: %v, want deadline exceeded", err)
	}
	fakeCID, _ := rawV1.Sum(fake)
	for _, c := range []cid.Cid{c, fakeCID} {
		if has, _ := a.bs.Has(context.Background(), c); has {
			t.Fatalf("%s stored", c)
		}
	}
}

// wantsAt reports whether n's ledger for p lists c.
func wantsAt(n *testNode, p peer.ID, c cid.Cid) bool {
	for _, e := range n.ex.Engine().WantlistFor(p) {
		if e.CID.Equals(c) {
			return true
		}
	}
	return false
}

// The shard directory of a block asked of peers is made while the want is
// out, before the block arrives: here, of one nobody has.
func TestWantMakesShardDirectory(t *testing.T) {
	var dir string
	client := newNodeOn(t, exchange.Config{}, func(bs *blockstore.Blockstore, d string) exchange.Blockstore {
		dir = d
		return bs
	})
	server := newNode(t)
	testnode.Connect(t, client.host, server.host)
	blk := blocktest.NewBlock(t, rawV1, blocktest.RandomBytes(t, 1024))
	k := blockstore.Key(blk.CID.Hash())
	shard := filepath.Join(dir, k[len(k)-3:len(k)-1])
	if _, err := os.Stat(shard); !os.IsNotExist(err) {
		t.Fatalf("shard directory before the want: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := client.ex.GetBlock(ctx, blk.CID)
		done <- err
	}()
	poll.Until(t, 10*time.Second, "shard directory made", func() bool {
		st, err := os.Stat(shard)
		return err == nil && st.IsDir()
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("GetBlock of a block nobody has ended with %v, want context.Canceled", err)
	}
}
