package unixfs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	pb "github.com/ipfs/boxo/ipld/unixfs/pb"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"

	"github.com/bsfs/bsfs/block"
)

// FuzzHAMT lists a fuzzed directory and looks a name up in it. The root
// and two more blocks are served under their CIDs; any other CID gets one
// of the three, or none, picked by the last byte of its digest: a lying
// getter, with which shards link to themselves and to each other in
// cycles, as hashes otherwise forbid. Both must end: a listing asks for
// no block twice in batches nor twice alone, a lookup for no more blocks
// than the hash has levels. They fail only as a malformed DAG, a missing
// block or a missing name, and agree: what Lookup finds, ReadDir lists.
func FuzzHAMT(f *testing.F) {
	f.Fuzz(func(t *testing.T, root, b1, b2 []byte, name string) {
		if len(root)+len(b1)+len(b2) > block.MaxSize {
			return
		}
		g := newLyingGetter(t, root, b1, b2)
		r := New(g, Config{Parallelism: 4})
		dir := g.blocks[0].CID
		ents, err := r.ReadDir(t.Context(), dir)
		listed := err == nil
		if !listed && !hamtError(err) {
			t.Fatalf("ReadDir: %v", err)
		}
		if what, n := g.maxFetches(); n > 1 {
			t.Fatalf("ReadDir asked %d times for %s (%v)", n, what, err)
		}
		if listed && g.blocks[0].isHAMT && !slices.IsSortedFunc(ents, func(a, b DirEntry) int { return strings.Compare(a.Name, b.Name) }) {
			t.Fatal("sharded listing not sorted")
		}
		names := []string{name}
		for _, e := range ents[:min(len(ents), 4)] {
			names = append(names, e.Name)
		}
		for _, name := range names {
			g.reset()
			e, err := r.Lookup(t.Context(), dir, name)
			if fetched := g.fetches(); fetched > 1+64/3 {
				t.Fatalf("Lookup(%q) fetched %d blocks", name, fetched)
			}
			if err != nil {
				if !hamtError(err) && !errors.Is(err, ErrNotFound) {
					t.Fatalf("Lookup(%q): %v", name, err)
				}
				continue
			}
			if e.Name != name || !e.CID.Defined() {
				t.Fatalf("Lookup(%q) = %+v", name, e)
			}
			if listed && !slices.Contains(ents, e) {
				t.Fatalf("Lookup(%q) finds %s, which ReadDir does not list", name, e.CID)
			}
		}
	})
}

// hamtError reports whether err is one a fuzzed directory may fail with.
func hamtError(err error) bool {
	return errors.Is(err, ErrMalformed) || errors.Is(err, block.ErrNotFound) || errors.Is(err, ErrNotDir)
}

// lyingGetter is FuzzHAMT's BlockGetter.
type lyingGetter struct {
	blocks [3]struct {
		block.Block
		isHAMT bool
	}

	mu      sync.Mutex
	fetched map[string]int // guarded by mu: how and CID -> requests
}

func newLyingGetter(t *testing.T, data ...[]byte) *lyingGetter {
	g := &lyingGetter{fetched: map[string]int{}}
	for i, d := range data {
		b, err := block.New(cidBuilder(), d)
		if err != nil {
			t.Fatal(err)
		}
		g.blocks[i].Block = b
		if dec, err := decode(b); err == nil {
			g.blocks[i].isHAMT = dec.isHAMT()
		}
	}
	return g
}

func (g *lyingGetter) GetBlock(_ context.Context, c cid.Cid) (block.Block, error) {
	g.count(c, "alone")
	return g.serve(c)
}

func (g *lyingGetter) GetBlocks(_ context.Context, cids []cid.Cid) (*block.Stream, error) {
	for _, c := range cids {
		if err := block.CheckCID(c); err != nil {
			return nil, err
		}
	}
	st := block.NewStream()
	go func() {
		var first error
		for _, c := range cids {
			g.count(c, "in a batch")
			b, err := g.serve(c)
			if err == nil {
				st.Send(b, nil)
			} else if first == nil {
				first = err
			}
		}
		st.Close(first)
	}()
	return st, nil
}

// count records a request for c, alone or in a batch.
func (g *lyingGetter) count(c cid.Cid, how string) {
	g.mu.Lock()
	g.fetched[how+" "+c.String()]++
	g.mu.Unlock()
}

func (g *lyingGetter) serve(c cid.Cid) (block.Block, error) {
	if err := block.CheckCID(c); err != nil {
		return block.Block{}, err
	}
	if b, ok := block.Inline(c); ok {
		return b, nil
	}
	for _, b := range g.blocks {
		if b.CID.Equals(c) {
			return b.Block, nil
		}
	}
	h := c.Hash()
	i := int(h[len(h)-1]) % (len(g.blocks) + 1)
	if i == len(g.blocks) {
		return block.Block{}, fmt.Errorf("%s: %w", c, block.ErrNotFound)
	}
	return block.Block{CID: c, Data: g.blocks[i].Data}, nil
}

