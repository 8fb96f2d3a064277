package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/internal/api"
	"github.com/bsfs/bsfs/internal/progress"
	"github.com/bsfs/bsfs/internal/unpack"
	"github.com/bsfs/bsfs/unixfs"
)

func newCatCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cat CID[/PATH]",
		Short: "Write a UnixFS file to stdout",
		Long: `Write the content of a UnixFS file to stdout: CID, or a path below a
directory CID (CID/a/b.txt; /ipfs/ in front is allowed). A block that is
not UnixFS is written as it is.

With a running daemon, the daemon reads the file, fetching its blocks from
peers a window ahead of what is written, and sends only its bytes;
otherwise only local blocks are read. The file is streamed: memory stays
small however large it is. Ctrl-C stops it and cancels the daemon's wants.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, sub, err := parseRef(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			return withNode(ctx, func(n daemonNode) error {
				r := unixfs.New(n, unixfs.Config{})
				nd, err := r.Resolve(ctx, root, sub)
				if err == nil {
					err = checkFile(nd, args[0])
				}
				if err != nil {
					return offlineHint(err, n.Online())
				}
				bar := progress.New(cmd.ErrOrStderr(), int64(nd.Size), "fetching")
				var done int64
				progressed := func(k int) {
					done += int64(k)
					bar.Set(done)
				}
				if c, ok := n.(*api.Client); ok {
					// The daemon reads the file and sends its bytes only.
					err = c.Cat(ctx, nd.CID, cmd.OutOrStdout(), progressed)
				} else {
					err = catLocal(ctx, r, nd.CID, cmd.OutOrStdout(), progressed)
				}
				bar.Done()
				return offlineHint(err, n.Online())
			})
		},
	}
}

// parseRef splits CID[/PATH] (optionally /ipfs/CID[/PATH]).
func parseRef(s string) (cid.Cid, string, error) {
	s = strings.TrimPrefix(s, "/ipfs/")
	first, rest, _ := strings.Cut(s, "/")
	c, err := parseCID(first)
	if err != nil {
		return cid.Undef, "", err
	}
	return c, rest, nil
}

// checkFile refuses directories and symlinks with a clear error.
func checkFile(nd unixfs.Node, name string) error {
	switch nd.Kind {
	case unixfs.KindDirectory:
		return fmt.Errorf("%s is a directory", name)
	case unixfs.KindSymlink:
		return fmt.Errorf("%s is a symlink to %q", name, nd.Target)
	}
	return nil
}

// catLocal writes the content of the file c, read with r, to w.
func catLocal(ctx context.Context, r *unixfs.Reader, c cid.Cid, w io.Writer, progress func(int)) error {
	f, err := r.Open(ctx, c)
	if err != nil {
		return err
	}
	defer f.Close()
	return unpack.Copy(ctx, w, f, progress)
}

// offlineHint adds to err, if it is about a block that could not be had
// and the node is not online, that only local blocks are read.
func offlineHint(err error, online bool) error {
	if err != nil && !online && errors.Is(err, block.ErrNotFound) {
		return fmt.Errorf("%w (no daemon runs, so only local blocks are read: start 'bsfs daemon' to fetch from peers)", err)
	}
	return err
}
