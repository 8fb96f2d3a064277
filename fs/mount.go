package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/ipfs/go-cid"

	"github.com/bsfs/bsfs/unixfs"
)

// Roots lists the CIDs shown at the top of the mount: the roots this node
// added.
type Roots interface {
	Roots(ctx context.Context) ([]cid.Cid, error)
}

// Config configures a mount. The zero value is usable.
type Config struct {
	// UnixFS configures the DAG reader: prefetch window, listing
	// parallelism, and the Haser behind user.bsfs.local.
	UnixFS unixfs.Config
	// Roots is listed at the top of the mount; nil lists nothing.
	Roots Roots
	// ReadTimeout bounds each operation that fetches blocks (lookup,
	// listing, open, read); when it passes the operation fails with EIO
	// and the CID is logged. Zero means no bound: a read waits for its
	// blocks until the reader is interrupted or the mount ends.
	ReadTimeout time.Duration
	// CacheTimeout is how long the kernel keeps names and attributes;
	// zero means an hour. Content never changes, so only memory bounds it;
	// the links under DIR/ipns are kept no longer than their TTL.
	CacheTimeout time.Duration
	// Logger receives errors worth a line (time-outs, failed fetches,
	// panics); nil means slog.Default().
	Logger *slog.Logger
	// Debug logs every FUSE request.
	Debug bool
	// Usage, if set, reports the store's capacity (the cache quota) and the
	// bytes used, which df shows for the mount; nil reports nothing.
	Usage func() (total, used uint64)
	// ReadLatency, if set, is given the seconds each read of a file takes
	// (a Prometheus histogram's Observe fits).
	ReadLatency func(seconds float64)
	// Names resolves the names under DIR/ipns, each a symlink to
	// ../<cid> kept for its TTL; nil leaves DIR/ipns absent (ENOENT).
	Names NameResolver
}

// maxRequest is the largest read the kernel is asked to send at once.
const maxRequest = 1 << 20

// Server is a mounted bsfs namespace.
type Server struct {
	srv    *fuse.Server
	served chan struct{} // closed when Serve returns
	dir    string
	log    *slog.Logger
}

// Mount serves the content g fetches at dir, which must be an existing
// directory, until Unmount. A stale mount left at dir by a killed process
// is detached first; a live mount there, bsfs or any other, is refused with
// ErrMountPointInUse rather than hidden under a second one. As root the
// kernel is asked directly; otherwise through fusermount3 (see Check).
func Mount(dir string, g unixfs.BlockGetter, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CacheTimeout == 0 {
		cfg.CacheTimeout = time.Hour
	}
	if err := checkFUSE(); err != nil {
		return nil, err
	}
	cleaned, err := CleanStale(dir)
	if err != nil {
		return nil, err
	}
	if cleaned {
		cfg.Logger.Warn("removed a stale mount left by a process that ended without unmounting", "dir", dir)
	}
	if err := checkMountPoint(dir); err != nil {
		return nil, err
	}
	m := &mnt{
		r:            unixfs.New(g, cfg.UnixFS),
		g:            g,
		haser:        cfg.UnixFS.Haser,
		roots:        cfg.Roots,
		readTimeout:  cfg.ReadTimeout,
		log:          cfg.Logger,
		usage:        cfg.Usage,
		readLatency:  cfg.ReadLatency,
		cacheTimeout: cfg.CacheTimeout,
	}
	if cfg.Names != nil {
		m.names = &nameCache{r: cfg.Names}
	}
	root := &rootNode{m: m}
	opts := mountOptions(cfg)
	// As fs.Mount does, but knowing when Serve has returned: only then is
	// the descriptor of /dev/fuse closed.
	srv, err := fuse.NewServer(fs.NewNodeFS(root, opts), dir, &opts.MountOptions)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve()
		m.open.closeAll()
	}()
	if err := srv.WaitMount(); err != nil {
		// Serve ends by itself: the kernel never attached the descriptor.
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	return &Server{srv: srv, served: served, dir: dir, log: cfg.Logger}, nil
}

// Wait returns when the mount has been unmounted, by Unmount or by
// someone else, and its descriptor of /dev/fuse is closed.
func (s *Server) Wait() { <-s.served }

// Unmount unmounts and returns once the request loops have ended, the
// descriptor of /dev/fuse is closed and the files the kernel did not
// release are closed. When the mount is busy (a process has
// a file open there, or its working directory) it is detached instead: it
// disappears from the namespace now, and the kernel drops it once the last
// user lets go; their later requests fail with ENOTCONN when this process
// exits. Unmount then returns without waiting for that.
func (s *Server) Unmount() error {
	err := s.srv.Unmount()
	if err == nil {
		<-s.served
		return nil
	}
	if derr := detach(s.dir); derr != nil {
		return errors.Join(fmt.Errorf("unmount %s: %w", s.dir, err), derr)
	}
	s.log.Warn("mount busy: detached; files still open there fail once this process exits", "dir", s.dir, "err", err)
	return nil
}

// CleanStale detaches a FUSE mount at dir whose server is gone (stat
// fails with ENOTCONN) and reports whether it did.
func CleanStale(dir string) (bool, error) {
	_, err := os.Stat(dir)
	if !errors.Is(err, syscall.ENOTCONN) {
		return false, nil
	}
	if err := detach(dir); err != nil {
		return false, fmt.Errorf("stale mount at %s: %w", dir, err)
	}
	return true, nil
}

// detach lazily unmounts dir.
func detach(dir string) error {
	if os.Geteuid() == 0 {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
		return nil
	}
	bin, err := fusermount()
	if err != nil {
		return fmt.Errorf("detach %s: %w", dir, err)
	}
	out, err := exec.Command(bin, "-u", "-z", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s -u -z %s: %w: %s", bin, dir, err, bytes.TrimSpace(out))
	}
	return nil
}

// mountOptions are the go-fuse options of a mount configured by cfg.
func mountOptions(cfg Config) *fs.Options {
	timeout := cfg.CacheTimeout
	asRoot := os.Geteuid() == 0
	return &fs.Options{
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		UID:             uint32(os.Getuid()),
		GID:             uint32(os.Getgid()),
		MountOptions: fuse.MountOptions{
			FsName:       "bsfs",
			Name:         "bsfs",
			Options:      []string{"ro"},
			MaxWrite:     maxRequest,
			MaxReadAhead: maxRequest,
			// Reads in the reader's own context: the kernel interrupts
			// them when the reader gets a signal. Asynchronous read-ahead
			// requests are never interrupted, and would keep a want alive
			// after the reader is gone; unixfs prefetches ahead instead.
			SyncRead: true,
			// The kernel asks for a symlink's target at every path walk
			// through it: DIR/ipns/<name> points elsewhere once its TTL
			// has passed, and the pages of a cached target would not.
			EnableSymlinkCaching: false,
			IgnoreSecurityLabels: true,
			DirectMount:          asRoot,
			DirectMountStrict:    asRoot,
			Debug:                cfg.Debug,
			Logger:               slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
			PanicHandler: func(v any) fuse.Status {
				cfg.Logger.Error("panic in a FUSE handler; the call fails with EIO", "panic", v, "stack", string(debug.Stack()))
				return fuse.EIO
			},
		},
	}
}
