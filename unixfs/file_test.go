package unixfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/internal/blocktest"
	"github.com/bsfs/bsfs/internal/storetest"
)

func TestAddFileReadBack(t *testing.T) {
	bs := storetest.New(t)
	r := New(Local(bs), Config{})
	for _, n := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := blocktest.SeededBytes(n, uint64(n))
			c, err := AddFile(t.Context(), bs, bytes.NewReader(data), AddOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wantCodec := uint64(cid.DagProtobuf)
			if n <= chunkSize {
				wantCodec = cid.Raw // one chunk: the raw leaf is the root
			}
			if c.Version() != 1 || c.Prefix().Codec != wantCodec {
				t.Errorf("root %s: version %d codec 0x%x, want v1 0x%x", c, c.Version(), c.Prefix().Codec, wantCodec)
			}
			nd, err := r.Stat(t.Context(), c)
			if err != nil {
				t.Fatal(err)
			}
			if nd.Kind != KindFile || nd.Size != uint64(n) || !nd.CID.Equals(c) {
				t.Errorf("Stat = %+v, want a file of %d bytes", nd, n)
			}
			f := openT(t, r, c)
			if got := readAll(t, f, 100_000); !bytes.Equal(got, data) {
				t.Errorf("read %d bytes, want the %d added", len(got), n)
			}
			if k, err := f.ReadAt(t.Context(), make([]byte, 10), int64(n)); k != 0 || err != io.EOF {
				t.Errorf("ReadAt at the end = %d, %v; want 0, EOF", k, err)
			}
		})
	}
}

func TestAddFileProgress(t *testing.T) {
	bs := storetest.New(t)
	var last int64
	calls := 0
	data := blocktest.SeededBytes(3*chunkSize+5, 1)
	_, err := AddFile(t.Context(), bs, bytes.NewReader(data), AddOptions{Progress: func(n int64) {
		if n < last {
			t.Errorf("progress went back from %d to %d", last, n)
		}
		last = n
		calls++
	}})
	if err != nil {
		t.Fatal(err)
	}
	if last != int64(len(data)) || calls < 4 {
		t.Errorf("progress ended at %d after %d calls, want %d after at least 4", last, calls, len(data))
	}
}

// Every range that starts or ends at, just before or just after a leaf
// edge, in DAGs of one, two and three levels, with raw and dag-pb leaves.
func TestReadAtBoundaries(t *testing.T) {
	const chunk = 1000
	for _, tc := range []struct {
		name        string
		size, links int
		dagpbLeaves bool
	}{
		{"one level", 7*chunk + 13, 174, false},
		{"two levels over 174 leaves", 180*chunk + 1, 174, false},
		{"three levels", 70*chunk - 1, 4, false},
		{"dag-pb leaves", 70*chunk - 1, 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs := storetest.New(t)
			data := blocktest.SeededBytes(tc.size, uint64(tc.size))
			c := addSmall(t, bs, data, chunk, tc.links, tc.dagpbLeaves)
			r := New(Local(bs), Config{Window: 4})
			f := openT(t, r, c)
			if f.Node().Size != uint64(tc.size) {
				t.Fatalf("size %d, want %d", f.Node().Size, tc.size)
			}
			check := func(off, n int) {
				t.Helper()
				if off < 0 || off > tc.size || n < 0 {
					return
				}
				buf := make([]byte, n)
				k, err := f.ReadAt(t.Context(), buf, int64(off))
				want := data[off:min(off+n, tc.size)]
				if k != len(want) || !bytes.Equal(buf[:k], want) {
					t.Fatalf("ReadAt(%d bytes at %d) = %d bytes, want %d (equal: %v)", n, off, k, len(want), bytes.Equal(buf[:k], want))
				}
				switch {
				case k < n && err != io.EOF:
					t.Fatalf("ReadAt(%d bytes at %d) short with %v, want EOF", n, off, err)
				case k == n && err != nil:
					t.Fatalf("ReadAt(%d bytes at %d): %v", n, off, err)
				}
			}
			for edge := 0; edge <= tc.size; edge += chunk {
				for _, d := range []int{-1, 0, 1} {
					for _, n := range []int{1, 2, chunk - 1, chunk, chunk + 1, 3*chunk + 2} {
						check(edge+d, n)
						check(edge+d-n, n)
					}
				}
			}
			check(0, tc.size)
			check(0, tc.size+100)
		})
	}
}

