package unixfs

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
)

const (
	// leafSize is the chunk size of the importers' DAGs, the unit in which
	// Window is counted.
	leafSize = 256 << 10
	// maxDepth bounds the levels of a file DAG.
	maxDepth = 64
	// keptRead is how many leaves a File keeps once read: those a read
	// at most 1 MiB behind the last one (the slack of noteRead) and a
	// request of 1 MiB (the mount's largest) may need again.
	keptRead = 2 * (1 << 20) / leafSize
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

	ctx    context.Context // cancelled by Close; parent of every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup // the prefetcher and the batches' goroutines
	kick   chan struct{}  // wakes the prefetcher

	mu         sync.Mutex
	closed     bool             // guarded by mu
	leaves     *leafCache       // guarded by mu
	inodes     *inodeCache      // guarded by mu
	pending    map[string]*call // guarded by mu: blocks being fetched
	prefetched []*batch         // guarded by mu: batches the prefetcher holds
	started    bool             // guarded by mu: a read happened
	lastEnd    uint64           // guarded by mu: end of the last read
	seqPos     uint64           // guarded by mu: where the window starts
	seq        bool             // guarded by mu: reads are sequential
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

// Open opens the file c, which must be KindFile or KindOpaque.
func (r *Reader) Open(ctx context.Context, c cid.Cid) (*File, error) {
	d, err := r.get(ctx, c)
	if err != nil {
		return nil, err
	}
	return r.open(d)
}

// OpenBlock is Open for a root block the caller holds (from GetMany): it
// fetches nothing for the root.
func (r *Reader) OpenBlock(b block.Block) (*File, error) {
	d, err := decode(b)
	if err != nil {
		return nil, err
	}
	return r.open(d)
}

// open makes the File whose root is d.
func (r *Reader) open(d *decoded) (*File, error) {
	switch d.node.Kind {
	case KindFile, KindOpaque:
	default:
		return nil, fmt.Errorf("%s is a %s: %w", d.node.CID, d.node.Kind, ErrNotFile)
	}
	fctx, cancel := context.WithCancel(context.Background())
	f := &File{
		r:      r,
		node:   d.node,
		window: uint64(r.cfg.Window) * leafSize,
		ctx:    fctx,
		cancel: cancel,
		kick:   make(chan struct{}, 1),
		// The leaves cached at most: the window, the leaf being read
		// and the one before it; of those read, no more than a reader
		// a little out of order (the kernel's) may come back to.
		leaves:  newLeafCache(uint64(r.cfg.Window+2)*leafSize, keptRead),
		inodes:  newInodeCache(maxInodes),
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
	f.leaves.clear()
	f.inodes.clear()
	f.prefetched = nil
	f.mu.Unlock()
	return nil
}
