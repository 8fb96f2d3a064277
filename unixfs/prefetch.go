package unixfs

import (
	"context"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
)

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
		if k := block.Key(c); !f.leaves.has(k) && f.pending[k] == nil {
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
			// Leaves the reader has passed while this was planned may be
			// gone from the cache already: they are not wanted again.
			if pc.data != nil || pc.off+pc.size <= f.seqPos {
				continue
			}
			k := block.Key(pc.c)
			if f.leaves.has(k) || f.pending[k] != nil {
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