func TestConcurrentReadAt(t *testing.T) {
	const chunk = 1000
	bs := storetest.New(t)
	data := blocktest.SeededBytes(300*chunk+17, 2)
	c := addSmall(t, bs, data, chunk, 10, false)
	f := openT(t, New(Local(bs), Config{Window: 8}), c)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 1))
			buf := make([]byte, 5*chunk)
			for range 200 {
				off := rnd.IntN(len(data))
				n := 1 + rnd.IntN(len(buf))
				k, err := f.ReadAt(context.Background(), buf[:n], int64(off))
				if err != nil && err != io.EOF {
					errs <- err
					return
				}
				if !bytes.Equal(buf[:k], data[off:min(off+n, len(data))]) {
					errs <- fmt.Errorf("bytes at %d (+%d) differ", off, n)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A file read through to its end holds no more than keptRead leaves: the
// ones read are let go once the reader has passed them, not kept until the
// window's budget is full.
func TestSequentialReadLetsLeavesGo(t *testing.T) {
	const leaves = 40
	bs := storetest.New(t)
	data := blocktest.SeededBytes(leaves*leafSize, 5)
	c := addSmall(t, bs, data, leafSize, 174, false)
	f := openT(t, New(Local(bs), Config{Window: 64}), c)
	if got := readAll(t, f, 128<<10); !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, not the %d added", len(got), len(data))
	}
	f.mu.Lock()
	held := f.leaves.size
	f.mu.Unlock()
	if held > keptRead*leafSize {
		t.Errorf("%d KiB of leaves held after the read, want at most %d (%d leaves)", held>>10, keptRead*leafSize>>10, keptRead)
	}
}

// A sequential reader gets every leaf exactly once, requested a batch at a
// time ahead of it.
func TestSequentialPrefetch(t *testing.T) {
	const chunk, leaves, window = 1000, 400, 16
	bs := storetest.New(t)
	data := blocktest.SeededBytes(leaves*chunk, 3)
	c := addSmall(t, bs, data, chunk, 174, false)
	p := &probe{g: Local(bs)}
	f := openT(t, New(p, Config{Window: window}), c)
	buf := make([]byte, chunk/2)
	for off := 0; off < len(data); off += len(buf) {
		if _, err := f.ReadAt(t.Context(), buf, int64(off)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, data[off:off+len(buf)]) {
			t.Fatalf("bytes at %d differ", off)
		}
	}
	single, batches, all := p.counts()
	// The root by GetBlock; 3 intermediate nodes (400 leaves, 174 a node)
	// and the 400 leaves by GetBlocks, none twice.
	if single != 1 {
		t.Errorf("%d GetBlock calls, want 1 (the root)", single)
	}
	if d := dupes(all); len(d) > 0 {
		t.Errorf("%d blocks requested more than once, e.g. %s", len(d), d[0])
	}
	if len(all) != 1+3+leaves {
		t.Errorf("%d blocks requested, want %d", len(all), 1+3+leaves)
	}
	// Refills come a quarter window at a time, about 100 calls; a reader
	// that found its leaf neither cached nor requested would make one
	// call a leaf.
	if batches > leaves/3 {
		t.Errorf("%d GetBlocks calls for %d leaves, want about %d", batches, leaves, leaves/(window/4))
	}
}

// A node fetched between a walk that missed it and the fetch that walk
// asks for (the reader and the prefetcher both planning) is in the node
// cache and no longer in flight: the second fetch takes it from the cache.
func TestFetchCachedNode(t *testing.T) {
	const chunk, leaves = 1000, 400
	bs := storetest.New(t)
	c := addSmall(t, bs, blocktest.SeededBytes(leaves*chunk, 3), chunk, 174, false)
	p := &probe{g: Local(bs)}
	f := openT(t, New(p, Config{Window: 16}), c)
	node := f.root.kids[0].c
	for range 2 {
		calls, err := f.fetch(t.Context(), []cid.Cid{node}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if calls[0].inode == nil {
			t.Fatalf("%s fetched as a leaf", node)
		}
	}
	if _, _, all := p.counts(); len(dupes(all)) > 0 {
		t.Errorf("%s requested %d times, want once", node, len(all)-1)
	}
}

// However big the file, a sequential reader's File caches at most the
// window and two leaves.
func TestPrefetchMemoryBound(t *testing.T) {
	const leaves, window = 40, 4
	bs := storetest.New(t)
	data := blocktest.SeededBytes(leaves*chunkSize, 8)
	c, err := AddFile(t.Context(), bs, bytes.NewReader(data), AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := &probe{g: Local(bs)}
	f := openT(t, New(p, Config{Window: window}), c)
	buf := make([]byte, 128<<10)
	maxCached := uint64(0)
	for off := 0; off < len(data); off += len(buf) {
		if _, err := f.ReadAt(t.Context(), buf, int64(off)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, data[off:off+len(buf)]) {
			t.Fatalf("bytes at %d differ", off)
		}
		f.mu.Lock()
		maxCached = max(maxCached, f.leaves.size)
		f.mu.Unlock()
	}
	if budget := uint64((window + 2) * chunkSize); maxCached > budget {
		t.Errorf("cached up to %d bytes, budget %d", maxCached, budget)
	}
	if _, _, all := p.counts(); len(all) != 1+leaves || len(dupes(all)) > 0 {
		t.Errorf("%d blocks requested (%d twice), want %d once each", len(all), len(dupes(all)), 1+leaves)
	}
}

// A random read fetches the leaves it covers and the nodes above them,
// nothing else, and starts no prefetch.
func TestRandomReadFetchesOnlyItsLeaves(t *testing.T) {
	const chunk = 1000
	bs := storetest.New(t)
	data := blocktest.SeededBytes(500*chunk, 4)
	c := addSmall(t, bs, data, chunk, 10, false) // 3 levels: 500 leaves, 50 nodes, 5 nodes, root
	p := &probe{g: Local(bs)}
	f := openT(t, New(p, Config{Window: 16}), c)
	buf := make([]byte, 2*chunk)
	off := 377*chunk + 500 // leaves 377, 378 and 379
	if _, err := f.ReadAt(t.Context(), buf, int64(off)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, data[off:off+len(buf)]) {
		t.Fatal("bytes differ")
	}
	f.Close() // waits for any prefetch that was started
	_, _, all := p.counts()
	// root, one level-1 node, one level-2 node (all three leaves share
	// it: 370-379), 3 leaves.
	if len(all) != 6 {
		t.Errorf("%d blocks requested, want 6 (root, 2 nodes, 3 leaves): %v", len(all), all)
	}
}

// Concurrent reads of the same leaf share one fetch.
func TestSharedFetch(t *testing.T) {
	const chunk = 1000
	bs := storetest.New(t)
	data := blocktest.SeededBytes(50*chunk, 5)
	c := addSmall(t, bs, data, chunk, 174, false)
	synctest.Test(t, func(t *testing.T) {
		gate := &gatedGetter{g: Local(bs), open: make(chan struct{})}
		p := &probe{g: gate}
		f, err := New(p, Config{Window: 4}).Open(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		off := int64(30*chunk + 10) // not at 0: no prefetch
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				buf := make([]byte, 10)
				if _, err := f.ReadAt(t.Context(), buf, off); err != nil {
					t.Error(err)
				}
				if !bytes.Equal(buf, data[off:off+10]) {
					t.Error("bytes differ")
				}
			})
		}
		// The readers all wait before anything is delivered.
		synctest.Wait()
		f.mu.Lock()
		holds := -1
		for _, cl := range f.pending {
			holds = cl.b.holds
		}
		f.mu.Unlock()
		if holds != 5 {
			t.Errorf("the pending fetch has %d holders, want 5", holds)
		}
		close(gate.open)
		wg.Wait()
		if _, batches, all := p.counts(); batches != 1 || len(all) != 2 {
			t.Errorf("%d GetBlocks calls, %d blocks requested; want 1 call and 2 blocks (root and leaf)", batches, len(all))
		}
	})
}

// gatedGetter delivers GetBlocks' blocks only once open is closed.
type gatedGetter struct {
	g    BlockGetter
	open chan struct{}
}

func (g *gatedGetter) GetBlock(ctx context.Context, c cid.Cid) (block.Block, error) {
	return g.g.GetBlock(ctx, c)
}

func (g *gatedGetter) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		st := block.NewStream()
		st.Close(missing(ctx, cids[0]))
		return st, nil
	}
	return g.g.GetBlocks(ctx, cids)
}

