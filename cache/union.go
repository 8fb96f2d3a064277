package cache

import (
	"context"
	"errors"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/block"
)

// Reader is a read-only block store, such as a Kubo repository's blocks/
// directory opened read-only.
type Reader interface {
	Get(ctx context.Context, c cid.Cid) (block.Block, error)
	GetSize(ctx context.Context, c cid.Cid) (int, error)
	Has(ctx context.Context, c cid.Cid) (bool, error)
}

// Union is a Store that reads Own, then Shared, and writes, deletes and
// lists Own only: Shared is served as it is and never changed.
type Union struct {
	Own    Store
	Shared Reader
}

var _ Store = Union{}

// Get reads c from Own, else from Shared.
func (u Union) Get(ctx context.Context, c cid.Cid) (block.Block, error) {
	b, err := u.Own.Get(ctx, c)
	if errors.Is(err, block.ErrNotFound) {
		return u.Shared.Get(ctx, c)
	}
	return b, err
}

// GetSize returns the size of c in Own, else in Shared.
func (u Union) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	n, err := u.Own.GetSize(ctx, c)
	if errors.Is(err, block.ErrNotFound) {
		return u.Shared.GetSize(ctx, c)
	}
	return n, err
}

// Has reports whether Own or Shared stores c.
func (u Union) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if has, err := u.Own.Has(ctx, c); has || err != nil {
		return has, err
	}
	return u.Shared.Has(ctx, c)
}

// Expect tells Own that the blocks cids may be put soon.
func (u Union) Expect(cids []cid.Cid) { expect(u.Own, cids) }

// Put stores b in Own.
func (u Union) Put(ctx context.Context, b block.Block) error { return u.Own.Put(ctx, b) }

// Delete deletes c from Own.
func (u Union) Delete(ctx context.Context, c cid.Cid) error { return u.Own.Delete(ctx, c) }

// AllKeys lists Own's blocks.
func (u Union) AllKeys(ctx context.Context) (<-chan mh.Multihash, error) { return u.Own.AllKeys(ctx) }
