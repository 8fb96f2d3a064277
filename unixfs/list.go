package unixfs

import (
	"context"

	"github.com/ipfs/go-cid"
)

// List returns what `ipfs ls` lists of c: a directory's entries (see
// ReadDir), or the links of any other dag-pb block (a file's chunks, which
// have no names), in the block's order. A raw block, and a block of another
// codec, has none.
func (r *Reader) List(ctx context.Context, c cid.Cid) ([]DirEntry, error) {
	d, err := r.get(ctx, c)
	if err != nil {
		return nil, err
	}
	if d.node.Kind == KindDirectory {
		return r.readDir(ctx, d)
	}
	return linkEntries(d), nil
}