// maxFetches returns the request made most often, and how often.
func (g *lyingGetter) maxFetches() (what string, n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, v := range g.fetched {
		if v > n {
			what, n = k, v
		}
	}
	return what, n
}

// fetches returns the fetches since the last reset.
func (g *lyingGetter) fetches() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, v := range g.fetched {
		n += v
	}
	return n
}

func (g *lyingGetter) reset() {
	g.mu.Lock()
	clear(g.fetched)
	g.mu.Unlock()
}

// hamtSeeds returns FuzzHAMT's seeds: a real HAMT's root, two sub-shards
// and a name in it; a shard whose slots all link to one sub-shard, whose
// slots all link to a third; and a shard whose links all come back to it
// through the lying getter.
func hamtSeeds(t *testing.T) map[string][]any {
	s := memStore{}
	root, want := hamtDir(t, s, 100, 16)
	rd := decodeT(t, s, root)
	var subs [][]byte
	for _, l := range rd.links {
		if len(l.name) == padLen(rd.fanout) && len(subs) < 2 {
			subs = append(subs, mustGet(t, s, l.cid).Data)
		}
	}
	if len(subs) < 2 || want["entry-0042"] == cid.Undef {
		t.Fatalf("the HAMT has %d sub-shards", len(subs))
	}

	// shard is a HAMT shard of fanout 16 with one link to c in each slot.
	shard := func(c cid.Cid) []byte {
		n := unixfsNode(t, &pb.Data{Type: pb.Data_HAMTShard.Enum(), HashType: proto.Uint64(hamtMurmur3), Fanout: proto.Uint64(16)})
		for i := range 16 {
			if err := n.AddRawLink(fmt.Sprintf("%X", i), &ipld.Link{Cid: c}); err != nil {
				t.Fatal(err)
			}
		}
		return mustEncode(t, n)
	}
	leaf := unixfsNode(t, &pb.Data{Type: pb.Data_HAMTShard.Enum(), HashType: proto.Uint64(hamtMurmur3), Fanout: proto.Uint64(16)})
	if err := leaf.AddRawLink("3entry-0042", &ipld.Link{Cid: want["entry-0042"]}); err != nil {
		t.Fatal(err)
	}
	c2 := mustEncode(t, leaf)
	b2, err := block.New(cidBuilder(), c2)
	if err != nil {
		t.Fatal(err)
	}
	b1data := shard(b2.CID)
	b1, err := block.New(cidBuilder(), b1data)
	if err != nil {
		t.Fatal(err)
	}
	// A CID no block matches, whose digest ends in 0: the lying getter
	// serves the root for it.
	back, err := mh.Encode(make([]byte, 32), mh.SHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]any{
		"real":    {mustGet(t, s, root).Data, subs[0], subs[1], "entry-0042"},
		"diamond": {shard(b1.CID), b1data, c2, "entry-0042"},
		"cycle":   {shard(cid.NewCidV1(cid.DagProtobuf, back)), subs[0], subs[1], "entry-0001"},
	}
}

// TestHAMTRepeatedShards lists and searches real (hashed) shard chains
// deeper than a hash allows: one whose shards each link to the next from
// every slot, which took a walk exponential in the depth before shards
// were walked once each, and one with a single link a shard. Both are
// malformed, and a lookup fetches no more shards than the hash has levels.
func TestHAMTRepeatedShards(t *testing.T) {
	h, err := mh.Sum([]byte("leaf"), mh.IDENTITY, -1)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cid.NewCidV1(cid.Raw, h)
	for _, slots := range []int{8, 1} {
		s := memStore{}
		next := cid.Cid{}
		for depth := range 24 {
			n := unixfsNode(t, &pb.Data{Type: pb.Data_HAMTShard.Enum(), HashType: proto.Uint64(hamtMurmur3), Fanout: proto.Uint64(8)})
			for i := range slots {
				l := &ipld.Link{Cid: next}
				name := fmt.Sprint(i)
				if depth == 0 {
					name += "name"
					l.Cid = leaf
				}
				if err := n.AddRawLink(name, l); err != nil {
					t.Fatal(err)
				}
			}
			b, err := block.New(cidBuilder(), mustEncode(t, n))
			if err != nil {
				t.Fatal(err)
			}
			s.Put(t.Context(), b)
			next = b.CID
		}
		p := &probe{g: Local(s)}
		r := New(p, Config{})
		if _, err := r.ReadDir(t.Context(), next); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d links a shard: ReadDir: %v, want ErrMalformed", slots, err)
		}
		_, _, all := p.counts()
		if len(all) > 24 {
			t.Errorf("%d links a shard: ReadDir asked for %d blocks", slots, len(all))
		}
		p = &probe{g: Local(s)}
		r = New(p, Config{})
		if _, err := r.Lookup(t.Context(), next, "name"); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotFound) {
			t.Errorf("%d links a shard: Lookup: %v, want ErrMalformed or ErrNotFound", slots, err)
		}
		if _, _, all := p.counts(); len(all) > 1+64/3 {
			t.Errorf("%d links a shard: Lookup asked for %d blocks", slots, len(all))
		}
	}
}
