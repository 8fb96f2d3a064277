package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/block"
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

With a running daemon the blocks are fetched from its peers, a window of
them ahead of what is written; otherwise only local blocks are read. The
file is streamed: memory stays small however large it is. Ctrl-C stops it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, sub, err := parseRef(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			return withReader(ctx, func(r *unixfs.Reader) error {
				nd, err := r.Resolve(ctx, root, sub)
				if err != nil {
					return err
				}
				f, err := openFile(ctx, r, nd, args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				bar := progress.New(cmd.ErrOrStderr(), int64(nd.Size), "fetching")
				var n int64
				err = unpack.Copy(ctx, cmd.OutOrStdout(), f, func(k int) {
					n += int64(k)
					bar.Set(n)
				})
				bar.Done()
				return err
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

// openFile opens nd, refusing directories and symlinks with a clear error.
func openFile(ctx context.Context, r *unixfs.Reader, nd unixfs.Node, name string) (*unixfs.File, error) {
	switch nd.Kind {
	case unixfs.KindDirectory:
		return nil, fmt.Errorf("%s is a directory", name)
	case unixfs.KindSymlink:
		return nil, fmt.Errorf("%s is a symlink to %q", name, nd.Target)
	}
	return r.Open(ctx, nd.CID)
}

// offlineHint adds to err, if it is about a block that could not be had
// and the node is not online, that only local blocks are read.
func offlineHint(err error, online bool) error {
	if err != nil && !online && errors.Is(err, block.ErrNotFound) {
		return fmt.Errorf("%w (no daemon runs, so only local blocks are read: start 'bsfs daemon' to fetch from peers)", err)
	}
	return err
}
