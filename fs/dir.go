package fs

import (
	"context"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/unixfs"
)

// dirNode is a UnixFS directory, basic or HAMT-sharded.
type dirNode struct {
	fs.Inode
	m    *mnt
	node unixfs.Node

	mu      sync.Mutex
	entries map[string]unixfs.Node // children stat'ed by a listing; nil before one
}

// Getattr reports the directory's mode and time from the DAG.
func (d *dirNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fillAttr(d.node, &out.Attr)
	return 0
}

// Lookup finds name: from the last listing when there was one (the kernel
// looks up every entry after a READDIRPLUS), else by following the
// directory (only the hashed path of name in a HAMT) and fetching the
// child's root.
func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	d.mu.Lock()
	n, ok := d.entries[name]
	listed := d.entries != nil
	d.mu.Unlock()
	if ok {
		return d.m.newChild(ctx, d.EmbeddedInode(), n, out), 0
	}
	if listed {
		return nil, syscall.ENOENT
	}
	ctx, cancel := d.m.fetchCtx(ctx)
	defer cancel()
	e, err := d.m.r.Lookup(ctx, d.node.CID, name)
	if err != nil {
		return nil, d.m.errno(err, "lookup "+name+" in", d.node.CID)
	}
	if n, ok := e.Claimed(); ok {
		return d.m.newChild(ctx, d.EmbeddedInode(), n, out), 0
	}
	n, err = d.m.r.Stat(ctx, e.CID)
	if err != nil {
		return nil, d.m.errno(err, "stat", e.CID)
	}
	return d.m.newChild(ctx, d.EmbeddedInode(), n, out), 0
}

// Readdir lists the directory and describes every child for its type: a
// raw block from its link alone (a file whose size the link records), any
// other child by fetching its root, in parallel (bounded by the reader's
// Parallelism). The results serve the lookups that follow.
func (d *dirNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	ctx, cancel := d.m.fetchCtx(ctx)
	defer cancel()
	ents, err := d.m.r.ReadDir(ctx, d.node.CID)
	if err != nil {
		return nil, d.m.errno(err, "list", d.node.CID)
	}
	nodes, errs := d.describe(ctx, ents)
	list := make([]fuse.DirEntry, len(ents))
	stats := make(map[string]unixfs.Node, len(ents))
	complete := true
	for i, e := range ents {
		if errs[i] != nil {
			if ctx.Err() != nil {
				return nil, d.m.errno(errs[i], "stat", e.CID)
			}
			d.m.errno(errs[i], "stat", e.CID) // logged; listed with an unknown type
			list[i] = fuse.DirEntry{Name: e.Name}
			complete = false
			continue
		}
		list[i] = dirEntry(e.Name, nodes[i])
		stats[e.Name] = nodes[i]
	}
	d.mu.Lock()
	if complete {
		d.entries = stats
	}
	d.mu.Unlock()
	return fs.NewListDirStream(list), 0
}

// describe returns the node of each entry: from the link when it tells
// enough (unixfs.DirEntry.Claimed), else from the child's root block, the
// blocks fetched in one batch. errs[i] is the error of ents[i].
func (d *dirNode) describe(ctx context.Context, ents []unixfs.DirEntry) ([]unixfs.Node, []error) {
	nodes := make([]unixfs.Node, len(ents))
	errs := make([]error, len(ents))
	var fetch []cid.Cid
	var at []int
	for i, e := range ents {
		if n, ok := e.Claimed(); ok {
			nodes[i] = n
			continue
		}
		fetch = append(fetch, e.CID)
		at = append(at, i)
	}
	if len(fetch) == 0 {
		return nodes, errs
	}
	fetched, ferrs := d.m.r.StatMany(ctx, fetch)
	for j, i := range at {
		nodes[i], errs[i] = fetched[j], ferrs[j]
	}
	return nodes, errs
}
