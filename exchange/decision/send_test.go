package decision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/internal/blocktest"
)

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
