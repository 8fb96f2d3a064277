package hostile_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/decision"
	"github.com/bsfs/bsfs/exchange/hostile"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/wantlist"
	"github.com/bsfs/bsfs/internal/poll"
)

// TestHugeWantlist (case 3, GHSA-qvqg-6rp8-4p9h): a wantlist of 100,000
// entries, in messages under the 4 MiB limit, sent 100 times. The victim
// holds the first decision.MaxWantlistEntries wants, counts every other one
// as ignored, queues nothing, and its heap is as large afterwards as before.
func TestHugeWantlist(t *testing.T) {
	const (
		entries  = 100_000
		perFrame = 25_000
		rounds   = 100
	)
	v := newVictim(t, exchange.Config{})
	p, _ := connectPeer(t, v)

	var frames [][]byte
	for start := 0; start < entries; start += perFrame {
		es := make([][]byte, 0, perFrame)
		for i := start; i < start+perFrame; i++ {
			es = append(es, hostile.Entry(missingCID("huge", i).Bytes(), int32(entries-i), wantlist.WantHave, false))
		}
		f := hostile.Frame(hostile.Wantlist(false, es...))
		if len(f) > message.MaxMessageSize {
			t.Fatalf("frame of %d bytes", len(f))
		}
		frames = append(frames, f)
	}
	all := bytes.Join(frames, nil)
	frames = nil

	s := open(t, p, v.host.ID())
	defer s.Close()
	// One round first, so the baseline includes what one wantlist costs.
	write(t, s, all)
	poll.Until(t, 20*time.Second, "first round processed", func() bool {
		return v.ex.Engine().Stats().WantsIgnored == entries-decision.MaxWantlistEntries
	})
	before := heapInUse()
	start := time.Now()
	for range rounds - 1 {
		write(t, s, all)
	}
	want := uint64(rounds * (entries - decision.MaxWantlistEntries)) // held wants are renewed, not ignored
	poll.Until(t, 60*time.Second, "every round processed", func() bool {
		return v.ex.Engine().Stats().WantsIgnored >= want
	})
	elapsed := time.Since(start)
	after := heapInUse()
	st := v.ex.Engine().Stats()
	t.Logf("%d rounds of %d entries (%d MiB) in %v; heap before %d KiB, after %d KiB; wants held %d, ignored %d, queued tasks %d",
		rounds-1, entries, (rounds-1)*len(all)/mib, elapsed.Round(time.Millisecond), before>>10, after>>10, st.Wants, st.WantsIgnored, st.QueuedTasks)
	if st.WantsIgnored != want {
		t.Errorf("ignored %d wants, want %d", st.WantsIgnored, want)
	}
	if n := len(v.ex.Engine().WantlistFor(p.Host.ID())); n != decision.MaxWantlistEntries {
		t.Errorf("victim holds %d wants of the peer, want %d", n, decision.MaxWantlistEntries)
	}
	if st.QueuedTasks != 0 {
		t.Errorf("%d tasks queued for wants of missing blocks without send-dont-have", st.QueuedTasks)
	}
	if after > before+8*mib && !raceEnabled {
		t.Errorf("heap grew from %d KiB to %d KiB", before>>10, after>>10)
	}
}

