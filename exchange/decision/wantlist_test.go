package decision

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/internal/blocktest"
)

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
