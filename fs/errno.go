package fs

import (
	"context"
	"errors"
	"syscall"

	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/unixfs"
)

// errno maps err, from op on c, to what the caller of the file system sees,
// and logs what the caller cannot tell apart: time-outs and failures.
//
//   - a name not in a directory, or a block the node does not have when it
//     cannot fetch: ENOENT
//   - a path through something that is not a directory: ENOTDIR
//   - opening a directory as a file: EISDIR
//   - the reader was interrupted (the kernel cancelled the request): EINTR
//   - the read time-out passed: EIO, logged with the CID
//   - anything else: EIO, logged with the CID
func (m *mnt) errno(err error, op string, c cid.Cid) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, unixfs.ErrNotFound), errors.Is(err, block.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, unixfs.ErrNotDir):
		return syscall.ENOTDIR
	case errors.Is(err, unixfs.ErrNotFile):
		return syscall.EISDIR
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, context.DeadlineExceeded):
		m.log.Warn("fuse: read time-out", "op", op, "cid", c, "timeout", m.readTimeout)
		return syscall.EIO
	}
	m.log.Error("fuse: "+op+" failed", "cid", c, "err", err)
	return syscall.EIO
}
