package decision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"testing/synctest"
	"time"

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

// blockWorker ties up the only worker with a send to peer "blocker" that
// waits until the returned release is called.
func blockWorker(t *testing.T, v *env) (release func()) {
	t.Helper()
	release = v.net.gate("blocker")
	b := testBlock(t, "blocker's block")
	v.store.put(b)
	v.receive("blocker", msg(wantBlock(b.CID)))
	settle()
	return release
}

func TestCancelRemovesQueuedTask(t *testing.T) {
	run(t, Config{Workers: 1}, func(t *testing.T, v *env) {
		release := blockWorker(t, v)
		a, b := testBlock(t, "a"), testBlock(t, "b")
		v.store.put(a)
		v.store.put(b)
		v.receive("p", msg(wantBlock(a.CID), wantBlock(b.CID)))
		if s := v.e.Stats(); s.QueuedTasks != 2 {
			t.Fatalf("%d tasks queued, want 2", s.QueuedTasks)
		}
		v.receive("p", msg(cancel(a.CID)))
		if s := v.e.Stats(); s.QueuedTasks != 1 || s.Wants != 2 { // b, and blocker's want
			t.Fatalf("after cancel: %+v", s)
		}
		release()
		settle()
		if got := v.net.answers("p"); !slices.Equal(got, []string{"block " + b.CID.String()}) {
			t.Fatalf("answers %v, want only b", got)
		}
	})
}

// A want-have upgraded to want-block while its HAVE waits is answered
// with the block alone.
func TestUpgradeQueuedHave(t *testing.T) {
	run(t, Config{Workers: 1}, func(t *testing.T, v *env) {
		release := blockWorker(t, v)
		big := blocktest.CID(t, "big")
		v.store.putSized(big, 4000)
		v.receive("p", msg(wantHave(big)))
		v.receive("p", msg(wantBlock(big)))
		if s := v.e.Stats(); s.QueuedTasks != 1 {
			t.Fatalf("%d tasks queued, want 1", s.QueuedTasks)
		}
		release()
		settle()
		if got := v.net.answers("p"); !slices.Equal(got, []string{"block " + big.String()}) {
			t.Fatalf("answers %v, want the block alone", got)
		}
		if w := wanted(v, "p"); len(w) != 0 {
			t.Fatalf("wantlist %v after the block was sent", w)
		}
	})
}

func TestCancelInSameMessage(t *testing.T) {
	run(t, Config{}, func(t *testing.T, v *env) {
		a, b := testBlock(t, "a"), testBlock(t, "b")
		v.store.put(a)
		v.store.put(b)
		// Entries apply in order: a wanted then cancelled, b cancelled
		// then wanted.
		v.receive("p", msg(wantBlock(a.CID), cancel(a.CID), cancel(b.CID), wantBlock(b.CID)))
		settle()
		if got := v.net.answers("p"); !slices.Equal(got, []string{"block " + b.CID.String()}) {
			t.Fatalf("answers %v, want only b", got)
		}
	})
}

func TestFullReplaces(t *testing.T) {
	run(t, Config{Workers: 1}, func(t *testing.T, v *env) {
		release := blockWorker(t, v)
		a, b, c := testBlock(t, "a"), testBlock(t, "b"), testBlock(t, "c")
		for _, x := range []block.Block{a, b, c} {
			v.store.put(x)
		}
		d := blocktest.CID(t, "d")
		v.receive("p", msg(wantBlock(a.CID), wantBlock(b.CID)))
		full := msg(wantBlock(c.CID), wantBlock(d))
		full.Full = true
		v.receive("p", full)
		if w, want := wanted(v, "p"), sorted(c.CID.String(), d.String()); !slices.Equal(w, want) {
			t.Fatalf("wantlist %v, want %v", w, want)
		}
		release()
		settle()
		if got := v.net.answers("p"); !slices.Equal(got, []string{"block " + c.CID.String()}) {
			t.Fatalf("answers %v, want only c", got)
		}
		// An empty Full message clears the list.
		v.receive("p", &message.Message{Full: true})
		if w := wanted(v, "p"); len(w) != 0 {
			t.Fatalf("wantlist %v after an empty full list", w)
		}
	})
}

