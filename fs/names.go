package fs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/bsfs/bsfs/internal/names"
)

// NameResolver resolves the names under DIR/ipns, given bare: an IPNS name
// (a peer ID, or a CIDv1 with the libp2p-key codec) or a DNSLink domain.
// An error wrapping names.ErrNotFound says the name does not exist; ctx
// ends when the reader is interrupted or the read time-out passes.
type NameResolver interface {
	ResolveName(ctx context.Context, name string) (names.Resolved, error)
}

// NameResolverFunc adapts a function, such as a resolver's Resolve method,
// to NameResolver.
type NameResolverFunc func(ctx context.Context, name string) (names.Resolved, error)

// ResolveName calls f.
func (f NameResolverFunc) ResolveName(ctx context.Context, name string) (names.Resolved, error) {
	return f(ctx, name)
}

// Directories at the top of the mount beside raw.
const (
	ipfsName = "ipfs" // DIR/ipfs/<cid>: DIR/<cid>, for paths written for Kubo
	ipnsName = "ipns" // DIR/ipns/<name>: a symlink to what the name points at
)

const (
	// minNameTTL is the shortest time a resolved name is kept, whatever
	// its record says, so that the lookup and the readlink of one path
	// walk share one resolution.
	minNameTTL = time.Second
	// maxCachedNames bounds the names a mount keeps resolved.
	maxCachedNames = 1024
	// maxTargetLen is the longest symlink target: PATH_MAX less its NUL.
	maxTargetLen = 4095
	// maxDomainLen is the longest DNS name, without a trailing dot.
	maxDomainLen = 253
	// uncached is the kernel time-out meaning "ask again": zero would
	// mean go-fuse's default, the mount's CacheTimeout.
	uncached = time.Nanosecond
)

// resolvedName is a name's symlink target and when it must be resolved
// again.
type resolvedName struct {
	target  string
	expires time.Time
}

// nameCache keeps the names a mount resolved for their TTL.
type nameCache struct {
	r NameResolver

	mu      sync.Mutex
	entries map[string]resolvedName // guarded by mu
}

// get returns name's resolution while its TTL lasts.
func (c *nameCache) get(name string) (resolvedName, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[name]
	if !ok || !time.Now().Before(e.expires) {
		return resolvedName{}, false
	}
	return e, true
}

// put keeps e for name, dropping expired names (or, failing that, any
// one) when the cache is full.
func (c *nameCache) put(name string, e resolvedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]resolvedName)
	}
	if _, ok := c.entries[name]; !ok && len(c.entries) >= maxCachedNames {
		now := time.Now()
		for n, old := range c.entries {
			if !now.Before(old.expires) {
				delete(c.entries, n)
			}
		}
		for n := range c.entries {
			if len(c.entries) < maxCachedNames {
				break
			}
			delete(c.entries, n)
		}
	}
	c.entries[name] = e
}

// resolveName returns name's symlink target: the kept one while its TTL
// lasts, else the resolver's answer, bounded by the read time-out.
func (m *mnt) resolveName(ctx context.Context, name string) (resolvedName, syscall.Errno) {
	if e, ok := m.names.get(name); ok {
		return e, 0
	}
	ctx, cancel := m.fetchCtx(ctx)
	defer cancel()
	res, err := m.names.r.ResolveName(ctx, name)
	var target string
	if err == nil {
		target, err = linkTarget(res)
	}
	if err != nil {
		return resolvedName{}, m.nameErrno(ctx, err, name)
	}
	e := resolvedName{target: target, expires: time.Now().Add(max(res.TTL, minNameTTL))}
	m.names.put(name, e)
	return e, 0
}

// nameErrno maps a failure to resolve name, asked in ctx, as a read's
// failure is mapped: EINTR when interrupted, EIO when the read time-out
// passed; any other failure means the name cannot be resolved, ENOENT.
// All but the interrupt are logged with the name.
func (m *mnt) nameErrno(ctx context.Context, err error, name string) syscall.Errno {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return syscall.EINTR
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		m.log.Warn("fuse: read time-out", "op", "resolve", "name", name, "timeout", m.readTimeout)
		return syscall.EIO
	case errors.Is(err, names.ErrNotFound):
		m.log.Info("fuse: name not resolved", "name", name, "err", err)
	default:
		m.log.Warn("fuse: resolving a name failed", "name", name, "err", err)
	}
	return syscall.ENOENT
}

// kernelTimeout is how long the kernel may keep a name that expires then:
// no longer than the mount's cache time-out, and not at all once expired.
func (m *mnt) kernelTimeout(expires time.Time) time.Duration {
	d := min(time.Until(expires), m.cacheTimeout)
	if d <= 0 {
		return uncached
	}
	return d
}

// linkTarget is the symlink a resolved name reads as, relative to DIR/ipns:
// ../<cid>, then the rest of its path. A record is hostile input: a
// segment that could climb out of the content ("..", "/") or that no name
// in the mount can be is refused, as is a CID bsfs cannot fetch.
func linkTarget(res names.Resolved) (string, error) {
	if !res.Root.Defined() {
		return "", errors.New("resolved to no CID")
	}
	root := rootName(res.Root)
	if _, ok := parseCID(root); !ok {
		return "", fmt.Errorf("resolved to %s, a CID bsfs cannot fetch", res.Root)
	}
	var b strings.Builder
	b.WriteString("../")
	b.WriteString(root)
	for _, s := range res.Rest {
		if s == "" {
			continue
		}
		if s == "." || s == ".." || len(s) > maxNameLen || strings.ContainsAny(s, "/\x00") {
			return "", fmt.Errorf("resolved to %s with the path segment %q", res.Root, s)
		}
		b.WriteByte('/')
		b.WriteString(s)
		if b.Len() > maxTargetLen {
			return "", fmt.Errorf("resolved to a path below %s longer than %d bytes", res.Root, maxTargetLen)
		}
	}
	return b.String(), nil
}

