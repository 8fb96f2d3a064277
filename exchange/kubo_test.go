package exchange_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/kubotest"
	"github.com/bsfs/bsfs/internal/poll"
	"github.com/bsfs/bsfs/internal/testnode"
)

// TestKuboInterop exchanges blocks with a real Kubo in both directions over
// each protocol version: the bsfs node speaks only that version, so the
// stream Kubo and bsfs negotiate is that version.
func TestKuboInterop(t *testing.T) {
	kubo := kubotest.Start(t)
	for _, proto := range []protocol.ID{message.Protocol120, message.Protocol110, message.Protocol100} {
		t.Run(string(proto), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			node := newNode(t, proto)
			kubo.Dial(ctx, t, node.host)
			// CIDv1 blocks cannot travel in 1.0.0's blocks field: a 1.0.0
			// peer derives a CIDv0. Use the CIDv0 dag-pb form there.
			cidVersion, rawLeaves, codec := 1, true, "raw"
			if proto == message.Protocol100 {
				cidVersion, rawLeaves, codec = 0, false, "dag-pb"
			}

			t.Run("kubo block get from bsfs", func(t *testing.T) {
				prefix := rawV1
				if codec == "dag-pb" {
					prefix = dagPB0
				}
				b := put(t, node, prefix, blocktest.RandomBytes(t, 50_000))
				got, err := kubo.BlockGet(ctx, b.CID)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, b.Data) {
					t.Fatalf("kubo got %d bytes, want %d", len(got), len(b.Data))
				}
			})

			t.Run("kubo cat of a file only bsfs has", func(t *testing.T) {
				data := blocktest.RandomBytes(t, 1<<20+12345)
				root := moveFileToBsfs(ctx, t, kubo, node, data, cidVersion, rawLeaves)
				got, err := kubo.Cat(ctx, root)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("kubo cat returned %d bytes, want %d", len(got), len(data))
				}
			})

			t.Run("bsfs fetches from kubo", func(t *testing.T) {
				fetchFromKubo(ctx, t, kubo, node, codec == "dag-pb")
			})

			checkStreamsSpeak(t, node, kubo.ID(), proto)
		})
	}
}