func TestWantlistCap(t *testing.T) {
	run(t, Config{}, func(t *testing.T, v *env) {
		const n = 100_000
		m := &message.Message{Wants: make([]message.Entry, n)}
		for i := range m.Wants {
			m.Wants[i] = wantBlock(blocktest.CID(t, fmt.Sprint(i)))
		}
		v.receive("p", m)
		l, _ := v.e.Ledger("p")
		s := v.e.Stats()
		if l.WantlistSize != MaxWantlistEntries || s.WantsIgnored != n-MaxWantlistEntries {
			t.Fatalf("wantlist %d, ignored %d; want %d and %d", l.WantlistSize, s.WantsIgnored, MaxWantlistEntries, n-MaxWantlistEntries)
		}
		// A want already held may change; a new one for a block we lack
		// may not come in.
		held := m.Wants[0]
		held.Priority = 99
		v.receive("p", msg(held, wantBlock(blocktest.CID(t, "one more"))))
		l, _ = v.e.Ledger("p")
		s = v.e.Stats()
		if l.WantlistSize != MaxWantlistEntries || s.WantsIgnored != n-MaxWantlistEntries+1 {
			t.Fatalf("wantlist %d, ignored %d after one more", l.WantlistSize, s.WantsIgnored)
		}
		if top := v.e.WantlistFor("p")[0]; !top.CID.Equals(held.CID) || top.Priority != 99 {
			t.Fatalf("held want not updated: %+v", top)
		}
		// Another peer has its own cap.
		v.receive("q", msg(wantBlock(blocktest.CID(t, "q's"))))
		if l, _ := v.e.Ledger("q"); l.WantlistSize != 1 {
			t.Fatalf("q's wantlist %d", l.WantlistSize)
		}
	})
}

func TestWantlistCapConfig(t *testing.T) {
	run(t, Config{MaxWantlistEntries: 3}, func(t *testing.T, v *env) {
		var ws []message.Entry
		for i := range 5 {
			ws = append(ws, wantBlock(blocktest.CID(t, fmt.Sprint(i))))
		}
		v.receive("p", msg(ws...))
		// Cancelling one makes room for one.
		v.receive("p", msg(cancel(ws[0].CID), ws[3], ws[4]))
		if w, want := wanted(v, "p"), sorted(ws[1].CID.String(), ws[2].CID.String(), ws[3].CID.String()); !slices.Equal(w, want) {
			t.Fatalf("wantlist %v, want %v", w, want)
		}
		if s := v.e.Stats(); s.WantsIgnored != 3 {
			t.Fatalf("ignored %d, want 3", s.WantsIgnored)
		}
	})
}