// validName reports whether name can be an IPNS name or a DNSLink domain,
// and so is worth asking the resolver about.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLen || strings.ContainsAny(name, "/\x00") {
		return false
	}
	return validPeerID(name) || validDomain(name)
}

// validPeerID reports whether name is a libp2p key: a peer ID in base58,
// or a CID with the libp2p-key codec in any multibase, whose multihash is
// a sha2-256 of a key or an inlined key that parses.
func validPeerID(name string) bool {
	id, err := peer.Decode(name)
	if err != nil {
		return false
	}
	dh, err := mh.Decode([]byte(id))
	if err != nil {
		return false
	}
	switch dh.Code {
	case mh.SHA2_256:
		return dh.Length == 32
	case mh.IDENTITY:
		_, err := id.ExtractPublicKey()
		return err == nil
	}
	return false
}

// validDomain reports whether name can be a DNSLink domain: at most 253
// bytes, two or more dot-separated labels of 1 to 63 letters, digits and
// hyphens, none starting or ending with a hyphen, the last holding a
// letter (an IPv4 address is not a domain). No peer ID holds a dot, so
// no name is both.
func validDomain(name string) bool {
	if len(name) > maxDomainLen {
		return false
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !isLetter(c) && !('0' <= c && c <= '9') && c != '-' {
				return false
			}
		}
	}
	return strings.ContainsFunc(labels[len(labels)-1], func(r rune) bool { return r < 0x80 && isLetter(byte(r)) })
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// emptyDir is a directory of the mount's top whose names are looked up,
// never listed.
type emptyDir struct {
	fs.Inode
	m *mnt
}

// Getattr reports a read-only directory.
func (d *emptyDir) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	topDirAttr(&out.Attr)
	return 0
}

// Readdir lists nothing, not even the names looked up before.
func (d *emptyDir) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	return fs.NewListDirStream(nil), 0
}

// ipfsDir is DIR/ipfs: DIR/ipfs/<cid> is DIR/<cid>.
type ipfsDir struct{ emptyDir }

// Lookup finds a CID's content as the mount's top does.
func (d *ipfsDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return d.m.lookupCID(ctx, d.EmbeddedInode(), name, out)
}

// ipnsDir is DIR/ipns: each name resolved is a symlink to ../<cid>.
type ipnsDir struct{ emptyDir }

// Lookup resolves name, unless it cannot be a name: that is ENOENT without
// asking. The kernel keeps the link no longer than the name's TTL, and a
// name that failed not at all.
func (d *ipnsDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if !validName(name) {
		d.m.log.Info("fuse: not an IPNS name or DNSLink domain", "name", name)
		return nil, syscall.ENOENT
	}
	e, errno := d.m.resolveName(ctx, name)
	if errno != 0 {
		out.SetEntryTimeout(uncached)
		return nil, errno
	}
	l := &nameLink{m: d.m, name: name, cur: e}
	fillLinkAttr(e.target, &out.Attr)
	t := d.m.kernelTimeout(e.expires)
	out.SetEntryTimeout(t)
	out.SetAttrTimeout(t)
	return d.NewInode(ctx, l, fs.StableAttr{Mode: syscall.S_IFLNK}), 0
}

// nameLink is DIR/ipns/<name>, a symlink to what the name points at.
type nameLink struct {
	fs.Inode
	m    *mnt
	name string

	mu  sync.Mutex
	cur resolvedName // guarded by mu
}

// current returns the link's target, resolving the name again once its
// TTL has passed.
func (l *nameLink) current(ctx context.Context) (resolvedName, syscall.Errno) {
	l.mu.Lock()
	cur := l.cur
	l.mu.Unlock()
	if time.Now().Before(cur.expires) {
		return cur, 0
	}
	cur, errno := l.m.resolveName(ctx, l.name)
	if errno != 0 {
		return resolvedName{}, errno
	}
	l.mu.Lock()
	l.cur = cur
	l.mu.Unlock()
	return cur, 0
}

// Getattr reports a symlink the length of its current target.
func (l *nameLink) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	cur, errno := l.current(ctx)
	if errno != 0 {
		return errno
	}
	fillLinkAttr(cur.target, &out.Attr)
	out.SetTimeout(l.m.kernelTimeout(cur.expires))
	return 0
}

// Readlink returns ../<cid>[/path] for what the name points at now. The
// kernel asks at every path walk through the link (symlink caching is
// off), so a new target shows once the TTL has passed.
func (l *nameLink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	cur, errno := l.current(ctx)
	if errno != 0 {
		return nil, errno
	}
	return []byte(cur.target), 0
}

// fillLinkAttr sets a to a symlink to target.
func fillLinkAttr(target string, a *fuse.Attr) {
	a.Mode = syscall.S_IFLNK | 0o777
	a.Nlink = 1
	a.Size = uint64(len(target))
	a.Blocks = (a.Size + 511) / 512
}
