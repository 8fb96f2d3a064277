// Package dagwalk walks the links of a DAG of dag-pb and raw blocks depth
// first, in the order of Kubo's 'ipfs refs -r' and 'ipfs dag stat':
// each link is visited before the links below it, a block's links in
// their order. The walk fetches every block it visits, a window of a
// block's children at once, and keeps only their links.
package dagwalk

import (
	"context"
	"fmt"
	"strings"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multicodec"

	"github.com/bsfs/bsfs/block"
)

// window is how many of a block's children are fetched at once.
const window = 64

// Getter is where the walk's blocks come from: the local store, or the
// exchange, which fetches what is missing.
type Getter interface {
	GetBlock(ctx context.Context, c cid.Cid) (block.Block, error)
	// GetBlocks delivers the blocks in any order; the stream ends, saying
	// why, before delivering them all only if it cannot.
	GetBlocks(ctx context.Context, cids []cid.Cid) (*block.Stream, error)
}

// Edge is a link the walk visits.
type Edge struct {
	From, To cid.Cid
	// Name is the link's name ("" for a file's chunks).
	Name string
	// Depth is 1 for the root's links, 2 for theirs, and so on.
	Depth int
	// Size is the length of To's block.
	Size int
}

// Options choose which links a walk visits, as the flags of Kubo's
// 'ipfs refs' do.
type Options struct {
	// MaxDepth stops the walk at links of that depth (1: the root's links
	// only); negative means no limit.
	MaxDepth int
	// Unique visits each block once: a link to a block visited before is
	// skipped, and so is what is below it (unless, with a MaxDepth, it is
	// now reached at a smaller depth, when the walk goes below it again
	// without visiting it again).
	Unique bool
}

// Walker walks DAGs; a Unique walker skips, in each walk, the blocks its
// earlier walks visited too, as Kubo's refs does across its arguments.
type Walker struct {
	g    Getter
	opts Options
	seen map[string]int // Unique: the smallest depth each block was reached at
}

// New returns a walker fetching from g.
func New(g Getter, opts Options) *Walker {
	return &Walker{g: g, opts: opts, seen: map[string]int{}}
}

// Walk fetches root and walks its DAG, calling visit for each link visited;
// an error from visit ends the walk with that error. It returns the length
// of root's block. A block that is neither dag-pb nor raw, or that cannot
// be fetched, ends the walk with an error naming it.
func (w *Walker) Walk(ctx context.Context, root cid.Cid, visit func(Edge) error) (int, error) {
	b, err := w.g.GetBlock(ctx, root)
	if err != nil {
		return 0, err
	}
	links, err := decode(b)
	if err != nil {
		return 0, err
	}
	stack := []*frame{{from: root, links: links, depth: 1}}
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		if f.next == len(f.links) {
			stack = stack[:len(stack)-1]
			continue
		}
		l := f.links[f.next]
		f.next++
		deeper, write := w.decide(l.cid, f.depth)
		if !deeper && !write {
			continue
		}
		child, err := w.child(ctx, f, l.cid)
		if err != nil {
			return 0, err
		}
		if write {
			if err := visit(Edge{From: f.from, To: l.cid, Name: l.name, Depth: f.depth, Size: child.size}); err != nil {
				return 0, err
			}
		}
		if deeper && len(child.links) > 0 {
			stack = append(stack, &frame{from: l.cid, links: child.links, depth: f.depth + 1})
		}
	}
	return len(b.Data), nil
}

// link is a dag-pb link.
type link struct {
	name string
	cid  cid.Cid
}

// node is what the walk keeps of a fetched block.
type node struct {
	size  int
	links []link
	err   error // the block's decoding failed
}

// frame is a block whose links the walk is visiting.
type frame struct {
	from  cid.Cid
	links []link
	depth int // of its links
	next  int // the next link to visit
	// ahead holds the fetched children of a window of links from next.
	ahead map[string]node
}

// decide tells whether the walk goes below the link to c at depth, and
// whether it visits the link, as Kubo's refs does.
func (w *Walker) decide(c cid.Cid, depth int) (deeper, write bool) {
	limited := w.opts.MaxDepth >= 0
	if limited && depth > w.opts.MaxDepth {
		return false, false
	}
	atMax := limited && depth == w.opts.MaxDepth
	if !w.opts.Unique {
		return !atMax, true
	}
	k := block.Key(c)
	old, ok := w.seen[k]
	if ok && (!limited || old <= depth) {
		return false, false
	}
	w.seen[k] = depth
	return !atMax, !ok
}

// child returns the fetched block c, a link of f, fetching the window of
// f's links from c on first if it is not fetched yet. A block of the
// window that fails fails only when the walk reaches it, so that what
// comes before it is visited, as it would be without the window.
func (w *Walker) child(ctx context.Context, f *frame, c cid.Cid) (node, error) {
	k := block.Key(c)
	if n, ok := f.ahead[k]; ok {
		return n, n.err
	}
	want := []cid.Cid{c}
	has := map[string]bool{k: true}
	for _, l := range f.links[f.next:] {
		if len(want) == window {
			break
		}
		lk := block.Key(l.cid)
		if _, seen := w.seen[lk]; !has[lk] && !(seen && w.opts.Unique) {
			has[lk] = true
			want = append(want, l.cid)
		}
	}
	ahead, err := w.fetch(ctx, want)
	f.ahead = ahead
	if n, ok := ahead[k]; ok {
		return n, n.err
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = block.ErrNotFound
	}
	if strings.Contains(err.Error(), c.String()) {
		return node{}, err
	}
	return node{}, fmt.Errorf("get block %s: %w", c, err)
}

// fetch gets and decodes the blocks of cids. A block that is not
// delivered is left out, and the error says why if the getter said.
func (w *Walker) fetch(ctx context.Context, cids []cid.Cid) (map[string]node, error) {
	st, err := w.g.GetBlocks(ctx, cids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]node, len(cids))
	for b := range st.C() {
		links, err := decode(b)
		out[block.Key(b.CID)] = node{size: len(b.Data), links: links, err: err}
	}
	return out, st.Err()
}

// decode returns a block's links.
func decode(b block.Block) ([]link, error) {
	switch codec := b.CID.Prefix().Codec; codec {
	case cid.Raw:
		return nil, nil
	case cid.DagProtobuf:
	default:
		return nil, fmt.Errorf("block %s: codec %s: only dag-pb and raw blocks are walked", b.CID, multicodec.Code(codec))
	}
	pn, err := merkledag.DecodeProtobuf(b.Data)
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", b.CID, err)
	}
	links := make([]link, len(pn.Links()))
	for i, l := range pn.Links() {
		if err := block.CheckCID(l.Cid); err != nil {
			return nil, fmt.Errorf("block %s: link %d: %w", b.CID, i, err)
		}
		links[i] = link{name: l.Name, cid: l.Cid}
	}
	return links, nil
}
