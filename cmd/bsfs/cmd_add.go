package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/internal/progress"
	"github.com/bsfs/bsfs/unixfs"
)

func newAddCmd() *cobra.Command {
	var recursive, quiet, quieter, hidden bool
	cmd := &cobra.Command{
		Use:   "add [-r] [-q|-Q] [--hidden] PATH|-",
		Short: "Add a file or directory as UnixFS and print its CID",
		Long: `Add a file, stdin (-), or with -r a directory tree, as UnixFS, and print
"added <cid> <name>" for every file and directory, the root last.

The CIDs are those of Kubo's 'ipfs add --cid-version=1': CIDv1, raw leaves
of 256 KiB, a balanced DAG, directories sharded as HAMTs above Kubo's
threshold. Symlinks are added as symlinks, never followed; names starting
with "." below PATH are left out unless --hidden. The root is recorded
among the roots this node added (what 'ls' of a mount lists). With a
running daemon the blocks are streamed into its store and served to its
peers; otherwise they go into the repository directly. A progress bar
shows on stderr when it is a terminal, unless -q or -Q.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAdd(cmd, args[0], addFlags{recursive: recursive, quiet: quiet, quieter: quieter, hidden: hidden})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&recursive, "recursive", "r", false, "add a directory and everything below it")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the CIDs, one a line")
	f.BoolVarP(&quieter, "quieter", "Q", false, "print only the root's CID")
	f.BoolVar(&hidden, "hidden", false, `also add names starting with "."`)
	return cmd
}

type addFlags struct {
	recursive, quiet, quieter, hidden bool
}

func runAdd(cmd *cobra.Command, arg string, flags addFlags) error {
	ctx := cmd.Context()
	total := int64(-1)
	if arg != "-" {
		fi, err := os.Lstat(arg)
		if err != nil {
			return err
		}
		if fi.IsDir() && !flags.recursive {
			return fmt.Errorf("%s is a directory: add it with -r", arg)
		}
		if total, err = unixfs.AddSize(arg, flags.hidden); err != nil {
			return err
		}
	}
	return withNode(ctx, func(n daemonNode) error {
		w, err := n.BlockWriter(ctx)
		if err != nil {
			return err
		}
		bar := progress.New(progressTo(cmd, flags.quiet || flags.quieter), total, "adding")
		var lines []string // printed once the bar is gone
		opts := unixfs.AddOptions{
			Progress: bar.Set,
			Hidden:   flags.hidden,
			Added: func(name string, c cid.Cid) {
				lines = append(lines, addedLine(c, name, flags.quiet))
			},
		}
		var root cid.Cid
		if arg == "-" {
			root, err = unixfs.AddFile(ctx, w, cmd.InOrStdin(), opts)
			lines = append(lines, addedLine(root, root.String(), flags.quiet))
		} else {
			root, err = unixfs.AddPath(ctx, w, arg, opts)
		}
		err = errors.Join(err, w.Close())
		bar.Done()
		if err == nil {
			err = n.AddRoot(ctx, root)
		}
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if flags.quieter {
			_, err := fmt.Fprintln(out, root)
			return err
		}
		_, err = io.WriteString(out, strings.Join(lines, ""))
		return err
	})
}

func addedLine(c cid.Cid, name string, quiet bool) string {
	if quiet {
		return c.String() + "\n"
	}
	return "added " + c.String() + " " + name + "\n"
}

// withReader runs f with a UnixFS reader over the daemon or the local
// repository; offline, an error about a missing block says why.
func withReader(ctx context.Context, f func(*unixfs.Reader) error) error {
	return withNode(ctx, func(n daemonNode) error {
		return offlineHint(f(unixfs.New(n, unixfs.Config{})), n.Online())
	})
}
