package hostile_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	lnet "github.com/libp2p/go-libp2p/core/network"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/decision"
	"github.com/bsfs/bsfs/exchange/hostile"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/network"
	"github.com/bsfs/bsfs/exchange/wantlist"
	"github.com/bsfs/bsfs/internal/poll"
)

// fetchAll fetches blks from whoever has them through n and returns how
// long it took, failing the test if it takes over timeout.
func fetchAll(t testing.TB, n *victim, blks []block.Block, timeout time.Duration) time.Duration {
	t.Helper()
	cids := make([]cid.Cid, len(blks))
	for i, b := range blks {
		cids[i] = b.CID
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	st, err := n.ex.GetBlocks(ctx, cids)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range st.C() {
		got++
	}
	if got != len(blks) {
		t.Fatalf("fetched %d of %d blocks in %v", got, len(blks), timeout)
	}
	return time.Since(start)
}

func connectNodes(t testing.TB, a, b *victim) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.host.Connect(ctx, b.addrInfo()); err != nil {
		t.Fatal(err)
	}
}

// TestAbusiveStreams (case 6): a peer that opens hundreds of streams, one
// that trickles a byte a second, one that opens a stream and says nothing,
// and one that never reads what it asked for. The resource manager and
// the deadlines cut each off, an honest peer is served meanwhile, and no
// goroutine is left behind once the attacker is gone.
func TestAbusiveStreams(t *testing.T) {
	a := newAbuse(t)
	t.Run("hundreds of streams", a.hundredsOfStreams)
	t.Run("one byte a second", a.oneByteASecond)
	t.Run("silent stream", a.silentStream)
	t.Run("never reads", a.neverReads)
}

// The victim's deadlines in TestAbusiveStreams.
const (
	frameTimeout = 2 * time.Second
	idleTimeout  = 2 * time.Second
	sendTimeout  = 2 * time.Second
)

// abuse is TestAbusiveStreams' victim and the honest peer it serves
// throughout, with the honest fetch's time and the victim's goroutines
// before any attack.
type abuse struct {
	v, honest  *victim
	sizes      []int
	baseline   time.Duration
	goroutines int
}

// newAbuse starts the victim, connects the honest peer, and measures the
// baseline.
func newAbuse(t *testing.T) *abuse {
	v := newVictim(t, exchange.Config{Network: network.Config{
		FrameTimeout: frameTimeout, IdleTimeout: idleTimeout, SendTimeout: sendTimeout,
	}})
	honest := newVictim(t, exchange.Config{})
	connectNodes(t, honest, v)
	sizes := make([]int, 16)
	for i := range sizes {
		sizes[i] = 256 << 10
	}
	// Baseline: the honest peer's fetch before any attack.
	baseline := fetchAll(t, honest, v.put(t, sizes...), 20*time.Second)
	goroutines := settleGoroutines(0, 500*time.Millisecond)
	return &abuse{v: v, honest: honest, sizes: sizes, baseline: baseline, goroutines: goroutines}
}

// honestFetch fetches fresh blocks while an attack runs.
func (a *abuse) honestFetch(t *testing.T) {
	took := fetchAll(t, a.honest, a.v.put(t, a.sizes...), 20*time.Second)
	t.Logf("honest peer fetched 16 x 256 KiB in %v under attack (%v before any attack)", took.Round(time.Millisecond), a.baseline.Round(time.Millisecond))
}

// gone closes the attacker and checks that what it cost is released.
func (a *abuse) gone(t *testing.T, p *hostile.Peer) {
	p.Close()
	poll.Until(t, 10*time.Second, "victim sees the attacker leave", func() bool {
		return a.v.host.Network().Connectedness(p.Host.ID()) != lnet.Connected
	})
	n := settleGoroutines(a.goroutines+5, 15*time.Second)
	t.Logf("goroutines: %d before the attack, %d after", a.goroutines, n)
	if n > a.goroutines+5 {
		t.Errorf("%d goroutines left, %d before the attack", n, a.goroutines)
	}
}

// hundredsOfStreams opens 600 streams at once.
func (a *abuse) hundredsOfStreams(t *testing.T) {
	v := a.v
	const streams = 600
	p, _ := connectPeer(t, v)
	empty := hostile.Frame(hostile.Wantlist(false))
	ss := make([]lnet.Stream, 0, streams)
	failedOpen := 0
	for range streams {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := p.Open(ctx, v.host.ID())
		cancel()
		if err != nil {
			failedOpen++
			continue
		}
		_ = s.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := s.Write(empty); err != nil {
			s.Reset()
			failedOpen++
			continue
		}
		ss = append(ss, s)
	}
	during := settleGoroutines(0, 0)
	a.honestFetch(t)
	// A refused stream is reset at once; an accepted one stays open
	// (the frame was valid and the idle timeout is longer than this).
	open, reset := 0, 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Go(func() {
			err := resetWithin(s, 500*time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				reset++
			} else {
				open++
			}
		})
	}
	wg.Wait()
	t.Logf("%d streams opened: %d failed to open, %d reset by the victim, %d held open; %d goroutines while they were",
		streams, failedOpen, reset, open, during)
	if open >= streams/2 || open == 0 {
		t.Errorf("%d of %d streams held open", open, streams)
	}
	a.gone(t, p)
}

