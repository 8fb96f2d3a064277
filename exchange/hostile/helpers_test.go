package hostile_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	ma "github.com/multiformats/go-multiaddr"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	lnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
	"github.com/bsfs/bsfs/exchange"
	"github.com/bsfs/bsfs/exchange/hostile"
	"github.com/bsfs/bsfs/exchange/message"
	"github.com/bsfs/bsfs/exchange/wantlist"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/testnode"
)

// victim is a real bsfs node under attack: a libp2p host on loopback, a
// flatfs blockstore in a temporary directory and an exchange.
type victim struct {
	host host.Host
	bs   *blockstore.Blockstore
	ex   *exchange.Exchange
}

func newVictim(t testing.TB, cfg exchange.Config) *victim {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := testnode.New(t, cfg)
	return &victim{host: n.Host, bs: n.Store, ex: n.Ex}
}

func (v *victim) addrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: v.host.ID(), Addrs: v.host.Addrs()}
}

// tcpAddrInfo is addrInfo with the TCP addresses alone. A QUIC connection
// whose closing packet is lost (a UDP buffer overflowing on a loaded
// machine) stays open on the other side until its 30 s idle timeout; a TCP
// connection's end always arrives.
func (v *victim) tcpAddrInfo() peer.AddrInfo {
	ai := peer.AddrInfo{ID: v.host.ID()}
	for _, a := range v.host.Addrs() {
		if _, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			ai.Addrs = append(ai.Addrs, a)
		}
	}
	return ai
}

// put stores blocks of the given sizes of random data on v.
func (v *victim) put(t testing.TB, sizes ...int) []block.Block {
	t.Helper()
	out := make([]block.Block, len(sizes))
	for i, n := range sizes {
		b, err := block.New(rawPrefix, blocktest.RandomBytes(t, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := v.bs.Put(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	if err := v.ex.NotifyNewBlocks(context.Background(), out...); err != nil {
		t.Fatal(err)
	}
	return out
}

func (v *victim) has(t testing.TB, c cid.Cid) bool {
	t.Helper()
	ok, err := v.bs.Has(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

var rawPrefix = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}

// missingCID is a CID nobody has: the sha2-256 of a label and a number.
func missingCID(label string, i int) cid.Cid {
	h := sha256.New()
	h.Write([]byte(label))
	_ = binary.Write(h, binary.BigEndian, uint64(i))
	digest, _ := mh.Encode(h.Sum(nil), mh.SHA2_256)
	return cid.NewCidV1(cid.Raw, digest)
}

// newPeer starts a hostile peer, closed at the end of the test.
func newPeer(t testing.TB, cfg hostile.Config) *hostile.Peer {
	t.Helper()
	p, err := hostile.NewPeer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// connectPeer starts a hostile peer whose messages go to an inbox and
// connects it to v.
func connectPeer(t testing.TB, v *victim) (*hostile.Peer, *inbox) {
	t.Helper()
	in := newInbox()
	p := newPeer(t, hostile.Config{OnMessage: in.add})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Connect(ctx, v.addrInfo()); err != nil {
		t.Fatal(err)
	}
	return p, in
}

func open(t testing.TB, p *hostile.Peer, to peer.ID) lnet.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := p.Open(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// inbox records the messages a victim sends to a hostile peer.
type inbox struct {
	mu      sync.Mutex
	msgs    []*message.Message
	changed chan struct{} // closed and replaced on every message
}

func newInbox() *inbox { return &inbox{changed: make(chan struct{})} }

func (in *inbox) add(_ lnet.Stream, m *message.Message) {
	in.mu.Lock()
	in.msgs = append(in.msgs, m)
	close(in.changed)
	in.changed = make(chan struct{})
	in.mu.Unlock()
}

// wait returns once ok holds for the messages so far, or fails the test
// after timeout.
func (in *inbox) wait(t testing.TB, timeout time.Duration, what string, ok func([]*message.Message) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		in.mu.Lock()
		msgs, changed := in.msgs, in.changed
		in.mu.Unlock()
		if ok(msgs) {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %s within %v (%d messages received)", what, timeout, len(msgs))
		}
	}
}

// waitBlock waits for a message carrying c.
func (in *inbox) waitBlock(t testing.TB, c cid.Cid, timeout time.Duration) {
	t.Helper()
	in.wait(t, timeout, "block "+c.String(), func(msgs []*message.Message) bool {
		for _, m := range msgs {
			for _, b := range m.Blocks {
				if b.CID.Equals(c) {
					return true
				}
			}
		}
		return false
	})
}

// presences returns every presence received so far.
func (in *inbox) presences() []message.Presence {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []message.Presence
	for _, m := range in.msgs {
		out = append(out, m.Presences...)
	}
	return out
}

// wantBlock is the body of a message wanting c's block.
func wantBlock(c cid.Cid) []byte {
	return hostile.Wantlist(false, hostile.Entry(c.Bytes(), 1, wantlist.WantBlock, true))
}

// write writes raw bytes to s, failing the test on error.
func write(t testing.TB, s lnet.Stream, b []byte) {
	t.Helper()
	_ = s.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.Write(b); err != nil {
		t.Fatalf("write %d bytes: %v", len(b), err)
	}
}

// awaitReset reads s until the victim resets it, and fails the test if
// the stream ends otherwise or stays open for timeout.
func awaitReset(t testing.TB, s lnet.Stream, timeout time.Duration) {
	t.Helper()
	if err := resetWithin(s, timeout); err != nil {
		t.Fatal(err)
	}
}

func resetWithin(s lnet.Stream, timeout time.Duration) error {
	_ = s.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 512)
	for range 1 << 16 {
		_, err := s.Read(buf)
		switch {
		case err == nil:
			continue
		case errors.Is(err, lnet.ErrReset):
			return nil
		case errors.Is(err, io.EOF):
			return errors.New("stream closed, not reset")
		default:
			return err
		}
	}
	return errors.New("victim keeps writing on our stream")
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// totalAlloc returns the bytes allocated by the process so far.
func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// settleGoroutines waits up to timeout for the goroutine count to fall to
// at most limit and returns the last count.
func settleGoroutines(limit int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		n := runtime.NumGoroutine()
		if n <= limit || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const mib = 1 << 20
