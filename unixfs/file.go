package unixfs

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
)

const (
	// leafSize is the chunk size of the importers' DAGs, the unit in which
	// Window is counted.
	leafSize = 256 << 10
	// maxInodes bounds the intermediate nodes a File caches (each at most
	// a few KiB: 174 links).
	maxInodes = 1024
	// maxDepth bounds the levels of a file DAG.
	maxDepth = 64
	// leafOverhead is the most a dag-pb leaf's Tsize exceeds its content
	// size by (its protobuf framing, mode and mtime); a node with even one
	// link exceeds it. LocalFraction uses it to avoid reading local leaves.
	leafOverhead = 40
)

// File reads the content of a UnixFS file (or an opaque block). It is safe
// for concurrent use. Close it to stop its prefetching.
type File struct {
	// read-only after Open, no lock
	r      *Reader
	g      BlockGetter // the file's session, if the getter has sessions
	node   Node
	whole  []byte // the content, when the root block holds all of it
	root   *inode // otherwise the root node
	window uint64 // bytes of leaves prefetched at most
	budget uint64 // bytes of leaves cached at most: the window, the leaf
	// being read and the one before it

	ctx    context.Context // cancelled by Close; parent of every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup // the prefetcher and the batches' goroutines
	kick   chan struct{}  // wakes the prefetcher

	mu         sync.Mutex
	closed     bool                     // guarded by mu
	leaves     map[string]*list.Element // guarded by mu: key -> *cachedLeaf in lru
	lru        *list.List               // guarded by mu: most recent first
	cached     uint64                   // guarded by mu: bytes in leaves
	inodes     map[string]*inode        // guarded by mu
	inodeOrder []string                 // guarded by mu: FIFO eviction of inodes
	pending    map[string]*call         // guarded by mu: blocks being fetched
	prefetched []*batch                 // guarded by mu: batches the prefetcher holds
	started    bool                     // guarded by mu: a read happened
	lastEnd    uint64                   // guarded by mu: end of the last read
	seqPos     uint64                   // guarded by mu: where the window starts
	seq        bool                     // guarded by mu: reads are sequential
}

// inode is an intermediate node of a file DAG: inline data, then children.
type inode struct {
	data []byte
	kids []kid
	size uint64 // len(data) + the kids' sizes
}

// kid is a child of an inode.
type kid struct {
	c     cid.Cid
	off   uint64 // from the start of the parent's content
	size  uint64 // content size, from blocksizes
	tsize uint64 // the link's cumulative DAG size
	leaf  bool   // known to be a leaf; guarded by File.mu
}

func newInode(d *decoded) *inode {
	n := &inode{data: d.data, kids: make([]kid, len(d.links))}
	off := uint64(len(d.data))
	for i, l := range d.links {
		n.kids[i] = kid{c: l.cid, off: off, size: d.sizes[i], tsize: l.size, leaf: l.cid.Prefix().Codec != cid.DagProtobuf}
		off += d.sizes[i]
	}
	n.size = off
	return n
}

type cachedLeaf struct {
	key  string
	data []byte
	read bool // served to a reader: evicted before the prefetched ones
}

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

// Open opens the file c, which must be KindFile or KindOpaque.
func (r *Reader) Open(ctx context.Context, c cid.Cid) (*File, error) {
	d, err := r.get(ctx, c)
	if err != nil {
		return nil, err
	}
	switch d.node.Kind {
	case KindFile, KindOpaque:
	default:
		return nil, fmt.Errorf("%s is a %s: %w", c, d.node.Kind, ErrNotFile)
	}
	fctx, cancel := context.WithCancel(context.Background())
	f := &File{
		r:       r,
		node:    d.node,
		window:  uint64(r.cfg.Window) * leafSize,
		budget:  uint64(r.cfg.Window+2) * leafSize,
		ctx:     fctx,
		cancel:  cancel,
		kick:    make(chan struct{}, 1),
		leaves:  make(map[string]*list.Element),
		lru:     list.New(),
		inodes:  make(map[string]*inode),
		pending: make(map[string]*call),
	}
	f.g = r.g
	if s, ok := r.g.(Sessioner); ok {
		f.g = s.NewSession(fctx) // ends with Close
	}
	// decode has checked that the data and blocksizes add up to the size.
	if len(d.links) == 0 {
		f.whole = d.data
		return f, nil
	}
	f.root = newInode(d)
	f.wg.Go(f.prefetcher)
	return f, nil
}

// Node describes the file.
func (f *File) Node() Node { return f.node }

