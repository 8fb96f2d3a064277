package decision

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/internal/blocktest"
)

// env is one engine under test, inside a synctest bubble.
type env struct {
	e     *Engine
	store *memStore
	net   *fakeSender
}

// run starts an engine with cfg inside a synctest bubble, runs f, and
// closes the engine.
func run(t *testing.T, cfg Config, f func(t *testing.T, v *env)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		v := &env{store: newMemStore(), net: newFakeSender()}
		v.e = newTestEngine(t, v.store, v.net, cfg)
		defer v.e.Close()
		f(t, v)
	})
}

func (v *env) receive(p peer.ID, m *message.Message) {
	v.e.MessageReceived(context.Background(), p, m)
}

// settle waits until every goroutine of the bubble is idle or blocked.
func settle() { synctest.Wait() }

func wanted(v *env, p peer.ID) []string {
	var out []string
	for _, w := range v.e.WantlistFor(p) {
		out = append(out, w.CID.String())
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestWantBlock(t *testing.T) {
	run(t, Config{}, func(t *testing.T, v *env) {
		a := testBlock(t, "a")
		missing := blocktest.CID(t, "missing")
		v.store.put(a)
		v.receive("p", msg(wantBlock(a.CID), wantBlock(missing)))
		settle()

		got := v.net.to("p")
		if len(got) != 1 || len(got[0].Blocks) != 1 || len(got[0].Presences) != 0 {
			t.Fatalf("sent %+v, want one message with block a", got)
		}
		if b := got[0].Blocks[0]; !b.CID.Equals(a.CID) || !bytes.Equal(b.Data, a.Data) {
			t.Fatalf("sent block %v, want %v", b.CID, a.CID)
		}
		if w := wanted(v, "p"); !slices.Equal(w, []string{missing.String()}) {
			t.Errorf("wantlist %v, want only the missing block", w)
		}
		l, ok := v.e.Ledger("p")
		if !ok || l.BlocksSent != 1 || l.BytesSent != uint64(len(a.Data)) || l.WantlistSize != 1 {
			t.Errorf("ledger %+v, %v", l, ok)
		}
		s := v.e.Stats()
		if s.BlocksSent != 1 || s.BytesSent != uint64(len(a.Data)) || s.MessagesSent != 1 || s.Wants != 1 || s.Peers != 1 {
			t.Errorf("stats %+v", s)
		}
	})
}

func TestWantHaveAndDontHave(t *testing.T) {
	run(t, Config{InlineHaveLimit: 1024}, func(t *testing.T, v *env) {
		small := testBlock(t, "small")
		big := blocktest.CID(t, "big")
		v.store.put(small)
		v.store.putSized(big, 1025)
		gone, goneBlock, quiet := blocktest.CID(t, "gone"), blocktest.CID(t, "gone-block"), blocktest.CID(t, "quiet")
		ask := func(e message.Entry) message.Entry { e.SendDontHave = true; return e }
		v.receive("p", msg(
			ask(wantHave(small.CID)),
			ask(wantHave(big)),
			ask(wantHave(gone)),
			ask(wantBlock(goneBlock)),
			wantHave(quiet), // no DONT_HAVE asked for
		))
		settle()

		want := sorted("block "+small.CID.String(), "have "+big.String(),
			"dont-have "+gone.String(), "dont-have "+goneBlock.String())
		if got := sorted(v.net.answers("p")...); !slices.Equal(got, want) {
			t.Fatalf("answers %v, want %v", got, want)
		}
		// Answered wants leave; DONT_HAVE and unanswered ones stay.
		if w, want := wanted(v, "p"), sorted(gone.String(), goneBlock.String(), quiet.String()); !slices.Equal(w, want) {
			t.Errorf("wantlist %v, want %v", w, want)
		}
		s := v.e.Stats()
		if s.HavesSent != 1 || s.DontHavesSent != 2 || s.BlocksSent != 1 {
			t.Errorf("stats %+v", s)
		}
	})
}

func TestInlineHaveDisabled(t *testing.T) {
	run(t, Config{InlineHaveLimit: -1}, func(t *testing.T, v *env) {
		small := testBlock(t, "small")
		v.store.put(small)
		v.receive("p", msg(wantHave(small.CID)))
		settle()
		if got := v.net.answers("p"); !slices.Equal(got, []string{"have " + small.CID.String()}) {
			t.Fatalf("answers %v, want a HAVE", got)
		}
	})
}

func TestBlockAddedLater(t *testing.T) {
	run(t, Config{}, func(t *testing.T, v *env) {
		a, big := testBlock(t, "a"), blocktest.CID(t, "big")
		e := wantBlock(a.CID)
		e.SendDontHave = true
		v.receive("p", msg(e, wantHave(big)))
		v.receive("q", msg(wantHave(big)))
		settle()
		if got := v.net.answers("p"); !slices.Equal(got, []string{"dont-have " + a.CID.String()}) {
			t.Fatalf("first answers %v", got)
		}

		v.e.BlocksAdded([]block.Block{testBlock(t, "nobody wants this")})
		settle()
		if n := len(v.net.messages()); n != 1 {
			t.Fatalf("an unwanted block caused %d messages", n)
		}

		v.store.put(a)
		v.store.putSized(big, 1<<20)
		bigBlock := block.Block{CID: big, Data: make([]byte, 1<<20)}
		v.e.BlocksAdded([]block.Block{a, bigBlock})
		settle()
		want := sorted("dont-have "+a.CID.String(), "block "+a.CID.String(), "have "+big.String())
		if got := sorted(v.net.answers("p")...); !slices.Equal(got, want) {
			t.Fatalf("answers to p %v, want %v", got, want)
		}
		if got := v.net.answers("q"); !slices.Equal(got, []string{"have " + big.String()}) {
			t.Fatalf("answers to q %v", got)
		}
		if s := v.e.Stats(); s.Wants != 0 {
			t.Errorf("%d wants left after all were answered", s.Wants)
		}
	})
}

// The empty block is served, under whatever CID a peer asks for it: Kubo
// asks for it, and the blockstore answers it without holding it.
func TestEmptyBlockServed(t *testing.T) {
	emptyCID := func(p cid.Prefix) cid.Cid {
		c, err := p.Sum(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	raw := emptyCID(cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1})
	v0 := emptyCID(cid.Prefix{Version: 0, Codec: cid.DagProtobuf, MhType: mh.SHA2_256, MhLength: -1})
	blake3 := emptyCID(cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.BLAKE3, MhLength: -1})
	synctest.Test(t, func(t *testing.T) {
		// The real store, which answers the empty block unstored.
		bs, err := blockstore.Open(t.TempDir(), blockstore.Config{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer bs.Close()
		v := &env{net: newFakeSender()}
		v.e = newTestEngine(t, bs, v.net, Config{})
		defer v.e.Close()
		have := wantHave(v0)
		have.SendDontHave = true
		v.receive("p", msg(wantBlock(raw), have, wantBlock(blake3)))
		settle()
		want := sorted("block "+raw.String(), "block "+v0.String(), "block "+blake3.String())
		if got := sorted(v.net.answers("p")...); !slices.Equal(got, want) {
			t.Fatalf("answers %v, want %v", got, want)
		}
		for _, m := range v.net.to("p") {
			for _, b := range m.Blocks {
				if len(b.Data) != 0 {
					t.Fatalf("block %s sent with %d bytes", b.CID, len(b.Data))
				}
			}
		}
		if w := wanted(v, "p"); len(w) != 0 {
			t.Errorf("wantlist %v after the answers, want empty", w)
		}
	})
}

func TestStoreErrorSaysNothing(t *testing.T) {
	run(t, Config{}, func(t *testing.T, v *env) {
		v.store.err = errors.New("disk on fire")
		e := wantBlock(blocktest.CID(t, "a"))
		e.SendDontHave = true
		v.receive("p", msg(e))
		settle()
		if n := len(v.net.messages()); n != 0 {
			t.Fatalf("%d messages sent on a store error", n)
		}
		if w := wanted(v, "p"); len(w) != 1 {
			t.Fatalf("want not kept: %v", w)
		}
	})
}

// A store keyed by multihash may return a block under another CID; the
// peer gets it under the CID it asked for.
func TestBlockSentUnderWantedCID(t *testing.T) {
	run(t, Config{}, func(t *testing.T, v *env) {
		b := testBlock(t, "a")
		v0 := cid.NewCidV0(b.CID.Hash())
		v.store.blocks[v0.KeyString()] = b // found under v0, returned as v1
		v.receive("p", msg(wantBlock(v0)))
		settle()
		got := v.net.to("p")
		if len(got) != 1 || len(got[0].Blocks) != 1 || !got[0].Blocks[0].CID.Equals(v0) {
			t.Fatalf("sent %+v, want the block under its CIDv0", got)
		}
	})
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Workers != DefaultWorkers || c.MaxWantlistEntries != MaxWantlistEntries ||
		c.MaxMessageBytes != DefaultMaxMessageBytes || c.MaxQueuedBytesPerPeer != DefaultMaxQueuedBytes ||
		c.InlineHaveLimit != DefaultInlineHaveLimit || c.Logger == nil {
		t.Fatalf("defaults %+v", c)
	}
	if c := (Config{MaxMessageBytes: 1 << 30}).withDefaults(); c.MaxMessageBytes != message.MaxMessageSize {
		t.Fatalf("MaxMessageBytes %d not capped", c.MaxMessageBytes)
	}
}
