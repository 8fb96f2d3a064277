package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	mountfs "github.com/bsfs/bsfs/fs"
	"github.com/bsfs/bsfs/internal/api"
	"github.com/bsfs/bsfs/internal/node"
	"github.com/bsfs/bsfs/repo"
	"github.com/bsfs/bsfs/unixfs"
)

// mountedLine starts the line `bsfs mount` prints once the mount is ready.
const mountedLine = "Mounted at "

// defaultReadTimeout bounds each fetching file system operation. Readers
// that can be interrupted (Ctrl-C) never need it; it is for those that
// cannot, such as a file manager or an indexer walking the mount, which
// would otherwise wait for content nobody has until the mount ends. Two
// minutes outlast several rebroadcasts of a want, and each read of a large
// file is bounded separately.
const defaultReadTimeout = 2 * time.Minute

// mountFlags are `bsfs mount`'s flags.
type mountFlags struct {
	node        node.Options // for the node it runs when no daemon does
	readTimeout time.Duration
	debug       bool
}

func newMountCmd() *cobra.Command {
	var flags mountFlags
	cmd := &cobra.Command{
		Use:   "mount DIR",
		Short: "Mount IPFS content at DIR, read-only (FUSE)",
		Long: fmt.Sprintf(`Mount IPFS content at the existing directory DIR until SIGINT or SIGTERM,
then unmount.

  DIR/<cid>      the content: a UnixFS file's bytes, a directory with nested
                 paths, a symlink; any other block as its bytes
  DIR/raw/<cid>  the block itself
  DIR/ipfs/<cid> the same as DIR/<cid>, for paths written for Kubo's /ipfs/
  DIR/ipns/NAME  a symlink to ../<cid>: what the IPNS name (a peer ID or a
                 libp2p-key CID) or the DNSLink domain NAME points at,
                 resolved again once its TTL has passed
  ls DIR         the roots this node added

Blocks missing locally are fetched from peers as they are read; interrupting
a reader (Ctrl-C) cancels its fetch. The extended attributes user.bsfs.cid and
user.bsfs.local (the fraction of a file stored locally) show a fetch's
progress, e.g. getfattr -d DIR/<cid>.

When a daemon runs on the repository, the mount uses its node through the
API. Otherwise it runs the node itself, with the daemon's flags (which apply
only then), and prints the peer ID and listen addresses as the daemon does.
It prints a line starting %q once mounted. A mount left behind by
a killed process is removed first; a live mount at DIR (bsfs or any other)
is refused, naming it. As root the kernel is asked directly; otherwise FUSE's
setuid helper fusermount3 mounts, which needs the fuse3 package and
/dev/fuse open to users (mode 0666, as distributions ship it).`, mountedLine),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			flags.node.MetricsSet = f.Changed("metrics")
			nodeFlags := f.Changed("listen") || f.Changed("bitswap-protocols") || f.Changed("routing") || f.Changed("metrics")
			return runMount(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], flags, nodeFlags)
		},
	}
	addNodeFlags(cmd, &flags.node)
	f := cmd.Flags()
	f.DurationVar(&flags.readTimeout, "read-timeout", defaultReadTimeout, "fail a file system operation waiting longer than this for blocks with EIO, logging the CID (0: wait until interrupted)")
	f.BoolVar(&flags.debug, "debug", false, "log every FUSE request")
	return cmd
}

// runMount mounts at dir until ctx ends or someone else unmounts dir.
// nodeFlags says whether flags.node was set on the command line.
func runMount(ctx context.Context, out, errOut io.Writer, dir string, flags mountFlags, nodeFlags bool) error {
	// Before the node starts: a mount that cannot be made fails with one
	// line saying why.
	if err := mountfs.Check(dir); err != nil {
		return err
	}
	cfg := mountfs.Config{
		ReadTimeout: flags.readTimeout,
		Logger:      slog.New(slog.NewTextHandler(errOut, nil)),
		Debug:       flags.debug,
	}
	path, err := repo.DefaultPath()
	if err != nil {
		return err
	}
	if c, _ := api.Dial(ctx, path); c != nil {
		return mountThroughDaemon(ctx, out, dir, path, c, cfg, nodeFlags)
	}
	// A command may hold the repository for a moment, or a daemon may be
	// starting: wait for the one, and mount through the other.
	r, err := node.OpenRepo(ctx, path)
	if errors.Is(err, node.ErrDaemonRuns) {
		if c, _ := api.Dial(ctx, path); c != nil {
			return mountThroughDaemon(ctx, out, dir, path, c, cfg, nodeFlags)
		}
	}
	if err != nil {
		return err
	}
	// Other commands reach this node through the API while it mounts.
	n, l, err := serveNode(ctx, out, r, flags.node)
	if err != nil {
		return err
	}
	g, cfg := n.Mount(cfg)
	err = serveMount(ctx, out, dir, g, withNames(cfg, n))
	return errors.Join(err, l.Close(), n.Close())
}

// mountThroughDaemon mounts at dir the node of the daemon c serves the
// repository at path with, until ctx ends; it closes c.
func mountThroughDaemon(ctx context.Context, out io.Writer, dir, path string, c *api.Client, cfg mountfs.Config, nodeFlags bool) error {
	defer c.Close()
	if nodeFlags {
		return errors.New("a daemon runs on this repository: the node's flags (--listen, --bitswap-protocols, --routing, --metrics) apply only when the mount runs its own node")
	}
	fmt.Fprintf(out, "Using the daemon's node (API %s)\n", repo.APISocketPath(path))
	cfg.UnixFS.Haser = c
	cfg.Roots = c
	cfg.Usage = apiUsage(c)
	return serveMount(ctx, out, dir, c, withNames(cfg, c))
}

// withNames gives the mount the name resolver of the node it reads
// through, for DIR/ipns: *node.Node and *api.Client offer one by having
// ResolveName (mountfs.NameResolver). Without it DIR/ipns is absent, which
// the mount's log says once.
func withNames(cfg mountfs.Config, n any) mountfs.Config {
	if r, ok := n.(mountfs.NameResolver); ok {
		cfg.Names = r
		return cfg
	}
	cfg.Logger.Info("DIR/ipns is absent: this node does not resolve IPNS names or DNSLink domains")
	return cfg
}

// serveMount mounts g at dir and unmounts when ctx ends.
func serveMount(ctx context.Context, out io.Writer, dir string, g unixfs.BlockGetter, cfg mountfs.Config) error {
	srv, err := mountfs.Mount(dir, g, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s%s\n", mountedLine, dir)
	// Ends when the process does if a busy mount is only detached.
	unmounted := make(chan struct{})
	go func() {
		srv.Wait()
		close(unmounted)
	}()
	select {
	case <-ctx.Done():
		return srv.Unmount()
	case <-unmounted:
		fmt.Fprintf(out, "%s was unmounted\n", dir)
		return nil
	}
}

// statfsTimeout bounds asking the daemon for a mount's df figures.
const statfsTimeout = 2 * time.Second

// apiUsage reports the daemon's figures for df on a mount through its API;
// none while the daemon does not answer.
func apiUsage(c *api.Client) func() (total, used uint64) {
	return func() (uint64, uint64) {
		ctx, cancel := context.WithTimeout(context.Background(), statfsTimeout)
		defer cancel()
		u, err := c.CacheUsage(ctx)
		if err != nil {
			return 0, 0
		}
		return node.DiskFigures(u)
	}
}
