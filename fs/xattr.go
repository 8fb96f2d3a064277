package fs

import (
	"context"
	"strconv"
	"syscall"
)

// The extended attributes of every file and directory.
const (
	xattrCID   = "user.bsfs.cid"   // the node's CID
	xattrLocal = "user.bsfs.local" // files: the fraction of bytes stored locally, "0" to "1"
)

// getxattr copies value into dest, or reports the size needed.
func getxattr(value string, dest []byte) (uint32, syscall.Errno) {
	if len(dest) < len(value) {
		return uint32(len(value)), syscall.ERANGE
	}
	return uint32(copy(dest, value)), 0
}

// listxattr copies the NUL-terminated names into dest, or reports the size
// needed.
func listxattr(dest []byte, names ...string) (uint32, syscall.Errno) {
	var buf []byte
	for _, n := range names {
		buf = append(append(buf, n...), 0)
	}
	if len(dest) < len(buf) {
		return uint32(len(buf)), syscall.ERANGE
	}
	return uint32(copy(dest, buf)), 0
}

// formatFraction formats a local fraction, e.g. "0.25".
func formatFraction(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// Getxattr returns the file's CID and the fraction of it stored locally.
func (f *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	switch attr {
	case xattrCID:
		return getxattr(f.described().CID.String(), dest)
	case xattrLocal:
		if f.m.haser == nil {
			return 0, syscall.ENODATA
		}
		ctx, cancel := f.m.fetchCtx(ctx)
		defer cancel()
		c := f.described().CID
		uf, err := f.m.r.Open(ctx, c)
		if err != nil {
			return 0, f.m.errno(err, "open", c)
		}
		frac, err := uf.LocalFraction(ctx)
		uf.Close()
		if err != nil {
			return 0, f.m.errno(err, "local fraction", c)
		}
		return getxattr(formatFraction(frac), dest)
	}
	return 0, syscall.ENODATA
}

// Listxattr names the file's attributes.
func (f *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return listxattr(dest, xattrCID, xattrLocal)
}

// Getxattr returns the directory's CID.
func (d *dirNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if attr == xattrCID {
		return getxattr(d.node.CID.String(), dest)
	}
	return 0, syscall.ENODATA
}

// Listxattr names the directory's attribute.
func (d *dirNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return listxattr(dest, xattrCID)
}

// Getxattr returns the block's CID and whether it is stored locally.
func (r *rawNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	switch attr {
	case xattrCID:
		return getxattr(r.c.String(), dest)
	case xattrLocal:
		if r.m.haser == nil {
			return 0, syscall.ENODATA
		}
		has, err := r.m.haser.Has(ctx, r.c)
		if err != nil {
			return 0, r.m.errno(err, "has", r.c)
		}
		if has {
			return getxattr("1", dest)
		}
		return getxattr("0", dest)
	}
	return 0, syscall.ENODATA
}

// Listxattr names the block's attributes.
func (r *rawNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return listxattr(dest, xattrCID, xattrLocal)
}
