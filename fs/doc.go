// Package fs is bsfs's FUSE file system, on go-fuse's fs API: content
// addressed by CIDs, read-only, fetched block by block as it is read.
//
// # Namespace
//
//	DIR/<cid>          the content: a UnixFS file's bytes, a UnixFS
//	                   directory (basic or HAMT-sharded) with nested paths,
//	                   a symlink; any other block as a file of its bytes
//	DIR/raw/<cid>      the block itself, whatever its codec
//	DIR/ipfs/<cid>     DIR/<cid>, for paths written against Kubo's /ipfs/
//	DIR/ipns/<name>    a symlink to ../<cid>[/path], what an IPNS name or a
//	                   DNSLink domain points at (see Names)
//	ls DIR             the roots this node added (Config.Roots); raw, ipfs
//	                   and ipns are looked up, not listed, as CIDs are
//
// A CID may be written in any multibase, version 0 or 1. A name that is not
// a CID bsfs can fetch fails with ENOENT before anything is fetched. Modes
// and modification times come from UnixFS when recorded, else 0444 for files
// and 0555 for directories; sizes come from the DAG's root block. Every file
// and directory carries the extended attribute user.bsfs.cid, and files
// user.bsfs.local: the fraction of their bytes already stored locally, which
// grows as a fetch proceeds.
//
// # Names
//
// DIR/ipns/<name> takes an IPNS name, a libp2p key written as a peer ID
// (12D3KooW…, Qm…) or as a CIDv1 with the libp2p-key codec (k51…, in any
// multibase), or a DNSLink domain (docs.ipfs.tech). Config.Names resolves
// it; without one DIR/ipns is absent. A name that cannot be one of these
// (no dot and not a key, a label that is no DNS label, over 255 bytes) is
// ENOENT without asking. The name is a symlink to ../<cid>, followed by
// the path below the CID when the name points at one (/ipfs/<cid>/a/b
// reads as ../<cid>/a/b); a record whose path holds "." or ".." or a
// segment no name can be, or whose CID bsfs cannot fetch, is refused.
//
// It is a symlink rather than a directory because a name is a pointer that
// changes while content does not:
//
//   - Everything under the name is DIR/<cid> itself: the kernel walks
//     DIR/ipns/<name>/sub/file as DIR/<cid>/sub/file, with the same inodes,
//     page cache and hour-long caching of immutable content, and a path
//     below the CID costs no code of its own; only the link is short-lived.
//   - When the TTL passes while a file is open, or a shell's working
//     directory is inside, nothing changes under them: they hold inodes of
//     DIR/<cid>, which stay valid; the next path walk goes to the new CID.
//     A directory at DIR/ipns/<name> would be replaced in the kernel's
//     cache by the next lookup, leaving a working directory inside it
//     unreachable. (`cd DIR/ipns/<name>` shows that path to pwd, and
//     DIR/<cid> to pwd -P.)
//   - readlink (ls -l) shows what the name points at now, which a
//     directory could only show in an extended attribute.
//
// The cost is that tools that do not follow symlinks (find, du, tar
// without -L) stop at the link; give them DIR/ipns/<name>/.
//
// A resolved name is kept for its TTL (at least a second, so that the
// lookup and the readlink of one path walk share one answer; at most 1024
// names are kept, the expired ones dropped first), and the kernel keeps
// the link's entry and attributes no longer than what remains of it.
// Symlink caching (FUSE_CACHE_SYMLINKS) is off: the kernel asks for the
// target at every walk, answered from the kept name, so a name republished
// elsewhere shows its new content once the TTL has passed. Resolving
// honours the reader's interrupt (EINTR) and the read time-out (EIO, logged
// with the name) as a read does; any other failure is ENOENT with a log
// line naming the name, and is not cached, so the next access asks again.
// ls DIR/ipns lists nothing.
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
// The links under DIR/ipns are the exception: kept no longer than their
// TTL, failures not at all (see Names).
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