// hangingGetter has the root and never delivers anything else, until the
// context of the request ends; it counts the requests still open.
type hangingGetter struct {
	g    BlockGetter
	mu   sync.Mutex
	open int
}

func (h *hangingGetter) GetBlock(ctx context.Context, c cid.Cid) (block.Block, error) {
	return h.g.GetBlock(ctx, c)
}

func (h *hangingGetter) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	h.mu.Lock()
	h.open++
	h.mu.Unlock()
	st := block.NewStream()
	go func() {
		<-ctx.Done()
		h.mu.Lock()
		h.open--
		h.mu.Unlock()
		st.Close(missing(ctx, cids[0]))
	}()
	return st, nil
}

func (h *hangingGetter) opened() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.open
}

// A reader that gives up cancels its request; Close cancels the
// prefetch and waits for it.
func TestCancelAndClose(t *testing.T) {
	bs := storetest.New(t)
	data := blocktest.SeededBytes(40*1000, 6)
	c := addSmall(t, bs, data, 1000, 174, false)
	synctest.Test(t, func(t *testing.T) {
		h := &hangingGetter{g: Local(bs)}
		f, err := New(h, Config{Window: 8}).Open(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		_, err = f.ReadAt(ctx, make([]byte, 100), 20_000) // not at 0: no prefetch
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ReadAt of a block nobody has: %v, want DeadlineExceeded", err)
		}
		synctest.Wait()
		if n := h.opened(); n != 0 {
			t.Errorf("%d requests open after the reader gave up, want 0", n)
		}

		// Reading on from there is sequential: the prefetch starts, and
		// Close cancels it.
		ctx2, cancel2 := context.WithTimeout(t.Context(), time.Minute)
		defer cancel2()
		if _, err := f.ReadAt(ctx2, make([]byte, 100), 20_100); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ReadAt: %v", err)
		}
		synctest.Wait()
		if n := h.opened(); n != 1 {
			t.Errorf("%d requests open while prefetching, want 1", n)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if n := h.opened(); n != 0 {
			t.Errorf("%d requests still open after Close", n)
		}
		if _, err := f.ReadAt(t.Context(), make([]byte, 1), 0); !errors.Is(err, fs.ErrClosed) {
			t.Errorf("ReadAt after Close: %v, want fs.ErrClosed", err)
		}
	})
}

