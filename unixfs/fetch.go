package unixfs

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
)

// call is one block being fetched; concurrent readers of it share it.
type call struct {
	c     cid.Cid
	b     *batch
	done  chan struct{} // closed when the fields below are set
	data  []byte        // a leaf's content
	inode *inode        // or the intermediate node the block is
	err   error
}

// batch is the calls of one GetBlocks call. It is cancelled once nobody
// holds it: no reader waits for it and the prefetcher has let it go.
type batch struct {
	cancel context.CancelFunc
	calls  []*call
	holds  int // guarded by File.mu
	left   int // guarded by File.mu: calls not done
}

// fetch returns the calls of cids once all are done: cached leaves and
// nodes at once, blocks in flight shared, the rest requested with one
// GetBlocks. If it requests any, the blocks of ahead that are neither
// cached nor in flight join the request, held for the prefetch.
func (f *File) fetch(ctx context.Context, cids, ahead []cid.Cid) ([]*call, error) {
	if len(cids) == 0 {
		return nil, nil
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, fmt.Errorf("read %s: %w", f.node.CID, fs.ErrClosed)
	}
	calls := make([]*call, len(cids))
	var fresh []*call
	for i, c := range cids {
		k := block.Key(c)
		if data, ok := f.leaves.read(k); ok {
			done := make(chan struct{})
			close(done)
			calls[i] = &call{c: c, done: done, data: data}
			continue
		}
		// A node fetched since the caller's walk missed it is cached now
		// and no longer pending.
		if in := f.inodes.get(k); in != nil {
			done := make(chan struct{})
			close(done)
			calls[i] = &call{c: c, done: done, inode: in}
			continue
		}
		if cl := f.pending[k]; cl != nil {
			calls[i] = cl
			continue
		}
		cl := &call{c: c, done: make(chan struct{})}
		f.pending[k] = cl
		fresh = append(fresh, cl)
		calls[i] = cl
	}
	if len(fresh) > 0 {
		extra := false
		for _, c := range ahead {
			if k := block.Key(c); !f.leaves.has(k) && f.pending[k] == nil {
				cl := &call{c: c, done: make(chan struct{})}
				f.pending[k] = cl
				fresh = append(fresh, cl)
				extra = true
			}
		}
		b := f.startBatchLocked(fresh)
		if extra {
			f.holdForPrefetchLocked(b)
		}
	}
	var held []*batch
	for _, cl := range calls {
		if cl.b != nil && cl.b.left > 0 && !containsBatch(held, cl.b) {
			cl.b.holds++
			held = append(held, cl.b)
		}
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.releaseLocked(held)
		f.mu.Unlock()
	}()
	for _, cl := range calls {
		select {
		case <-cl.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("read %s: %w", f.node.CID, ctx.Err())
		}
		if cl.err != nil {
			return nil, cl.err
		}
	}
	return calls, nil
}

func containsBatch(bs []*batch, b *batch) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}

// releaseLocked drops a hold on each of bs; a batch nobody holds any more
// is cancelled and its missing blocks forgotten, so that a later read
// asks again.
func (f *File) releaseLocked(bs []*batch) {
	for _, b := range bs {
		b.holds--
		if b.holds > 0 || b.left == 0 {
			continue
		}
		b.cancel()
		for _, cl := range b.calls {
			if k := block.Key(cl.c); f.pending[k] == cl {
				delete(f.pending, k)
			}
		}
	}
}

// startBatchLocked requests the blocks of calls with one GetBlocks call
// in a goroutine of its own.
func (f *File) startBatchLocked(calls []*call) *batch {
	ctx, cancel := context.WithCancel(f.ctx)
	b := &batch{cancel: cancel, calls: calls, left: len(calls)}
	for _, cl := range calls {
		cl.b = b
	}
	f.wg.Go(func() { f.runBatch(ctx, b) })
	return b
}

func (f *File) runBatch(ctx context.Context, b *batch) {
	defer b.cancel()
	byKey := make(map[string]*call, len(b.calls))
	cids := make([]cid.Cid, len(b.calls))
	for i, cl := range b.calls {
		byKey[block.Key(cl.c)] = cl
		cids[i] = cl.c
	}
	st, err := f.g.GetBlocks(ctx, cids)
	if err == nil {
		for blk := range st.C() {
			f.finishBlock(b, byKey, blk)
		}
		err = st.Err()
	}
	for _, c := range cids {
		if err != nil {
			break
		}
		if byKey[block.Key(c)] != nil {
			err = missing(ctx, c) // left out without a word
		}
	}
	if err != nil {
		f.failAll(b, byKey, err)
	}
}

// failAll fails every call left in byKey with err at once, so that no read
// starting after the batch failed can join one of its calls and inherit a
// failure that was decided before it asked (a disk full then, with room now).
func (f *File) failAll(b *batch, byKey map[string]*call, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, cl := range byKey {
		delete(byKey, k)
		f.finishLocked(b, cl, nil, nil, err)
	}
}

// finishBlock completes the call in byKey that blk answers, if any.
func (f *File) finishBlock(b *batch, byKey map[string]*call, blk block.Block) {
	cl := byKey[block.Key(blk.CID)]
	if cl == nil {
		return
	}
	delete(byKey, block.Key(blk.CID))
	data, in, err := classify(blk)
	f.finish(b, cl, data, in, err)
}

// classify reads a block of a file DAG as a leaf's content or a node.
func classify(b block.Block) ([]byte, *inode, error) {
	if b.CID.Prefix().Codec == cid.Raw {
		return b.Data, nil, nil
	}
	d, err := decode(b)
	if err != nil {
		return nil, nil, err
	}
	if d.node.Kind != KindFile {
		return nil, nil, fmt.Errorf("%w: %s in a file DAG is a %s", ErrMalformed, b.CID, d.node.Kind)
	}
	if len(d.links) == 0 {
		return d.data, nil, nil
	}
	return nil, newInode(d), nil
}

// finish completes cl and caches what it got.
func (f *File) finish(b *batch, cl *call, data []byte, in *inode, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finishLocked(b, cl, data, in, err)
}

func (f *File) finishLocked(b *batch, cl *call, data []byte, in *inode, err error) {
	k := block.Key(cl.c)
	cl.data, cl.inode, cl.err = data, in, err
	if f.pending[k] == cl {
		delete(f.pending, k)
	}
	switch {
	case err != nil || f.closed:
	case in == nil:
		f.leaves.put(k, data)
	default:
		// Cached before the call leaves pending, so that no walk in
		// between finds it in neither and fetches it again.
		f.inodes.put(k, in)
	}
	b.left--
	close(cl.done)
}

// putInodeLocked caches in under k unless the file is closed.
func (f *File) putInodeLocked(k string, in *inode) {
	if !f.closed {
		f.inodes.put(k, in)
	}
}
