package fs

import (
	"context"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/unixfs"
)

// openFlags keep the kernel's page cache of a file across opens: content
// addressed by a CID never changes.
const openFlags = fuse.FOPEN_KEEP_CACHE

// fileNode is a UnixFS file, or any block that is not UnixFS, read as its
// bytes.
type fileNode struct {
	fs.Inode
	m *mnt

	mu   sync.Mutex
	node unixfs.Node // guarded by mu: Open replaces a claimed size by the true one
}

// Getattr reports the size and mode recorded in the DAG's root (or, for a
// raw block not yet opened, the size its directory's link records).
func (f *fileNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fillAttr(f.described(), &out.Attr)
	return 0
}

// described returns what is known of the file.
func (f *fileNode) described() unixfs.Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.node
}

// settle replaces a size the directory claimed by n's, read from the block
// itself. When the claim was wrong, the kernel is told to drop the
// attributes it keeps, so that the next stat or read past the claimed end
// asks again.
func (f *fileNode) settle(n unixfs.Node) {
	f.mu.Lock()
	if !f.node.SizeClaimed {
		f.mu.Unlock()
		return
	}
	claimed := f.node.Size
	f.node = n
	f.mu.Unlock()
	if claimed != n.Size {
		f.m.log.Warn("fuse: directory link records the wrong size", "cid", n.CID, "claimed", claimed, "size", n.Size)
		f.NotifyContent(-1, 0) // attributes only
	}
}

// Open opens the DAG for reading; it fails with EROFS for writing.
func (f *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return nil, 0, syscall.EROFS
	}
	ctx, cancel := f.m.fetchCtx(ctx)
	defer cancel()
	c := f.described().CID
	uf, err := f.m.r.Open(ctx, c)
	if err != nil {
		return nil, 0, f.m.errno(err, "open", c)
	}
	f.settle(uf.Node())
	f.m.open.add(uf)
	return &fileHandle{m: f.m, f: uf}, openFlags, 0
}

// openFiles are the files a mount opened that the kernel has not released.
// The kernel drops the releases still queued when the mount goes away, so
// the mount closes what is left once it has ended.
type openFiles struct {
	mu    sync.Mutex
	files map[*unixfs.File]struct{}
}

func (o *openFiles) add(f *unixfs.File) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.files == nil {
		o.files = make(map[*unixfs.File]struct{})
	}
	o.files[f] = struct{}{}
}

func (o *openFiles) remove(f *unixfs.File) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.files, f)
}

// closeAll closes the files not released.
func (o *openFiles) closeAll() {
	o.mu.Lock()
	files := o.files
	o.files = nil
	o.mu.Unlock()
	for f := range files {
		f.Close()
	}
}

// retryWindow is how long after a read of a handle fails with EIO the
// kernel's further requests for the same pages fail at once. A failed
// read-ahead request is followed, within the same read(2), by the rest of
// the read-ahead and then by a request for the page alone; each would
// otherwise wait the whole read time-out again.
const retryWindow = time.Second

// fileHandle is one open file. The kernel may send reads on it
// concurrently; unixfs.File serves them in parallel.
type fileHandle struct {
	m *mnt
	f *unixfs.File

	mu       sync.Mutex
	failedAt time.Time // guarded by mu: when a read last failed with EIO
	// failed is the range [failed[0], failed[1]] of that read, extended by
	// the requests that continued it and failed at once. Guarded by mu.
	failed [2]int64
}

// Read fills dest from off, fetching the leaves it covers. The kernel
// interrupting the reader cancels ctx.
func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h.m.readLatency != nil {
		defer func(start time.Time) { h.m.readLatency(time.Since(start).Seconds()) }(time.Now())
	}
	end := off + int64(len(dest))
	if h.retries(off, end) {
		return nil, syscall.EIO
	}
	ctx, cancel := h.m.fetchCtx(ctx)
	defer cancel()
	n, err := h.f.ReadAt(ctx, dest, off)
	// Only io.EOF itself is the end of the file: a fetch error may wrap it.
	if err != nil && err != io.EOF {
		errno := h.m.errno(err, "read", h.f.Node().CID)
		if errno == syscall.EIO {
			h.mu.Lock()
			h.failedAt, h.failed = time.Now(), [2]int64{off, end}
			h.mu.Unlock()
		}
		return nil, errno
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// retries reports whether a request for [off, end) starts within or right
// after a read that failed less than retryWindow ago, and if so extends the
// failed range to end.
func (h *fileHandle) retries(off, end int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if off < h.failed[0] || off > h.failed[1] || time.Since(h.failedAt) >= retryWindow {
		return false
	}
	h.failed[1] = max(h.failed[1], end)
	return true
}

// Release closes the file, ending its prefetch.
func (h *fileHandle) Release(ctx context.Context) syscall.Errno {
	h.m.open.remove(h.f)
	if err := h.f.Close(); err != nil {
		return h.m.errno(err, "close", h.f.Node().CID)
	}
	return 0
}

// rawNode is a block's bytes, whatever its codec.
type rawNode struct {
	fs.Inode
	m    *mnt
	c    cid.Cid
	size uint64
}

// Getattr reports the block's length.
func (r *rawNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fillAttr(unixfs.Node{CID: r.c, Kind: unixfs.KindOpaque, Size: r.size}, &out.Attr)
	return 0
}

// Open fetches the block; the handle keeps it until released.
func (r *rawNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return nil, 0, syscall.EROFS
	}
	ctx, cancel := r.m.fetchCtx(ctx)
	defer cancel()
	b, err := r.m.g.GetBlock(ctx, r.c)
	if err != nil {
		return nil, 0, r.m.errno(err, "get block", r.c)
	}
	return rawHandle(b.Data), openFlags, 0
}

// rawHandle is an open raw block: its bytes.
type rawHandle []byte

// Read serves the bytes Open fetched.
func (h rawHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= int64(len(h)) {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), int64(len(h)))
	return fuse.ReadResultData(h[off:end]), 0
}