func TestIgnoredWants(t *testing.T) {
	mustCID := func(code uint64, digest []byte) cid.Cid {
		h, err := mh.Encode(digest, code)
		if err != nil {
			t.Fatal(err)
		}
		return cid.NewCidV1(cid.Raw, h)
	}
	identity := mustCID(mh.IDENTITY, []byte("inline"))
	md5 := mustCID(mh.MD5, make([]byte, 16))
	short := mustCID(mh.SHA2_256, make([]byte, 20))
	long := mustCID(mh.BLAKE2B_MIN+63, make([]byte, 200)) // over block.MaxCIDSize
	badType := wantBlock(blocktest.CID(t, "bad type"))
	badType.WantType = 7

	run(t, Config{}, func(t *testing.T, v *env) {
		v.store.put(testBlock(t, "bad type")) // present, yet not served
		v.receive("p", msg(wantBlock(identity), wantHave(md5), wantBlock(short), wantBlock(long), badType, wantBlock(cid.Undef)))
		settle()
		s := v.e.Stats()
		if s.WantsIgnored != 6 || s.Wants != 0 || s.MessagesSent != 0 {
			t.Fatalf("stats %+v, want 6 ignored and nothing held or sent", s)
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

func TestSendFailureKeepsWants(t *testing.T) {
	run(t, Config{}, func(t *testing.T, v *env) {
		a := testBlock(t, "a")
		v.store.put(a)
		v.net.fail["p"] = errors.New("stream reset")
		v.receive("p", msg(wantBlock(a.CID)))
		settle()
		l, _ := v.e.Ledger("p")
		s := v.e.Stats()
		if s.SendErrors != 1 || s.MessagesSent != 0 || l.BlocksSent != 0 || l.WantlistSize != 1 {
			t.Fatalf("stats %+v ledger %+v", s, l)
		}
		// The peer asks again and the send works this time.
		delete(v.net.fail, "p")
		v.receive("p", msg(wantBlock(a.CID)))
		settle()
		if l, _ := v.e.Ledger("p"); l.BlocksSent != 1 || l.WantlistSize != 0 {
			t.Fatalf("ledger after retry %+v", l)
		}
	})
}

func TestBlockGoneBeforeSend(t *testing.T) {
	run(t, Config{Workers: 1}, func(t *testing.T, v *env) {
		release := blockWorker(t, v)
		a, b := testBlock(t, "a"), testBlock(t, "b")
		v.store.put(a)
		v.store.put(b)
		ea := wantBlock(a.CID)
		ea.SendDontHave = true
		v.receive("p", msg(ea, wantBlock(b.CID)))
		v.store.delete(a.CID)
		v.store.delete(b.CID)
		release()
		settle()
		if got := v.net.answers("p"); !slices.Equal(got, []string{"dont-have " + a.CID.String()}) {
			t.Fatalf("answers %v, want DONT_HAVE for a only", got)
		}
		if w := wanted(v, "p"); len(w) != 2 {
			t.Fatalf("wantlist %v, want both wants kept", w)
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

func TestMessageBudgetAndPriority(t *testing.T) {
	run(t, Config{}, func(t *testing.T, v *env) {
		const n, size = 30, 100 << 10
		var ws []message.Entry
		for i := range n {
			c := blocktest.CID(t, fmt.Sprint(i))
			v.store.putSized(c, size)
			e := wantBlock(c)
			e.Priority = int32(i)
			ws = append(ws, e)
		}
		v.receive("p", msg(ws...))
		settle()
		got := v.net.to("p")
		var order []cid.Cid
		for _, m := range got {
			if sz := m.Size(message.V120); sz > DefaultMaxMessageBytes {
				t.Errorf("message of %d bytes over the %d budget", sz, DefaultMaxMessageBytes)
			}
			for _, b := range m.Blocks {
				order = append(order, b.CID)
			}
		}
		if len(order) != n || len(got) < n*size/DefaultMaxMessageBytes {
			t.Fatalf("%d blocks in %d messages", len(order), len(got))
		}
		for i, c := range order {
			if !c.Equals(ws[n-1-i].CID) {
				t.Fatalf("block %d out of priority order", i)
			}
		}
		// PendingBytes counts what is still queued after each message.
		if first := got[0]; int(first.PendingBytes) != (n-len(first.Blocks))*size {
			t.Errorf("first message PendingBytes %d, want %d", first.PendingBytes, (n-len(first.Blocks))*size)
		}
		if last := got[len(got)-1]; last.PendingBytes != 0 {
			t.Errorf("last message PendingBytes %d", last.PendingBytes)
		}
	})
}

func TestLedgers(t *testing.T) {
	run(t, Config{}, func(t *testing.T, v *env) {
		a, b := testBlock(t, "a"), testBlock(t, "bb")
		v.e.PeerConnected("idle")
		v.e.BlocksReceived("p", []block.Block{a, b})
		lo, hi := wantBlock(blocktest.CID(t, "lo")), wantBlock(blocktest.CID(t, "hi"))
		lo.Priority, hi.Priority = 1, 9
		v.receive("p", msg(lo, hi))
		l, ok := v.e.Ledger("p")
		if !ok || l.BlocksReceived != 2 || l.BytesReceived != 3 || l.WantlistSize != 2 || l.Peer != "p" {
			t.Fatalf("ledger %+v, %v", l, ok)
		}
		if wl := v.e.WantlistFor("p"); len(wl) != 2 || !wl[0].CID.Equals(hi.CID) {
			t.Fatalf("wantlist %+v, want hi first", wl)
		}
		var peers []peer.ID
		for _, l := range v.e.Ledgers() {
			peers = append(peers, l.Peer)
		}
		slices.Sort(peers)
		if !slices.Equal(peers, []peer.ID{"idle", "p"}) {
			t.Fatalf("ledgers of %v", peers)
		}
		v.e.PeerDisconnected("p")
		if _, ok := v.e.Ledger("p"); ok || v.e.WantlistFor("p") != nil {
			t.Fatal("ledger kept after disconnect")
		}
	})
}

// A peer that wants a thousand 1 MiB blocks cannot starve a newcomer that
// wants one: with a single worker, the newcomer is answered after at most
// one more message to the greedy peer.
func TestFairness(t *testing.T) {
	run(t, Config{Workers: 1}, func(t *testing.T, v *env) {
		v.net.delay = 10 * time.Millisecond // each send takes time
		const n = 1000
		ws := make([]message.Entry, n)
		for i := range ws {
			c := blocktest.CID(t, fmt.Sprint("greedy", i))
			v.store.putSized(c, 1<<20)
			ws[i] = wantBlock(c)
			ws[i].Priority = 100 // more urgent than the newcomer's
		}
		v.receive("greedy", msg(ws...))
		settle() // the worker is sending greedy's first message

		small := testBlock(t, "newcomer's")
		v.store.put(small)
		v.receive("newcomer", msg(wantBlock(small.CID)))
		for i := 0; i < 100 && len(v.net.to("newcomer")) == 0; i++ {
			time.Sleep(v.net.delay)
		}
		log := v.net.messages()
		greedy := 0
		for _, s := range log {
			if s.p == "newcomer" {
				break
			}
			greedy++
		}
		if greedy == len(log) {
			t.Fatalf("newcomer not served after %d messages to the greedy peer", greedy)
		}
		if greedy > 2 {
			t.Fatalf("newcomer served after %d messages to the greedy peer, want at most 2", greedy)
		}
		// Block data is read when a message is built, not when queued.
		if gets := v.store.getCount(); gets > len(log)+1 {
			t.Errorf("%d blocks read for %d messages sent", gets, len(log))
		}
		first := log[0].m
		if len(first.Blocks) != 1 || first.PendingBytes != (n-1)<<20 {
			t.Errorf("first greedy message: %d blocks, PendingBytes %d", len(first.Blocks), first.PendingBytes)
		}
	})
}

// A peer whose sends block ties up one worker; the others go on serving
// everyone else, and MessageReceived does not wait.
func TestBlockedSenderDoesNotStall(t *testing.T) {
	run(t, Config{Workers: 2, MaxMessageBytes: 1000}, func(t *testing.T, v *env) {
		release := v.net.gate("stuck")
		var ws []message.Entry
		for i := range 10 {
			b := testBlock(t, fmt.Sprint("stuck's ", i, " ", bytes.Repeat([]byte("x"), 800)))
			v.store.put(b)
			ws = append(ws, wantBlock(b.CID))
		}
		v.receive("stuck", msg(ws...))
		settle()
		others := []peer.ID{"p1", "p2", "p3", "p4", "p5"}
		for _, p := range others {
			b := testBlock(t, string(p))
			v.store.put(b)
			v.receive(p, msg(wantBlock(b.CID)))
		}
		v.receive("stuck", msg(wantHave(blocktest.CID(t, "more"))))
		settle()
		for _, p := range others {
			if len(v.net.to(p)) != 1 {
				t.Fatalf("%s not served while another peer's send blocks", p)
			}
		}
		release()
		settle()
		if got := len(v.net.answers("stuck")); got != 10 {
			t.Fatalf("stuck peer got %d blocks after release, want 10", got)
		}
		if m := v.net.maxInflight["stuck"]; m != 1 {
			t.Fatalf("%d concurrent sends to one peer, want 1", m)
		}
	})
}

// Peers coming and going leave nothing behind.
func TestPeerDisconnectedFreesState(t *testing.T) {
	const peers, wants, present = 1000, MaxWantlistEntries, 128
	cids := make([]cid.Cid, wants)
	for i := range cids {
		cids[i] = blocktest.CID(t, fmt.Sprint(i))
	}
	run(t, Config{Workers: 1}, func(t *testing.T, v *env) {
		for _, c := range cids[:present] {
			v.store.putSized(c, 1000)
		}
		release := blockWorker(t, v) // tasks stay queued
		base := heapAlloc()
		for i := range peers {
			m := &message.Message{Wants: make([]message.Entry, wants)}
			for j, c := range cids {
				m.Wants[j] = wantBlock(c)
			}
			p := peer.ID(fmt.Sprint("peer", i))
			v.e.PeerConnected(p)
			v.receive(p, m)
		}
		s := v.e.Stats()
		if s.Peers != peers+1 || s.Wants != peers*wants+1 || s.QueuedTasks != peers*present {
			t.Fatalf("before disconnect: %+v", s)
		}
		held := heapAlloc() - base
		for i := range peers {
			v.e.PeerDisconnected(peer.ID(fmt.Sprint("peer", i)))
		}
		v.e.PeerDisconnected("blocker") // while a worker serves it
		s = v.e.Stats()
		if s.Peers != 0 || s.Wants != 0 || s.QueuedTasks != 0 {
			t.Fatalf("after disconnect: %+v", s)
		}
		// The memory the wants and tasks took is released.
		kept := heapAlloc() - base
		t.Logf("heap: %d bytes while connected, %d after disconnect", held, kept)
		if kept > held/20 {
			t.Fatalf("%d bytes still held after disconnect", kept)
		}
		release()
		settle()
		v.e.mu.Lock()
		left := len(v.e.queue.peers)
		v.e.mu.Unlock()
		if left != 0 {
			t.Fatalf("task queue keeps %d peers", left)
		}

		// Churn: a peer connects, asks, and leaves, a thousand times.
		for i := range peers {
			p := peer.ID(fmt.Sprint("churn", i))
			v.e.PeerConnected(p)
			v.receive(p, msg(wantBlock(cids[i%wants]), wantHave(cids[(i+1)%wants])))
			v.e.PeerDisconnected(p)
		}
		settle()
		v.e.mu.Lock()
		left, ledgers := len(v.e.queue.peers), len(v.e.ledgers)
		v.e.mu.Unlock()
		if left != 0 || ledgers != 0 {
			t.Fatalf("after churn: %d queued peers, %d ledgers", left, ledgers)
		}
	})
}

// heapAlloc returns the bytes of live heap objects after a collection.
func heapAlloc() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func TestCloseWithBlockedSender(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, net := newMemStore(), newFakeSender()
		e := newTestEngine(t, store, net, Config{})
		net.gate("p") // never released
		a := testBlock(t, "a")
		store.put(a)
		e.MessageReceived(context.Background(), "p", msg(wantBlock(a.CID)))
		settle()
		start := time.Now()
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Close took %v", d)
		}
		if net.cancelled != 1 {
			t.Errorf("%d sends saw their context cancelled, want 1", net.cancelled)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		// After Close the engine ignores its callers.
		e.MessageReceived(context.Background(), "q", msg(wantBlock(a.CID)))
		e.BlocksAdded([]block.Block{a})
		e.PeerConnected("r")
		if s := e.Stats(); s.MessagesSent != 0 || s.Peers != 1 {
			t.Errorf("after close: %+v", s)
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

// However blocks and presences mix, no message exceeds the budget.
func TestMessageBudgetTight(t *testing.T) {
	const budget = 2000
	run(t, Config{MaxMessageBytes: budget, InlineHaveLimit: 100}, func(t *testing.T, v *env) {
		var ws []message.Entry
		for i := range 60 {
			c := blocktest.CID(t, fmt.Sprint(i))
			e := wantBlock(c)
			switch i % 3 {
			case 0:
				v.store.putSized(c, 50+i*29%900) // a block
			case 1:
				v.store.putSized(c, 5000) // a HAVE
				e = wantHave(c)
			case 2:
				e.SendDontHave = true // a DONT_HAVE
			}
			e.Priority = int32(i * 7 % 11)
			ws = append(ws, e)
		}
		v.receive("p", msg(ws...))
		settle()
		items := 0
		for _, m := range v.net.to("p") {
			if sz := m.Size(message.V120); sz > budget {
				t.Errorf("message of %d bytes over the %d budget", sz, budget)
			}
			items += len(m.Blocks) + len(m.Presences)
		}
		if items != 60 {
			t.Fatalf("%d answers, want 60", items)
		}
	})
}