// TestUnusableCIDs (case 4): wants for CIDs over 168 bytes, with an unknown
// multihash code, an identity CID, zero-length digests or an unknown want
// type are ignored (no answer, not held) and each is counted; the stream
// stays open and the valid want in the same message is answered.
func TestUnusableCIDs(t *testing.T) {
	v := newVictim(t, exchange.Config{})
	p, in := connectPeer(t, v)

	mhBytes := func(code, length uint64, digest []byte) []byte {
		b := binary.AppendUvarint(nil, code)
		b = binary.AppendUvarint(b, length)
		return append(b, digest...)
	}
	cidBytes := func(hash []byte) []byte {
		return append([]byte{0x01, 0x55}, hash...)
	}
	identity, err := mh.Sum([]byte("inline data"), mh.IDENTITY, -1)
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		cid  []byte
		typ  wantlist.WantType
	}{
		{"CID of 206 bytes", cidBytes(mhBytes(mh.SHA2_256, 200, make([]byte, 200))), wantlist.WantBlock},
		{"unknown multihash code", cidBytes(mhBytes(0x300001, 32, make([]byte, 32))), wantlist.WantBlock},
		{"identity CID", cidBytes(identity), wantlist.WantBlock},
		{"zero-length sha2-256 digest", cidBytes(mhBytes(mh.SHA2_256, 0, nil)), wantlist.WantBlock},
		{"zero-length blake3 digest", cidBytes(mhBytes(mh.BLAKE3, 0, nil)), wantlist.WantHave},
		{"short sha2-256 digest", cidBytes(mhBytes(mh.SHA2_256, 4, []byte{1, 2, 3, 4})), wantlist.WantHave},
		{"unknown want type", missingCID("type", 0).Bytes(), 7},
	}
	valid := missingCID("valid", 0)
	var es [][]byte
	for _, b := range bad {
		if _, err := cid.Cast(b.cid); err != nil {
			t.Fatalf("%s: not a parseable CID: %v", b.name, err)
		}
		es = append(es, hostile.Entry(b.cid, 5, b.typ, true))
	}
	es = append(es, hostile.Entry(valid.Bytes(), 1, wantlist.WantBlock, true))

	before := v.ex.Engine().Stats().WantsIgnored
	s := open(t, p, v.host.ID())
	defer s.Close()
	write(t, s, hostile.Frame(hostile.Wantlist(false, es...)))
	in.wait(t, 10*time.Second, "DONT_HAVE for the valid want", func(msgs []*message.Message) bool {
		for _, m := range msgs {
			for _, pr := range m.Presences {
				if pr.CID.Equals(valid) && pr.Type == message.DontHave {
					return true
				}
			}
		}
		return false
	})
	ignored := v.ex.Engine().Stats().WantsIgnored - before
	t.Logf("%d unusable wants, %d counted as ignored", len(bad), ignored)
	if ignored != uint64(len(bad)) {
		t.Errorf("counted %d ignored wants, want %d", ignored, len(bad))
	}
	if got := v.ex.Engine().WantlistFor(p.Host.ID()); len(got) != 1 || !got[0].CID.Equals(valid) {
		t.Errorf("victim holds %v, want only %s", got, valid)
	}
	for _, pr := range in.presences() {
		if !pr.CID.Equals(valid) {
			t.Errorf("answered an unusable want: %s", pr.CID)
		}
	}
	// The stream was not reset: it still carries a want, answered.
	blk := v.put(t, 100)[0]
	write(t, s, hostile.Frame(wantBlock(blk.CID)))
	in.waitBlock(t, blk.CID, 10*time.Second)
}

// TestManyPeersComeAndGo (case 8): 1,000 peers, each with an identity of
// its own, connect, send 1,024 wants and disconnect, 50 at a time. While a
// batch is connected the victim holds all its wants; once all are gone the
// victim holds no ledger and no want, and its heap is back at its baseline
// (give or take what libp2p keeps of departed peers for a minute).
func TestManyPeersComeAndGo(t *testing.T) {
	const (
		peers = 1000
		batch = 50
		wants = 1024
	)
	v := newVictim(t, exchange.Config{})
	var es [][]byte
	for i := range wants {
		es = append(es, hostile.Entry(missingCID("many", i).Bytes(), 1, wantlist.WantHave, false))
	}
	frame := hostile.Frame(hostile.Wantlist(true, es...))

	// Warm up with one batch so the baseline includes lazily built state
	// (connection pools, buffers) that is not per peer.
	runBatch(t, v, frame, batch, wants)
	before := heapInUse()
	start := time.Now()
	maxHeld := 0
	var peak uint64
	for done := batch; done < peers; done += batch {
		maxHeld = max(maxHeld, runBatch(t, v, frame, batch, wants))
		if done == peers/2 {
			peak = heapInUse()
		}
	}
	after := heapInUse()
	st := v.ex.Engine().Stats()
	t.Logf("%d peers x %d wants in %v: at most %d wants held at once; heap baseline %d KiB, midway %d KiB, after %d KiB; ledgers %d, wants %d",
		peers-batch, wants, time.Since(start).Round(time.Millisecond), maxHeld, before>>10, peak>>10, after>>10, st.Peers, st.Wants)
	// libp2p keeps a few KiB per departed peer (peerstore entries, resource
	// manager scopes) until its own collectors run a minute later; a leak
	// of the wants alone would be over 50 KiB a peer.
	if st.Peers != 0 || st.Wants != 0 {
		t.Errorf("after the peers left: %d ledgers and %d wants remain", st.Peers, st.Wants)
	}
	if after > before+8*mib && !raceEnabled {
		t.Errorf("heap grew from %d KiB to %d KiB", before>>10, after>>10)
	}
}