func TestLocalFraction(t *testing.T) {
	for _, dagpb := range []bool{false, true} {
		t.Run(fmt.Sprint("dag-pb leaves ", dagpb), func(t *testing.T) {
			const chunk = 1000
			full, part := storetest.New(t), storetest.New(t)
			data := blocktest.SeededBytes(100*chunk, 7)
			c := addSmall(t, full, data, chunk, 10, dagpb)
			// part has every node and the first 30 leaves.
			f := openT(t, New(Local(full), Config{}), c)
			copyDAG(t, full, part, f.root, 30*chunk)
			if err := part.Put(t.Context(), mustGet(t, full, c)); err != nil {
				t.Fatal(err)
			}
			p := &probe{g: Local(full)}
			r := New(p, Config{Haser: part})
			g := openT(t, r, c)
			frac, err := g.LocalFraction(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if frac != 0.3 {
				t.Errorf("LocalFraction = %v, want 0.3", frac)
			}
			_, _, all := p.counts()
			// The root and the 10 nodes are read, no leaf.
			if len(all) != 11 {
				t.Errorf("%d blocks read, want 11 (root and nodes)", len(all))
			}
			h, err := New(Local(full), Config{}).Open(t.Context(), c)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			if _, err := h.LocalFraction(t.Context()); !errors.Is(err, ErrNoHaser) {
				t.Errorf("LocalFraction without a Haser: %v", err)
			}
		})
	}
}

func mustGet(t *testing.T, s Store, c cid.Cid) block.Block {
	t.Helper()
	b, err := s.Get(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// copyDAG copies the nodes below n (content starting at 0) and the leaves
// that end at or before limit from src to dst.
func copyDAG(t *testing.T, src, dst interface {
	Store
	Put(context.Context, block.Block) error
}, n *inode, limit uint64) {
	t.Helper()
	var walk func(n *inode, base uint64)
	walk = func(n *inode, base uint64) {
		for _, k := range n.kids {
			b := mustGet(t, src, k.c)
			_, in, err := classify(b)
			if err != nil {
				t.Fatal(err)
			}
			if in != nil {
				walk(in, base+k.off)
			} else if base+k.off+k.size > limit {
				continue
			}
			if err := dst.Put(t.Context(), b); err != nil {
				t.Fatal(err)
			}
		}
	}
	walk(n, 0)
}