// fetchFromKubo has node fetch a block only Kubo has: a one-block CIDv0
// dag-pb file if dagPB, a raw block otherwise.
func fetchFromKubo(ctx context.Context, t *testing.T, kubo *kubotest.Node, node *testNode, dagPB bool) {
	t.Helper()
	data := blocktest.RandomBytes(t, 60_000)
	var c cid.Cid
	var err error
	if dagPB {
		c, err = kubo.Add(ctx, data[:1000], 0, false) // a one-block CIDv0 dag-pb file
		data = nil
	} else {
		c, err = kubo.BlockPut(ctx, data, "raw", "sha2-256")
	}
	if err != nil {
		t.Fatal(err)
	}
	want, err := kubo.BlockGet(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if has, _ := node.bs.Has(ctx, c); has {
		t.Fatal("bsfs already has the block")
	}
	got, err := node.ex.GetBlock(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CID.Equals(c) || !bytes.Equal(got.Data, want) {
		t.Fatalf("bsfs got %s (%d bytes), want %s (%d bytes)", got.CID, len(got.Data), c, len(want))
	}
	if _, err := block.Verified(c, got.Data); err != nil {
		t.Fatal(err)
	}
}

// checkStreamsSpeak checks that every Bitswap stream between n and p,
// either way, speaks proto, and that there is one each way.
func checkStreamsSpeak(t *testing.T, n *testNode, p peer.ID, proto protocol.ID) {
	t.Helper()
	streams := 0
	for _, conn := range n.host.Network().ConnsToPeer(p) {
		for _, s := range conn.GetStreams() {
			if strings.HasPrefix(string(s.Protocol()), "/ipfs/bitswap") {
				streams++
				if s.Protocol() != proto {
					t.Errorf("%s stream speaks %s", s.Stat().Direction, s.Protocol())
				}
			}
		}
	}
	if streams < 2 {
		t.Errorf("%d bitswap streams open with kubo, want one each way", streams)
	}
}

// moveFileToBsfs adds data on Kubo, copies every block of the DAG into the
// bsfs node, then removes the file from Kubo, so only bsfs has it.
func moveFileToBsfs(ctx context.Context, t *testing.T, kubo *kubotest.Node, n *testNode, data []byte, cidVersion int, rawLeaves bool) cid.Cid {
	t.Helper()
	root, err := kubo.Add(ctx, data, cidVersion, rawLeaves)
	if err != nil {
		t.Fatal(err)
	}
	out, err := kubo.Run(ctx, "refs", "-r", "--unique", root.String())
	if err != nil {
		t.Fatal(err)
	}
	cids := []cid.Cid{root}
	for _, line := range strings.Fields(string(out)) {
		c, err := cid.Decode(line)
		if err != nil {
			t.Fatalf("refs: %q: %v", line, err)
		}
		cids = append(cids, c)
	}
	for _, c := range cids {
		raw, err := kubo.BlockGet(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		b, err := block.Verified(c, raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.bs.Put(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kubo.Run(ctx, "pin", "rm", root.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := kubo.Run(ctx, "repo", "gc", "--quiet"); err != nil {
		t.Fatal(err)
	}
	for _, c := range cids {
		if has, err := kubo.HasLocal(ctx, c); err != nil || has {
			t.Fatalf("kubo still has %s after gc (%v)", c, err)
		}
	}
	return root
}

// emptyRaw is what `ipfs add --cid-version=1` makes of an empty file.
const emptyRaw = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"

// TestKuboEmptyBlock: Kubo never sends the empty block, so bsfs must not
// ask for it: bsfs has it at once while connected to a Kubo that holds it,
// without a want on the wire, over each protocol version. A Kubo that
// asks bsfs for it is served, though bsfs stores nothing for it.
func TestKuboEmptyBlock(t *testing.T) {
	kubo, client := kubotest.Start(t), kubotest.Start(t)
	for _, proto := range []protocol.ID{message.Protocol120, message.Protocol110, message.Protocol100} {
		t.Run(string(proto), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			node := newNode(t, proto)
			kubo.Dial(ctx, t, node.host)
			rec := testnode.RecordWants(t, node.host)
			c, err := kubo.Add(ctx, nil, 1, true)
			if err != nil {
				t.Fatal(err)
			}
			if c.String() != emptyRaw {
				t.Fatalf("kubo add of an empty file: %s, want %s", c, emptyRaw)
			}
			for _, c := range append([]cid.Cid{c}, emptyCIDs(t)...) {
				gctx, gcancel := context.WithTimeout(ctx, 5*time.Second)
				b, err := node.ex.GetBlock(gctx, c)
				gcancel()
				if err != nil {
					t.Fatalf("bsfs get of the empty block %s from a connected Kubo: %v", c, err)
				}
				if len(b.Data) != 0 {
					t.Fatalf("bsfs got %d bytes for %s", len(b.Data), c)
				}
			}
			// The recorder hears wants: a block nobody has is wanted of it.
			// (A block Kubo has would not do: Kubo may answer before the
			// want goes out to the recorder, and it is then cancelled
			// unsent.)
			absent, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum(blocktest.RandomBytes(t, 32))
			if err != nil {
				t.Fatal(err)
			}
			actx, acancel := context.WithCancel(ctx)
			asked := make(chan struct{})
			go func() {
				defer close(asked)
				node.ex.GetBlock(actx, absent) // ends with actx
			}()
			poll.Until(t, 10*time.Second, "the recorder to hear a want", func() bool { return rec.Wanted(absent) })
			acancel()
			<-asked
			if rec.Wanted(c) {
				t.Errorf("bsfs wanted the empty block %s on the wire", c)
			}

			// Served to a Kubo client. A 1.0.0 peer names a block it
			// receives by its CIDv0, so ask for that form there.
			ask := c
			if proto == message.Protocol100 {
				ask = cid.NewCidV0(c.Hash())
			}
			if has, err := client.HasLocal(ctx, ask); err != nil || has {
				t.Fatalf("the Kubo client has %s already (%v)", ask, err)
			}
			if has, _ := node.bs.Has(ctx, ask); !has {
				t.Fatalf("bsfs says it lacks %s", ask)
			}
			client.Dial(ctx, t, node.host)
			gctx, gcancel := context.WithTimeout(ctx, 10*time.Second)
			got, err := client.BlockGet(gctx, ask)
			gcancel()
			if err != nil {
				t.Fatalf("Kubo fetching %s from bsfs: %v", ask, err)
			}
			if len(got) != 0 {
				t.Fatalf("Kubo got %d bytes for %s", len(got), ask)
			}
			if s := node.ex.Engine().Stats(); s.BlocksSent == 0 {
				t.Errorf("engine stats %+v: no block sent", s)
			}
			if _, err := client.Run(ctx, "block", "rm", ask.String()); err != nil {
				t.Fatal(err)
			}
		})
	}
}
