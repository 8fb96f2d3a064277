package unixfs

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
)

// ErrNoHaser is returned by LocalFraction when Config.Haser is nil.
var ErrNoHaser = errors.New("unixfs: no Haser configured")

// LocalFraction returns the share of the file's bytes whose leaves are
// local, asking Config.Haser. It reads local intermediate nodes but never
// fetches from peers, nor reads a leaf it can tell apart by its link.
func (f *File) LocalFraction(ctx context.Context) (float64, error) {
	h := f.r.cfg.Haser
	if h == nil {
		return 0, ErrNoHaser
	}
	if f.node.Size == 0 {
		return 1, nil
	}
	if f.whole != nil {
		ok, err := h.Has(ctx, f.node.CID)
		if err != nil || !ok {
			return 0, err
		}
		return 1, nil
	}
	local, err := f.localBytes(ctx, h, f.root, 0)
	if err != nil {
		return 0, err
	}
	return float64(local) / float64(f.node.Size), nil
}

func (f *File) localBytes(ctx context.Context, h Haser, n *inode, depth int) (uint64, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("%w: %s: deeper than %d levels", ErrMalformed, f.node.CID, maxDepth)
	}
	total := uint64(len(n.data))
	f.mu.Lock()
	kids := append([]kid(nil), n.kids...)
	f.mu.Unlock()
	for i, k := range kids {
		ok, err := h.Has(ctx, k.c)
		if err != nil {
			return 0, err
		}
		if !ok {
			continue
		}
		f.mu.Lock()
		in := f.inodes.get(block.Key(k.c))
		f.mu.Unlock()
		if in == nil && !k.leaf && k.tsize > 0 && k.tsize <= k.size+leafOverhead {
			k.leaf = true
		}
		if k.leaf {
			total += k.size
			continue
		}
		if in == nil {
			calls, err := f.fetch(ctx, []cid.Cid{k.c}, nil)
			if err != nil {
				return 0, err
			}
			if in = calls[0].inode; in == nil {
				f.mu.Lock()
				n.kids[i].leaf = true
				f.mu.Unlock()
				total += k.size
				continue
			}
			f.mu.Lock()
			f.putInodeLocked(block.Key(k.c), in)
			f.mu.Unlock()
		}
		sub, err := f.localBytes(ctx, h, in, depth+1)
		if err != nil {
			return 0, err
		}
		total += sub
	}
	return total, nil
}
