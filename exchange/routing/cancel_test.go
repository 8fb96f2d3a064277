package routing_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	lnet "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	mh "github.com/multiformats/go-multihash"
	"go.uber.org/goleak"

	"github.com/bsfs/bsfs/exchange/network"
	"github.com/bsfs/bsfs/internal/poll"
)

// lookupFrames are functions on the stack of a goroutine that serves a
// provider lookup: the exchange's search, the Router's and the DHT's.
var lookupFrames = []string{
	"exchange.(*Exchange).findProviders",
	"routing.(*Router).FindProviders",
	"routing.(*Router).withAddrs",
	"go-libp2p-kad-dht.(*IpfsDHT).findProvidersAsyncRoutine",
	"go-libp2p-kad-dht/dual.(*DHT).FindProvidersAsync",
}

// lookupGoroutines returns the stacks of the goroutines serving a lookup.
func lookupGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		for _, f := range lookupFrames {
			if strings.Contains(g, f) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// TestLookupCancelled: a provider lookup started by a read ends when the
// reader gives up, and leaves no goroutine behind. The wanter's LAN DHT
// has, besides two bsfs nodes, a peer that takes DHT requests and never
// answers, so the lookup cannot end by itself while the test looks.
func TestLookupCancelled(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	nodes := bsfsChain(t, 3)
	wanter := nodes[0]
	mute, asked := addMutePeer(t, ctx, wanter)

	for _, c := range []struct {
		name string
		// read fetches c until it is interrupted: stop interrupts it.
		read func(ctx context.Context, c cid.Cid) (stop func(), done <-chan error)
	}{
		{"GetBlock", func(ctx context.Context, c cid.Cid) (func(), <-chan error) {
			ctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				_, err := wanter.ex.GetBlock(ctx, c)
				done <- err
			}()
			return cancel, done
		}},
		{"file session", func(ctx context.Context, c cid.Cid) (func(), <-chan error) {
			// A file open in the mount reads through a session of its own,
			// which runs the lookup. A reader killed by SIGINT has its read
			// interrupted, and the file it had open is then closed, which
			// ends the session.
			sctx, closeFile := context.WithCancel(ctx)
			rctx, interrupt := context.WithCancel(ctx)
			s := wanter.ex.NewSession(sctx)
			done := make(chan error, 1)
			go func() {
				_, err := s.GetBlock(rctx, c)
				done <- err
			}()
			return func() { interrupt(); closeFile() }, done
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A CID nobody provides.
			sum, err := mh.Sum([]byte("nobody has this "+c.name+" "+time.Now().String()), mh.SHA2_256, -1)
			if err != nil {
				t.Fatal(err)
			}
			stop, done := c.read(ctx, cid.NewCidV1(cid.Raw, sum))
			defer stop()
			checkLookupEnds(t, ctx, sum, asked, stop, done)
		})
	}

	// Once the nodes are closed, nothing the test started is left.
	if err := mute.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		n.close(t)
	}
	if err := goleak.Find(ignore); err != nil {
		t.Fatal(err)
	}
}

// addMutePeer starts a peer that takes DHT requests and never answers, and
// puts it in wanter's LAN DHT table. It returns the peer and each of its
// streams' bytes so far, in which a lookup's request carries the
// multihash looked up.
func addMutePeer(t *testing.T, ctx context.Context, wanter *node) (host.Host, <-chan []byte) {
	t.Helper()
	mute, err := network.NewHost(network.HostConfig{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	// The mute peer reads requests and never answers; asked gets each
	// stream's bytes so far, in which a lookup's request carries the
	// multihash looked up.
	asked := make(chan []byte, 64)
	mute.SetStreamHandler("/ipfs/lan/kad/1.0.0", func(s lnet.Stream) {
		defer s.Reset()
		var got []byte
		buf := make([]byte, 4096)
		for {
			n, err := s.Read(buf)
			if n > 0 {
				got = append(got, buf[:n]...)
				select {
				case asked <- bytes.Clone(got):
				default:
				}
			}
			if err != nil {
				return
			}
		}
	})
	wanter.host.Peerstore().AddAddrs(mute.ID(), mute.Addrs(), peerstore.PermanentAddrTTL)
	if err := wanter.host.Connect(ctx, peer.AddrInfo{ID: mute.ID(), Addrs: mute.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if ok, err := wanter.r.AddToLANTable(mute.ID()); err != nil || !ok {
		t.Fatalf("adding the mute peer to the LAN table: %v, %v", ok, err)
	}
	return mute, asked
}

// checkLookupEnds waits until the lookup of sum, started by a read that
// stop interrupts and that ends on done, asks the mute peer; then
// interrupts the read and checks that it and the lookup's goroutines end.
func checkLookupEnds(t *testing.T, ctx context.Context, sum mh.Multihash, asked <-chan []byte, stop func(), done <-chan error) {
	t.Helper()
	// The session searches after its provider delay; the lookup then
	// waits on the mute peer.
	for waiting := true; waiting; {
		select {
		case got := <-asked:
			waiting = !bytes.Contains(got, sum)
		case err := <-done:
			t.Fatalf("the read ended before the lookup asked the mute peer: %v", err)
		case <-ctx.Done():
			t.Fatal("the lookup never asked the mute peer")
		}
	}
	if len(lookupGoroutines()) == 0 {
		t.Fatal("no lookup goroutine while the lookup waits")
	}
	stop()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted read: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the read did not end within 5s of its interruption")
	}
	// The lookup's goroutines end soon after, while the mute peer still
	// has not answered.
	poll.UntilNil(t, 5*time.Second, func() error {
		if left := lookupGoroutines(); len(left) > 0 {
			return fmt.Errorf("%d lookup goroutines left 5s after the read was interrupted:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		return nil
	})
}
