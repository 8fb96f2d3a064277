// Package fs is bsfs's FUSE file system, on go-fuse's fs API: content
// addressed by CIDs, read-only, fetched block by block as it is read.
//
// # Namespace
//
//	DIR/<cid>          the content: a UnixFS file's bytes, a UnixFS
//	                   directory (basic or HAMT-sharded) with nested paths,
//	                   a symlink; any other block as a file of its bytes
//	DIR/raw/<cid>      the block itself, whatever its codec
//	ls DIR             the roots this node added (Config.Roots)
//
// A CID may be written in any multibase, version 0 or 1. A name that is not
// a CID bsfs can fetch fails with ENOENT before anything is fetched. Modes
// and modification times come from UnixFS when recorded, else 0444 for files
// and 0555 for directories; sizes come from the DAG's root block. Every file
// and directory carries the extended attribute user.bsfs.cid, and files
// user.bsfs.local: the fraction of their bytes already stored locally, which
// grows as a fetch proceeds.
//
// # Error handling
//
// Each operation maps its error with errors.Is (see errno.go): a name not
// in a directory is ENOENT, a path through a file ENOTDIR, an interrupted
// request EINTR, and anything else, including the read time-out, EIO with a
// log line naming the CID. A panic in an operation is recovered by go-fuse's
// request loop: that call fails with EIO and the panic is logged with its
// stack (MountOptions.PanicHandler); the mount keeps serving. A read that
// fails with EIO is followed by the kernel's further requests for the same
// pages within the same read(2) (the rest of its read-ahead, then the page
// alone); those arriving on the handle within a second fail at once, so the
// reader waits one read time-out rather than three. A mount whose
// process died (stat of the mountpoint fails with ENOTCONN) is detached by
// the next Mount at the same place; a live mount there (the mount point is
// a mount's root: statx's STATX_ATTR_MOUNT_ROOT), bsfs or any other file
// system, is refused with ErrMountPointInUse naming it from
// /proc/self/mountinfo, rather than hidden under a second mount.
//
// # Who mounts
//
// As root, Mount asks the kernel directly. Any other user mounts, unmounts
// and detaches through FUSE's setuid helper fusermount3, which opens
// /dev/fuse as that user and passes the descriptor back: /dev/fuse must be
// open to users (mode 0666, as distributions ship it). Check, which Mount
// runs first, says so plainly when it is not, or when fusermount3 is not
// installed, instead of fusermount3's exit status.
//
// # Kernel caching
//
// Content named by a CID never changes, so the kernel may keep everything:
// names, attributes and failed lookups for Config.CacheTimeout (an hour by
// default), and file pages across opens (FOPEN_KEEP_CACHE). Inode numbers
// of files derive from their CIDs, so one file reached by two paths shares
// one page cache. Only errors that say a name does not exist are cached;
// time-outs and interruptions are not, and the next access fetches again.
// The kernel is allowed reads of up to 1 MiB per request.
//
// # Interrupts
//
// Every operation that fetches passes the request's context down to the
// exchange; the kernel cancels it when the calling process gets a signal,
// the operation returns EINTR, and the exchange cancels the want on the
// wire once nobody waits for the block. For this to hold for reads too, the
// mount disables asynchronous reads (MountOptions.SyncRead): the kernel
// never interrupts its background read-ahead requests, which would keep
// wants alive after the reader is gone and leave a reader that catches
// signals waiting. Reading ahead is done by unixfs instead, which keeps
// Config.UnixFS.Window leaves in flight ahead of a sequential reader.
// Config.ReadTimeout, when set, bounds each fetching operation; no request
// waits in uninterruptible sleep.
//
// # Parallelism
//
// go-fuse serves requests concurrently, and so does bsfs: reads on one
// handle run in parallel (unixfs.File is safe for concurrent use, each read
// fetches only the leaves it covers), a directory listing fetches every
// child's root at once through StatMany (bounded by
// Config.UnixFS.Parallelism) and keeps the results for the lookups the
// kernel sends right after (READDIRPLUS), so `ls -l` of a large directory
// costs one round of parallel fetches rather than one fetch per entry.
// Nodes are immutable after creation except a directory's listing, guarded
// by its mutex, and a file's size, below.
//
// # Sizes from links
//
// A child that is a block of the raw codec (how `add` stores a file of one
// block) is always a regular file whose size is the block's length, which
// the parent's link records as its Tsize. Listings and lookups take such a
// child from the link and fetch nothing, so `ls -l` of a directory of small
// files reads the directory's blocks alone. The parent is verified but its
// Tsize is only its author's claim: opening the file reads the block, and
// if the claim was wrong the file takes the block's true size, the kernel
// is told to drop the attributes it kept (FUSE_NOTIFY_INVAL_INODE) and a
// warning names the CID. Reads always return the block's true bytes.
//
// # Deadlocks
//
// No lock is held while fetching. A process must not read its own mount
// from inside a FUSE operation; tests that read the mount from the serving
// process do so only from test goroutines, and start child processes (cat)
// without file descriptors or a working directory inside the mount, which
// would make fork/exec issue FUSE requests the parent must serve.
package fs
