package fs

import (
	"context"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multibase"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/unixfs"
)

// rawName is the directory of raw blocks at the top of the mount.
const rawName = "raw"

// maxNameLen is the longest name in the mount, in bytes, as statfs tells.
const maxNameLen = 255

// rootNode is the top of the mount: every CID is a name in it, and its
// listing is the roots this node added (not raw, ipfs or ipns, which are
// there to be looked up, as every CID is).
type rootNode struct {
	fs.Inode
	m *mnt
}

// Getattr reports a read-only directory.
func (r *rootNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	topDirAttr(&out.Attr)
	return 0
}

// topDirAttr sets a's type, mode and links to those of the mount's top
// and the directories at its top (raw, ipfs, ipns).
func topDirAttr(a *fuse.Attr) {
	a.Mode = syscall.S_IFDIR | dirMode
	a.Nlink = 2
}

// Lookup resolves a CID to its content; "raw", "ipfs" and "ipns" are the
// directories of raw blocks, of CIDs as Kubo's /ipfs/ paths name them, and
// of names (absent without Config.Names). No CID is spelt as one of these.
// A name that is not a CID bsfs can fetch is ENOENT without a fetch.
func (r *rootNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	var dir fs.InodeEmbedder
	switch name {
	case rawName:
		dir = &rawDir{emptyDir{m: r.m}}
	case ipfsName:
		dir = &ipfsDir{emptyDir{m: r.m}}
	case ipnsName:
		if r.m.names == nil {
			return nil, syscall.ENOENT
		}
		dir = &ipnsDir{emptyDir{m: r.m}}
	default:
		return r.m.lookupCID(ctx, r.EmbeddedInode(), name, out)
	}
	topDirAttr(&out.Attr)
	return r.NewInode(ctx, dir, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

// lookupCID finds the content of the CID name below parent.
func (m *mnt) lookupCID(ctx context.Context, parent *fs.Inode, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	c, ok := parseCID(name)
	if !ok {
		return nil, syscall.ENOENT
	}
	ctx, cancel := m.fetchCtx(ctx)
	defer cancel()
	n, err := m.r.Stat(ctx, c)
	if err != nil {
		return nil, m.errno(err, "stat", c)
	}
	return m.newChild(ctx, parent, n, out), 0
}

// Readdir lists the roots this node added, each with its type.
func (r *rootNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	if r.m.roots == nil {
		return fs.NewListDirStream(nil), 0
	}
	ctx, cancel := r.m.fetchCtx(ctx)
	defer cancel()
	roots, err := r.m.roots.Roots(ctx)
	if err != nil {
		return nil, r.m.errno(err, "list roots", cid.Undef)
	}
	// Each root once, under a name Lookup accepts; a root it would refuse
	// is left out.
	seen := make(map[string]bool, len(roots))
	var kept []cid.Cid
	var names []string
	for _, c := range roots {
		name := rootName(c)
		if _, ok := parseCID(name); ok && !seen[name] {
			seen[name] = true
			kept = append(kept, c)
			names = append(names, name)
		}
	}
	nodes, errs := r.m.r.StatMany(ctx, kept)
	list := make([]fuse.DirEntry, 0, len(kept))
	for i, c := range kept {
		name := names[i]
		if errs[i] != nil {
			if ctx.Err() != nil {
				return nil, r.m.errno(errs[i], "stat", c)
			}
			list = append(list, fuse.DirEntry{Name: name}) // type unknown
			continue
		}
		list = append(list, dirEntry(name, nodes[i]))
	}
	return fs.NewListDirStream(list), 0
}

// rootName names c in the listing: its usual string, or base58btc (the
// densest base a name can use) when that is longer than maxNameLen, as a
// long identity CID makes it.
func rootName(c cid.Cid) string {
	name := c.String()
	if len(name) > maxNameLen {
		name, _ = c.StringOfBase(multibase.Base58BTC) // "" on error: not listed
	}
	return name
}

// parseCID accepts a CID in any multibase, version 0 or 1, that bsfs can
// fetch, in a name the kernel can send: at most maxNameLen bytes, without
// '/' or NUL (which base64 and the identity multibase may hold).
func parseCID(name string) (cid.Cid, bool) {
	if len(name) > maxNameLen || strings.ContainsAny(name, "/\x00") {
		return cid.Undef, false
	}
	c, err := cid.Decode(name)
	if err != nil || block.CheckCID(c) != nil {
		return cid.Undef, false
	}
	return c, true
}

// rawDir holds every block as a file of its bytes, whatever its codec.
type rawDir struct{ emptyDir }

// Lookup fetches the block to learn its size.
func (d *rawDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	c, ok := parseCID(name)
	if !ok {
		return nil, syscall.ENOENT
	}
	ctx, cancel := d.m.fetchCtx(ctx)
	defer cancel()
	b, err := d.m.g.GetBlock(ctx, c)
	if err != nil {
		return nil, d.m.errno(err, "get block", c)
	}
	n := unixfs.Node{CID: c, Kind: unixfs.KindOpaque, Size: uint64(len(b.Data))}
	fillAttr(n, &out.Attr)
	return d.NewInode(ctx, &rawNode{m: d.m, c: c, size: n.Size}, fs.StableAttr{Mode: syscall.S_IFREG, Ino: ino(inoRaw, c)}), 0
}

// statfsBlock is the block size statfs reports sizes in.
const statfsBlock = 4096

// Statfs reports the store's capacity and use, so df shows the cache.
func (r *rootNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize, out.Frsize, out.NameLen = statfsBlock, statfsBlock, maxNameLen
	if r.m.usage == nil {
		return 0
	}
	total, used := r.m.usage()
	free := uint64(0)
	if total > used {
		free = total - used
	}
	out.Blocks = total / statfsBlock
	out.Bfree = free / statfsBlock
	out.Bavail = out.Bfree
	return 0
}