// runBatch connects n peers to v, each sending frame, a wantlist of
// wants wants; waits until v holds them all; disconnects the peers and
// waits until v holds nothing of them. It returns how many wants v held.
func runBatch(t *testing.T, v *victim, frame []byte, n, wants int) (held int) {
	ps := make([]*hostile.Peer, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	// The batch is connected together, but its handshakes are made a
	// few at a time: fifty at once could outlast libp2p's 5 s bound
	// on a local dial on a loaded machine.
	handshakes := make(chan struct{}, 8)
	for i := range ps {
		wg.Go(func() {
			handshakes <- struct{}{}
			defer func() { <-handshakes }()
			p, err := hostile.NewPeer(hostile.Config{})
			if err != nil {
				errs <- err
				return
			}
			ps[i] = p
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// Over TCP: each departure must reach the victim at once.
			if err := p.Connect(ctx, v.tcpAddrInfo()); err != nil {
				errs <- err
				return
			}
			s, err := p.Open(ctx, v.host.ID())
			if err != nil {
				errs <- err
				return
			}
			_ = s.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := s.Write(frame); err != nil {
				errs <- err
				return
			}
			_ = s.CloseWrite()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "victim holds the batch's wants", func() bool {
		return v.ex.Engine().Stats().Wants >= n*wants
	})
	held = v.ex.Engine().Stats().Wants
	for _, p := range ps {
		p.Close()
	}
	poll.UntilNil(t, 30*time.Second, func() error {
		st, conns := v.ex.Engine().Stats(), len(v.host.Network().Peers())
		if st.Peers == 0 && st.Wants == 0 && conns == 0 {
			return nil
		}
		return fmt.Errorf("30s after the batch left the victim holds %d ledgers, %d wants and %d connections", st.Peers, st.Wants, conns)
	})
	return held
}

// TestFullWantlistServesHeldBlocks (issue 13): a peer fills its wantlist
// with wants for blocks the victim lacks, and sends more of them; then it
// wants blocks the victim has. Each of those is answered within a second,
// taking the place of the least urgent want the victim cannot serve; wants
// the victim cannot serve never take a place; the victim never holds more
// than decision.MaxWantlistEntries wants of the peer.
func TestFullWantlistServesHeldBlocks(t *testing.T) {
	const (
		limit = decision.MaxWantlistEntries
		extra = 500
	)
	v := newVictim(t, exchange.Config{})
	p, in := connectPeer(t, v)
	s := open(t, p, v.host.ID())
	defer s.Close()
	maxHeld := watchWantlist(t, v, p.Host.ID())

	// Priorities fall as a client's do: its first want is its most urgent.
	missing := make([]cid.Cid, limit+extra)
	var es [][]byte
	for i := range missing {
		missing[i] = missingCID("full", i)
		es = append(es, hostile.Entry(missing[i].Bytes(), int32(len(missing)-i), wantlist.WantHave, true))
	}
	write(t, s, hostile.Frame(hostile.Wantlist(false, es...)))
	in.wait(t, 20*time.Second, "DONT_HAVE for every held want", func([]*message.Message) bool { return dontHaves(in) >= limit })
	if got := heldWants(v, p.Host.ID()); !sameCIDs(got, missing[:limit]) {
		t.Fatalf("victim holds %d wants, not the first %d", len(got), limit)
	}

	held := v.put(t, 1000, 2000, 3000, 4000)
	// A want-block less urgent than every want held.
	write(t, s, hostile.Frame(hostile.Wantlist(false, hostile.Entry(held[0].CID.Bytes(), 0, wantlist.WantBlock, true))))
	in.waitBlock(t, held[0].CID, time.Second)

	// New wants the victim cannot serve, more urgent than any held, then
	// wants it can serve, in one message. The first of the new wants takes
	// the place the block sent left; the others find none.
	es = es[:0]
	urgent := make([]cid.Cid, 100)
	for i := range urgent {
		urgent[i] = missingCID("urgent", i)
		es = append(es, hostile.Entry(urgent[i].Bytes(), 10_000, wantlist.WantHave, true))
	}
	for _, b := range held[1:3] {
		es = append(es, hostile.Entry(b.CID.Bytes(), 0, wantlist.WantBlock, true))
	}
	es = append(es, hostile.Entry(held[3].CID.Bytes(), 0, wantlist.WantHave, true)) // over the inline limit: a HAVE
	write(t, s, hostile.Frame(hostile.Wantlist(false, es...)))
	in.waitBlock(t, held[1].CID, time.Second)
	in.waitBlock(t, held[2].CID, time.Second)
	in.wait(t, time.Second, "HAVE for "+held[3].CID.String(), func([]*message.Message) bool {
		for _, pr := range in.presences() {
			if pr.Type == message.Have && pr.CID.Equals(held[3].CID) {
				return true
			}
		}
		return false
	})

	// Answered wants leave the list once sent. Four wants gave way: the
	// four least urgent of the first.
	poll.Until(t, 10*time.Second, "answered wants leave the ledger", func() bool {
		return len(v.ex.Engine().WantlistFor(p.Host.ID())) == limit-3
	})
	if got, want := heldWants(v, p.Host.ID()), append(missing[:limit-4:limit-4], urgent[0]); !sameCIDs(got, want) {
		t.Errorf("victim holds %d wants, not the first %d and the first urgent one", len(got), limit-4)
	}
	st := v.ex.Engine().Stats()
	if st.WantsEvicted != 4 {
		t.Errorf("%d wants evicted, want 4", st.WantsEvicted)
	}
	if st.WantsIgnored != uint64(extra+len(urgent)-1) {
		t.Errorf("%d wants ignored, want %d", st.WantsIgnored, extra+len(urgent)-1)
	}
	if n := maxHeld(); n > limit {
		t.Errorf("victim held %d wants of the peer at once", n)
	}
}

// TestFloodWithHeldWants: the flood of TestHugeWantlist, fewer rounds, with
// want-blocks for blocks the victim has among it, early in each frame and
// in a message of their own after each frame. Each is answered, and the
// victim never holds more than decision.MaxWantlistEntries wants of the
// peer.
func TestFloodWithHeldWants(t *testing.T) {
	const (
		entries  = 100_000
		perFrame = 25_000
		rounds   = 5
		frames   = rounds * entries / perFrame
	)
	v := newVictim(t, exchange.Config{})
	p, in := connectPeer(t, v)
	s := open(t, p, v.host.ID())
	defer s.Close()
	maxHeld := watchWantlist(t, v, p.Host.ID())

	sizes := make([]int, 2*frames)
	for i := range sizes {
		sizes[i] = 100 + i
	}
	held := v.put(t, sizes...)
	for f := range frames {
		es := make([][]byte, 0, perFrame+1)
		for i := range perFrame {
			if i == 100 {
				es = append(es, hostile.Entry(held[2*f].CID.Bytes(), 1, wantlist.WantBlock, true))
			}
			es = append(es, hostile.Entry(missingCID("flood", f%(entries/perFrame)*perFrame+i).Bytes(), 1, wantlist.WantHave, false))
		}
		write(t, s, hostile.Frame(hostile.Wantlist(false, es...)))
		write(t, s, hostile.Frame(wantBlock(held[2*f+1].CID)))
	}
	for _, b := range held {
		in.waitBlock(t, b.CID, 60*time.Second)
	}
	if n := maxHeld(); n > decision.MaxWantlistEntries {
		t.Errorf("victim held %d wants of the peer at once", n)
	}
	st := v.ex.Engine().Stats()
	t.Logf("%d held blocks sent; wants evicted %d, ignored %d", len(held), st.WantsEvicted, st.WantsIgnored)
}

// watchWantlist samples the size of the wantlist v holds for p until the
// test ends, and returns a function that stops sampling and reports the
// largest size seen.
func watchWantlist(t testing.TB, v *victim, p peer.ID) (stop func() int) {
	t.Helper()
	done := make(chan struct{})
	var (
		wg   sync.WaitGroup
		most int
	)
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if l, ok := v.ex.Engine().Ledger(p); ok {
				most = max(most, l.WantlistSize)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	stop = sync.OnceValue(func() int {
		close(done)
		wg.Wait()
		return most
	})
	t.Cleanup(func() { stop() })
	return stop
}

// heldWants returns the CIDs v holds wants for from p.
func heldWants(v *victim, p peer.ID) []cid.Cid {
	var out []cid.Cid
	for _, w := range v.ex.Engine().WantlistFor(p) {
		out = append(out, w.CID)
	}
	return out
}

// sameCIDs reports whether a and b hold the same CIDs, in any order.
func sameCIDs(a, b []cid.Cid) bool {
	if len(a) != len(b) {
		return false
	}
	set := make(map[cid.Cid]bool, len(a))
	for _, c := range a {
		set[c] = true
	}
	for _, c := range b {
		if !set[c] {
			return false
		}
	}
	return true
}

// dontHaves counts the DONT_HAVEs in.
func dontHaves(in *inbox) int {
	n := 0
	for _, pr := range in.presences() {
		if pr.Type == message.DontHave {
			n++
		}
	}
	return n
}
