package hostile_test

import (
	"context"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/hostile"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/poll"
)

// TestLyingBlocks (case 5): while the victim wants a block, the peer sends
// it bytes that do not hash to that CID, blocks nobody asked for (1.1.0
// and 1.0.0 encodings) and a block over 2 MiB. None is stored, the wanted
// block is still awaited, the received ones are counted as unwanted and in
// the peer's ledger, and the oversized one resets its stream.
func TestLyingBlocks(t *testing.T) {
	v := newVictim(t, exchange.Config{})
	p, in := connectPeer(t, v)

	wanted, err := block.New(rawPrefix, blocktest.RandomBytes(t, 4000))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		b, err := v.ex.GetBlock(ctx, wanted.CID)
		if err == nil && string(b.Data) != string(wanted.Data) {
			t.Errorf("got other bytes for %s", wanted.CID)
		}
		got <- err
	}()
	in.wait(t, 10*time.Second, "want for the block", func(msgs []*message.Message) bool {
		for _, m := range msgs {
			for _, e := range m.Wants {
				if e.CID.Equals(wanted.CID) && !e.Cancel {
					return true
				}
			}
		}
		return false
	})

	prefix := wanted.CID.Prefix().Bytes()
	liar := blocktest.RandomBytes(t, 4000)
	unasked := blocktest.RandomBytes(t, 3000)
	unaskedV0 := blocktest.RandomBytes(t, 2000)
	received := [][]byte{liar, unasked, unaskedV0}
	before := v.ex.Stats()

	// Over 2 MiB: the decoder refuses the message, the stream is reset.
	huge := open(t, p, v.host.ID())
	write(t, huge, hostile.Frame(hostile.Payload(prefix, make([]byte, block.MaxSize+1))))
	awaitReset(t, huge, 10*time.Second)

	s := open(t, p, v.host.ID())
	defer s.Close()
	write(t, s, hostile.Frame(hostile.Payload(prefix, liar)))
	write(t, s, hostile.Frame(hostile.Payload(prefix, unasked)))
	write(t, s, hostile.Frame(hostile.RawBlock(unaskedV0)))
	// Once the lies are counted, GetBlock still waits.
	poll.Until(t, 10*time.Second, "the blocks sent counted unwanted", func() bool {
		return v.ex.Stats().UnwantedBlocks-before.UnwantedBlocks == uint64(len(received))
	})
	select {
	case err := <-got:
		t.Fatalf("GetBlock returned (%v) before the right bytes were sent", err)
	default:
	}
	// The right bytes, last on the same stream: once they are delivered,
	// the lies before them have been handled.
	write(t, s, hostile.Frame(hostile.Payload(prefix, wanted.Data)))
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wanted block never arrived")
	}

	checkLiesDropped(t, v, p.Host.ID(), wanted, received, before)
}

// checkLiesDropped checks that of the blocks received, only wanted was
// kept, and that all were counted: as unwanted, and in the peer's ledger.
func checkLiesDropped(t *testing.T, v *victim, p peer.ID, wanted block.Block, received [][]byte, before exchange.Stats) {
	t.Helper()
	after := v.ex.Stats()
	t.Logf("unwanted blocks %d -> %d, invalid %d -> %d, blocks received %d -> %d",
		before.UnwantedBlocks, after.UnwantedBlocks, before.InvalidBlocks, after.InvalidBlocks, before.BlocksReceived, after.BlocksReceived)
	if n := after.UnwantedBlocks - before.UnwantedBlocks; n != uint64(len(received)) {
		t.Errorf("%d blocks counted unwanted, want %d", n, len(received))
	}
	if n := after.BlocksReceived - before.BlocksReceived; n != 1 {
		t.Errorf("%d blocks counted received, want 1", n)
	}
	for i, data := range received {
		for _, pre := range []block.Block{mustBlock(t, wanted.CID.Prefix(), data), mustBlock(t, v0Prefix, data)} {
			if v.has(t, pre.CID) {
				t.Errorf("block %d stored as %s", i, pre.CID)
			}
		}
	}
	l, ok := v.ex.Engine().Ledger(p)
	if !ok {
		t.Fatal("no ledger for the peer")
	}
	wantBytes := uint64(len(wanted.Data))
	for _, d := range received {
		wantBytes += uint64(len(d))
	}
	t.Logf("ledger of the peer: %d blocks, %d bytes received", l.BlocksReceived, l.BytesReceived)
	if l.BlocksReceived != uint64(len(received)+1) || l.BytesReceived != wantBytes {
		t.Errorf("ledger counts %d blocks, %d bytes; want %d, %d", l.BlocksReceived, l.BytesReceived, len(received)+1, wantBytes)
	}
}

var v0Prefix = cid.Prefix{Version: 0, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1}

func mustBlock(t *testing.T, prefix cid.Prefix, data []byte) block.Block {
	t.Helper()
	b, err := block.New(prefix, data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
