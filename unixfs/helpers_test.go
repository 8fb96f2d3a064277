package unixfs

import (
	"bytes"
	"context"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/blockstore"
)

// addSmall adds data with chunk-byte leaves and links-wide nodes, so that
// small files have several levels.
func addSmall(t testing.TB, bs *blockstore.Blockstore, data []byte, chunk, links int, dagpbLeaves bool) cid.Cid {
	t.Helper()
	a := &adder{ds: &dagService{dst: bs, ctx: context.Background()}, chunk: chunk, links: links, dagpbLeaves: dagpbLeaves}
	nd, err := a.file(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return nd.Cid()
}

// probe wraps a real BlockGetter and records what is asked of it: a test
// probe, not a fake.
type probe struct {
	g BlockGetter

	mu        sync.Mutex
	getBlock  []cid.Cid   // GetBlock calls
	getBlocks [][]cid.Cid // GetBlocks calls
}

func (p *probe) GetBlock(ctx context.Context, c cid.Cid) (block.Block, error) {
	p.mu.Lock()
	p.getBlock = append(p.getBlock, c)
	p.mu.Unlock()
	return p.g.GetBlock(ctx, c)
}

func (p *probe) GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error) {
	p.mu.Lock()
	p.getBlocks = append(p.getBlocks, slices.Clone(cids))
	p.mu.Unlock()
	return p.g.GetBlocks(ctx, cids)
}

// counts returns the GetBlock calls, the GetBlocks calls and every CID
// requested by either.
func (p *probe) counts() (single, batches int, all []cid.Cid) {
	p.mu.Lock()
	defer p.mu.Unlock()
	all = slices.Clone(p.getBlock)
	for _, b := range p.getBlocks {
		all = append(all, b...)
	}
	return len(p.getBlock), len(p.getBlocks), all
}

// readAll reads f sequentially in pieces of n bytes.
func readAll(t testing.TB, f *File, n int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, n)
	for off := int64(0); ; {
		k, err := f.ReadAt(context.Background(), buf, off)
		out = append(out, buf[:k]...)
		off += int64(k)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("ReadAt(%d): %v", off, err)
		}
		if k == 0 {
			t.Fatalf("ReadAt(%d) read nothing without an error", off)
		}
	}
}

func openT(t testing.TB, r *Reader, c cid.Cid) *File {
	t.Helper()
	f, err := r.Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// dupes returns the CIDs that occur more than once.
func dupes(cids []cid.Cid) []cid.Cid {
	seen := map[string]int{}
	var out []cid.Cid
	for _, c := range cids {
		seen[c.KeyString()]++
		if seen[c.KeyString()] == 2 {
			out = append(out, c)
		}
	}
	return out
}