// ReadAt reads len(p) bytes at off, fetching only the leaves that cover
// them, and returns io.EOF when it reads short at the end of the file.
// Sequential reads keep the next Window leaves in flight. Safe for
// concurrent use; ctx ending abandons the read (and the fetches nobody
// else waits for).
func (f *File) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset", f.node.CID)
	}
	size := f.node.Size
	if uint64(off) >= size {
		return 0, io.EOF
	}
	start := uint64(off)
	end := min(start+uint64(len(p)), size)
	if f.whole != nil {
		n := copy(p, f.whole[start:end])
		if n < len(p) {
			return n, io.EOF
		}
		return n, nil
	}
	seq := f.noteRead(start, end)
	for pos := start; pos < end; {
		ps, err := f.plan(ctx, pos, end, f.r.cfg.Window)
		if err != nil {
			return int(pos - start), err
		}
		var cids []cid.Cid
		for _, pc := range ps {
			if pc.data == nil {
				cids = append(cids, pc.c)
			}
		}
		var ahead []cid.Cid
		if seq && len(ps) > 0 && f.mustRequest(cids) {
			// The prefetch fell behind: this read requests the window.
			last := ps[len(ps)-1]
			ahead = f.windowFrom(ctx, last.off+last.size)
		}
		calls, err := f.fetch(ctx, cids, ahead)
		if err != nil {
			return int(pos - start), err
		}
		before := pos
		for _, pc := range ps {
			data := pc.data
			if data == nil {
				data, calls = calls[0].data, calls[1:]
			}
			if uint64(len(data)) != pc.size {
				return int(pos - start), fmt.Errorf("%w: %s: leaf %s has %d bytes, blocksizes say %d", ErrMalformed, f.node.CID, pc.c, len(data), pc.size)
			}
			lo, hi := max(pc.off, pos), min(pc.off+pc.size, end)
			if lo >= hi {
				continue
			}
			copy(p[lo-start:hi-start], data[lo-pc.off:hi-pc.off])
			pos = hi
		}
		if pos == before {
			return int(pos - start), fmt.Errorf("%w: %s: nothing covers offset %d", ErrMalformed, f.node.CID, pos)
		}
	}
	if n := int(end - start); n < len(p) {
		return n, io.EOF
	}
	return len(p), nil
}

// noteRead records a read of [start, end). A read that moves forward
// from near the end of the previous one (or the first read, at 0) moves
// the prefetch window on; a read far from it stops the prefetch; reads in
// between (out of order by a little, as the kernel's parallel readahead
// sends them) change nothing.
func (f *File) noteRead(start, end uint64) (seq bool) {
	const slack = 1 << 20
	f.mu.Lock()
	var far bool
	switch {
	case !f.started:
		seq, far = start == 0, start != 0
	case start+slack < f.lastEnd || start > f.lastEnd+slack:
		far = true
	case end > f.lastEnd:
		seq = true
	}
	f.started = true
	switch {
	case seq:
		f.seq = true
		f.seqPos = max(f.seqPos, end)
		f.lastEnd = end
	case far:
		f.seq = false
		f.seqPos = end
		f.lastEnd = end
		f.releaseLocked(f.prefetched)
		f.prefetched = nil
	}
	f.mu.Unlock()
	if seq {
		select {
		case f.kick <- struct{}{}:
		default:
		}
	}
	return seq
}

// mustRequest reports whether some of cids are neither cached nor being
// fetched.
func (f *File) mustRequest(cids []cid.Cid) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cids {
		if k := block.Key(c); f.leaves[k] == nil && f.pending[k] == nil {
			return true
		}
	}
	return false
}

// windowFrom returns the leaves of the window that starts at pos; nil if
// planning it fails (the reads that need them will tell).
func (f *File) windowFrom(ctx context.Context, pos uint64) []cid.Cid {
	if pos >= f.node.Size {
		return nil
	}
	ps, err := f.plan(ctx, pos, min(pos+f.window, f.node.Size), f.r.cfg.Window)
	if err != nil {
		return nil
	}
	var out []cid.Cid
	for _, pc := range ps {
		if pc.data == nil {
			out = append(out, pc.c)
		}
	}
	return out
}

// holdForPrefetchLocked makes b one of the batches the prefetcher holds.
func (f *File) holdForPrefetchLocked(b *batch) {
	b.holds++
	kept := f.prefetched[:0]
	for _, pb := range f.prefetched {
		if pb.left > 0 {
			kept = append(kept, pb)
		}
	}
	f.prefetched = append(kept, b)
}

