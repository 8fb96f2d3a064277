package main

import (
	"fmt"
	"os"
	"path"

	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/internal/progress"
	"github.com/bsfs/bsfs/internal/unpack"
	"github.com/bsfs/bsfs/unixfs"
)

func newGetCmd() *cobra.Command {
	var out string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "get CID[/PATH] [-o OUT] [-q]",
		Short: "Write a UnixFS file or directory tree to disk",
		Long: `Write a UnixFS file, directory tree or symlink to OUT: by default the
last name of PATH, or the CID when there is no PATH. OUT must not exist.

Files and directories get their UnixFS permission bits and mtime when the
DAG has them (else 0644 and 0755); symlinks are written as symlinks. A
name that could escape OUT ("..", or one with a slash) fails the command.
With a running daemon missing blocks are fetched from its peers;
otherwise only local blocks are read. A progress bar of the bytes written
shows on stderr when it is a terminal, unless -q.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, sub, err := parseRef(args[0])
			if err != nil {
				return err
			}
			if out == "" {
				out = root.String()
				if base := path.Base(sub); sub != "" && base != "/" && base != "." {
					out = base
				}
			}
			if _, err := os.Lstat(out); err == nil {
				return fmt.Errorf("%s already exists", out)
			}
			ctx := cmd.Context()
			return withReader(ctx, func(r *unixfs.Reader) error {
				nd, err := r.Resolve(ctx, root, sub)
				if err != nil {
					return err
				}
				total := int64(-1)
				if nd.Kind == unixfs.KindFile || nd.Kind == unixfs.KindOpaque {
					total = int64(nd.Size)
				}
				bar := progress.New(progressTo(cmd, quiet), total, "fetching")
				err = unpack.WriteTree(ctx, r, nd, out, bar.Set)
				bar.Done()
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "path to write to (must not exist)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "draw no progress bar")
	return cmd
}