// oneByteASecond trickles a frame a byte a second.
func (a *abuse) oneByteASecond(t *testing.T) {
	v := a.v
	p, _ := connectPeer(t, v)
	s := open(t, p, v.host.ID())
	write(t, s, []byte{100}) // a frame of 100 bytes, trickled
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for range 99 {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if _, err := s.Write([]byte{0}); err != nil {
				return
			}
		}
	})
	err := resetWithin(s, frameTimeout+5*time.Second)
	took := time.Since(start)
	close(done)
	wg.Wait()
	t.Logf("trickling stream reset after %v (frame timeout %v)", took.Round(time.Millisecond), frameTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if took < frameTimeout-100*time.Millisecond {
		t.Errorf("reset after %v, before the frame timeout", took)
	}
	a.honestFetch(t)
	a.gone(t, p)
}

// silentStream opens a stream and says nothing after its first frame.
func (a *abuse) silentStream(t *testing.T) {
	v := a.v
	p, _ := connectPeer(t, v)
	s := open(t, p, v.host.ID())
	write(t, s, hostile.Frame(hostile.Wantlist(false))) // negotiated, then silence
	start := time.Now()
	err := resetWithin(s, idleTimeout+5*time.Second)
	t.Logf("silent stream reset after %v (idle timeout %v)", time.Since(start).Round(time.Millisecond), idleTimeout)
	if err != nil {
		t.Fatal(err)
	}
	a.gone(t, p)
}

// neverReads asks for 16 MiB and never reads the answer.
func (a *abuse) neverReads(t *testing.T) {
	v := a.v
	p := newPeer(t, hostile.Config{Deaf: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Connect(ctx, v.addrInfo()); err != nil {
		t.Fatal(err)
	}
	big := make([]int, 16)
	for i := range big {
		big[i] = 1 << 20
	}
	var es [][]byte
	for _, b := range v.put(t, big...) {
		es = append(es, hostile.Entry(b.CID.Bytes(), 1, wantlist.WantBlock, true))
	}
	s := open(t, p, v.host.ID())
	defer s.Close()
	write(t, s, hostile.Frame(hostile.Wantlist(true, es...)))
	errs := v.ex.Engine().Stats().SendErrors
	a.honestFetch(t)
	start := time.Now()
	poll.Until(t, sendTimeout+10*time.Second, "the victim gives up a send", func() bool {
		return v.ex.Engine().Stats().SendErrors > errs
	})
	t.Logf("send to the deaf peer failed %v after the honest fetch (send timeout %v)", time.Since(start).Round(time.Millisecond), sendTimeout)
	a.gone(t, p)
}

// TestGreedyPeer (case 7, boxo#1141): with a single worker, a peer that
// wants 1,000 large blocks keeps the victim busy; a newcomer wanting one
// block is answered within a second, and the block data read for the
// greedy peer and not yet sent never exceeds one message.
func TestGreedyPeer(t *testing.T) {
	const (
		greedyBlocks = 1000
		blockSize    = 128 << 10
		maxMessage   = 1 << 20
	)
	v := newVictim(t, exchange.Config{Engine: decision.Config{Workers: 1, MaxMessageBytes: maxMessage}})
	sizes := make([]int, greedyBlocks)
	for i := range sizes {
		sizes[i] = blockSize
	}
	var es [][]byte
	for i, b := range v.put(t, sizes...) {
		es = append(es, hostile.Entry(b.CID.Bytes(), int32(greedyBlocks-i), wantlist.WantBlock, true))
	}
	target := v.put(t, 256<<10)
	newcomer := newVictim(t, exchange.Config{})
	before := heapInUse() // the blocks' data is garbage by now

	var (
		mu        sync.Mutex
		messages  int
		got       int
		largest   int
		heapPeaks []uint64
	)
	greedy := newPeer(t, hostile.Config{OnMessage: func(_ lnet.Stream, m *message.Message) {
		n := 0
		for _, b := range m.Blocks {
			n += len(b.Data)
		}
		mu.Lock()
		messages++
		got += len(m.Blocks)
		largest = max(largest, n)
		mu.Unlock()
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := greedy.Connect(ctx, v.addrInfo()); err != nil {
		t.Fatal(err)
	}
	s := open(t, greedy, v.host.ID())
	defer s.Close()
	write(t, s, hostile.Frame(hostile.Wantlist(true, es...)))
	poll.Until(t, 20*time.Second, "the greedy peer is being served", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return messages >= 5
	})
	heapPeaks = append(heapPeaks, heapInUse())

	connectNodes(t, newcomer, v)
	took := fetchAll(t, newcomer, target, 10*time.Second)
	heapPeaks = append(heapPeaks, heapInUse())

	mu.Lock()
	gotWhen, msgs, big := got, messages, largest
	mu.Unlock()
	t.Logf("newcomer answered in %v while the greedy peer had %d of %d blocks (%d messages, largest %d KiB of blocks)",
		took.Round(time.Millisecond), gotWhen, greedyBlocks, msgs, big>>10)
	t.Logf("heap before the greedy peer %d KiB, while served %d KiB and %d KiB (it wants %d MiB)",
		before>>10, heapPeaks[0]>>10, heapPeaks[1]>>10, greedyBlocks*blockSize/mib)
	if gotWhen >= greedyBlocks {
		t.Fatalf("the greedy peer got everything before the newcomer came: nothing was tested")
	}
	if took > time.Second {
		t.Errorf("newcomer waited %v", took)
	}
	if big > maxMessage {
		t.Errorf("a message carried %d bytes of blocks, budget %d", big, maxMessage)
	}
	for _, h := range heapPeaks {
		if h > before+16*mib {
			t.Errorf("heap grew from %d KiB to %d KiB while serving the greedy peer", before>>10, h>>10)
		}
	}
}