// prefetcher keeps the leaves of [seqPos, seqPos+window) requested while
// reads are sequential, in batches of at least a quarter window.
func (f *File) prefetcher() {
	minBatch := max(1, f.r.cfg.Window/4)
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-f.kick:
		}
		f.mu.Lock()
		pos, seq := f.seqPos, f.seq
		f.mu.Unlock()
		if !seq || pos >= f.node.Size {
			continue
		}
		to := min(pos+f.window, f.node.Size)
		ps, err := f.plan(f.ctx, pos, to, f.r.cfg.Window)
		if err != nil {
			continue // a reader meets the error itself
		}
		f.mu.Lock()
		var fresh []*call
		for _, pc := range ps {
			if pc.data != nil {
				continue
			}
			k := block.Key(pc.c)
			if f.leaves[k] != nil || f.pending[k] != nil {
				continue
			}
			cl := &call{c: pc.c, done: make(chan struct{})}
			f.pending[k] = cl
			fresh = append(fresh, cl)
		}
		last := len(ps) > 0 && ps[len(ps)-1].off+ps[len(ps)-1].size >= f.node.Size
		if f.seq && !f.closed && len(fresh) > 0 && (len(fresh) >= minBatch || last) {
			f.holdForPrefetchLocked(f.startBatchLocked(fresh))
		} else {
			for _, cl := range fresh {
				delete(f.pending, block.Key(cl.c))
			}
		}
		f.mu.Unlock()
	}
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
		} else if in := f.inodes[block.Key(k.c)]; in != nil {
			out = f.walkLocked(in, start, from, to, max, out)
		} else {
			out = append(out, piece{off: start, size: k.size, c: k.c, unknown: true, parent: n, idx: i})
		}
	}
	return out
}

// fetch returns the calls of cids once all are done: cached leaves at
// once, blocks in flight shared, the rest requested with one GetBlocks.
// If it requests any, the blocks of ahead that are neither cached nor in
// flight join the request, held for the prefetch.
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
		if e := f.leaves[k]; e != nil {
			f.lru.MoveToFront(e)
			cl := e.Value.(*cachedLeaf)
			cl.read = true
			done := make(chan struct{})
			close(done)
			calls[i] = &call{c: c, done: done, data: cl.data}
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
			if k := block.Key(c); f.leaves[k] == nil && f.pending[k] == nil {
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
	ch, err := f.g.GetBlocks(ctx, cids)
	if err == nil {
		for blk := range ch {
			f.finishBlock(b, byKey, blk)
		}
	}
	// The channel closed early: ask again for what it left out, one
	// block at a time, until one fails.
	for _, c := range cids {
		if err != nil {
			break
		}
		if byKey[block.Key(c)] == nil {
			continue
		}
		var blk block.Block
		if blk, err = f.r.refetch(ctx, c); err == nil {
			f.finishBlock(b, byKey, blk)
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
	case err != nil:
	case in == nil:
		f.putLeafLocked(k, data)
	default:
		// Cached before the call leaves pending, so that no walk in
		// between finds it in neither and fetches it again.
		f.putInodeLocked(k, in)
	}
	b.left--
	close(cl.done)
}

// putLeafLocked caches a leaf and keeps the cache within its budget: the
// least recently read leaves go first, then, if need be, the oldest of
// those prefetched and not read yet.
func (f *File) putLeafLocked(k string, data []byte) {
	if f.closed {
		return
	}
	if e := f.leaves[k]; e != nil {
		f.lru.MoveToFront(e)
		return
	}
	f.leaves[k] = f.lru.PushFront(&cachedLeaf{key: k, data: data})
	f.cached += uint64(len(data))
	for f.cached > f.budget && f.lru.Len() > 1 {
		victim := f.lru.Back()
		for e := victim; e != nil; e = e.Prev() {
			if e.Value.(*cachedLeaf).read {
				victim = e
				break
			}
		}
		old := f.lru.Remove(victim).(*cachedLeaf)
		delete(f.leaves, old.key)
		f.cached -= uint64(len(old.data))
	}
}

func (f *File) putInodeLocked(k string, in *inode) {
	if f.closed || f.inodes[k] != nil {
		return
	}
	if len(f.inodeOrder) >= maxInodes {
		delete(f.inodes, f.inodeOrder[0])
		f.inodeOrder = f.inodeOrder[1:]
	}
	f.inodes[k] = in
	f.inodeOrder = append(f.inodeOrder, k)
}

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
		in := f.inodes[block.Key(k.c)]
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

// Close stops the prefetching, cancels the fetches in flight and waits for
// their goroutines. Reads after Close fail with fs.ErrClosed.
func (f *File) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
	f.mu.Lock()
	f.leaves, f.inodes, f.inodeOrder, f.prefetched = nil, nil, nil, nil
	f.lru.Init()
	f.cached = 0
	f.mu.Unlock()
	return nil
}
