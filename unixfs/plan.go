package unixfs

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
)

// piece is a part of the file's content: inline data, a leaf, or a child
// not known yet to be a leaf or a node.
type piece struct {
	off, size uint64 // in the file
	c         cid.Cid
	data      []byte // inline data
	unknown   bool
	parent    *inode // of an unknown piece
	idx       int
}

// plan returns the pieces covering [from, to), at most max of them (at
// least one), fetching the intermediate nodes it needs on the way.
func (f *File) plan(ctx context.Context, from, to uint64, max int) ([]piece, error) {
	for range maxDepth {
		f.mu.Lock()
		ps := f.walkLocked(f.root, 0, from, to, max, nil)
		f.mu.Unlock()
		var unknown []piece
		var cids []cid.Cid
		for _, pc := range ps {
			if pc.unknown {
				unknown = append(unknown, pc)
				cids = append(cids, pc.c)
			}
		}
		if len(unknown) == 0 {
			return ps, nil
		}
		calls, err := f.fetch(ctx, cids, nil)
		if err != nil {
			return nil, err
		}
		f.mu.Lock()
		for i, u := range unknown {
			cl := calls[i]
			got := uint64(len(cl.data))
			if cl.inode != nil {
				got = cl.inode.size
			} else {
				u.parent.kids[u.idx].leaf = true
			}
			if got != u.size {
				f.mu.Unlock()
				return nil, fmt.Errorf("%w: %s: child %s holds %d bytes, blocksizes say %d", ErrMalformed, f.node.CID, u.c, got, u.size)
			}
			if cl.inode != nil {
				f.putInodeLocked(block.Key(u.c), cl.inode)
			}
		}
		f.mu.Unlock()
	}
	return nil, fmt.Errorf("%w: %s: deeper than %d levels", ErrMalformed, f.node.CID, maxDepth)
}

// walkLocked appends the pieces of n (whose content starts at base) that
// overlap [from, to), up to max.
func (f *File) walkLocked(n *inode, base, from, to uint64, max int, out []piece) []piece {
	if l := uint64(len(n.data)); l > 0 && base < to && base+l > from {
		out = append(out, piece{off: base, size: l, data: n.data})
	}
	for i := range n.kids {
		k := &n.kids[i]
		start := base + k.off
		if start >= to || len(out) >= max {
			break
		}
		if start+k.size <= from {
			continue
		}
		if k.leaf {
			out = append(out, piece{off: start, size: k.size, c: k.c})
		} else if in := f.inodes.get(block.Key(k.c)); in != nil {
			out = f.walkLocked(in, start, from, to, max, out)
		} else {
			out = append(out, piece{off: start, size: k.size, c: k.c, unknown: true, parent: n, idx: i})
		}
	}
	return out
}
