package fs

import (
	"context"
	"hash/fnv"
	"log/slog"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/unixfs"
)

// mnt is what every node of one mount shares. Read-only after Mount but
// for open and names, which have their own locks.
type mnt struct {
	r           *unixfs.Reader
	g           unixfs.BlockGetter
	haser       unixfs.Haser // may be nil
	roots       Roots        // may be nil
	readTimeout time.Duration
	log         *slog.Logger
	usage       func() (total, used uint64) // may be nil
	readLatency func(seconds float64)       // may be nil
	// cacheTimeout bounds how long the kernel keeps what it is told.
	cacheTimeout time.Duration
	names        *nameCache // nil without a resolver: no DIR/ipns
	open         openFiles
}

// fetchCtx bounds a fetch by the read time-out, if any. ctx is the
// request's: the kernel's interrupt cancels it.
func (m *mnt) fetchCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if m.readTimeout > 0 {
		return context.WithTimeout(ctx, m.readTimeout)
	}
	return context.WithCancel(ctx)
}

// Default permissions when UnixFS records none.
const (
	fileMode = 0o444
	dirMode  = 0o555
)

// Namespaces of inode numbers, so that a CID's content and its raw block
// never share one.
const (
	inoContent byte = iota
	inoRaw
)

// ino derives a stable inode number from c, so that the same file reached
// by two paths is one inode with one page cache.
func ino(space byte, c cid.Cid) uint64 {
	h := fnv.New64a()
	h.Write([]byte{space})
	h.Write(c.Bytes())
	n := h.Sum64()
	if n <= fuse.FUSE_ROOT_ID {
		n += 2
	}
	return n
}

// newChild makes the inode for n below parent and fills out.
func (m *mnt) newChild(ctx context.Context, parent *fs.Inode, n unixfs.Node, out *fuse.EntryOut) *fs.Inode {
	fillAttr(n, &out.Attr)
	switch n.Kind {
	case unixfs.KindDirectory:
		// Directories get a fresh inode per path: the kernel allows a
		// directory only one parent.
		return parent.NewInode(ctx, &dirNode{m: m, node: n}, fs.StableAttr{Mode: syscall.S_IFDIR})
	case unixfs.KindSymlink:
		return parent.NewInode(ctx, &symlinkNode{node: n}, fs.StableAttr{Mode: syscall.S_IFLNK, Ino: ino(inoContent, n.CID)})
	default:
		return parent.NewInode(ctx, &fileNode{m: m, node: n}, fs.StableAttr{Mode: syscall.S_IFREG, Ino: ino(inoContent, n.CID)})
	}
}

// fillAttr sets a's type, permissions, size and time from n.
func fillAttr(n unixfs.Node, a *fuse.Attr) {
	perm := uint32(n.Mode.Perm())
	size := n.Size
	switch n.Kind {
	case unixfs.KindDirectory:
		a.Mode = syscall.S_IFDIR | orDefault(perm, dirMode)
		a.Nlink = 2
	case unixfs.KindSymlink:
		a.Mode = syscall.S_IFLNK | 0o777
		size = uint64(len(n.Target))
		a.Nlink = 1
	default:
		a.Mode = syscall.S_IFREG | orDefault(perm, fileMode)
		a.Nlink = 1
	}
	a.Size = size
	a.Blocks = (size + 511) / 512
	a.Blksize = 256 << 10
	if !n.ModTime.IsZero() {
		a.SetTimes(nil, &n.ModTime, &n.ModTime)
	}
}

func orDefault(perm, def uint32) uint32 {
	if perm == 0 {
		return def
	}
	return perm
}

// dirEntry is n's line in a directory listing.
func dirEntry(name string, n unixfs.Node) fuse.DirEntry {
	var a fuse.Attr
	fillAttr(n, &a)
	e := fuse.DirEntry{Name: name, Mode: a.Mode}
	if n.Kind != unixfs.KindDirectory {
		e.Ino = ino(inoContent, n.CID)
	}
	return e
}

// symlinkNode is a UnixFS symlink.
type symlinkNode struct {
	fs.Inode
	node unixfs.Node
}

// Getattr reports the symlink's attributes.
func (s *symlinkNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fillAttr(s.node, &out.Attr)
	return 0
}

// Readlink returns the target recorded in the DAG.
func (s *symlinkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(s.node.Target), 0
}
