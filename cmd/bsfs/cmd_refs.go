package main

import (
	"bufio"
	"context"
	"errors"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/internal/dagwalk"
	"github.com/bsfs/bsfs/internal/progress"
	"github.com/bsfs/bsfs/unixfs"
)

// refsFlags are refs's options, Kubo's.
type refsFlags struct {
	recursive, unique, edges, quiet bool
	format                          string
	maxDepth                        int
}

func newRefsCmd() *cobra.Command {
	var flags refsFlags
	cmd := &cobra.Command{
		Use:   "refs [-r] [-u] [-e|--format FMT] CID[/PATH]...",
		Short: "List the CIDs a block links to, or with -r its whole DAG's",
		Long: `Print the CID of each link of the block named, one a line, as Kubo's
'ipfs refs' does; with -r those of the blocks below it too, depth first,
each link before the links below it. --unique prints each CID once.
--format prints each link as FMT with <src>, <dst> and <linkname> replaced;
-e is --format "<src> -> <dst>". Every block reached is fetched: with a
running daemon missing blocks come from its peers (with a progress bar on
stderr when it is a terminal and stdout is not; -q hides it), otherwise
only local blocks are read. Only dag-pb and raw blocks are walked.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if flags.edges {
				if flags.format != "<dst>" {
					return errors.New("using format argument with edges is not allowed")
				}
				flags.format = "<src> -> <dst>"
			}
			if !flags.recursive {
				flags.maxDepth = 1
			}
			return runRefs(cmd, args, flags)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&flags.recursive, "recursive", "r", false, "also list the links of the blocks below")
	f.BoolVarP(&flags.unique, "unique", "u", false, "print each CID once")
	f.BoolVarP(&flags.edges, "edges", "e", false, `print each link as "<src> -> <dst>"`)
	f.StringVar(&flags.format, "format", "<dst>", "print each link as this, with <src>, <dst> and <linkname> replaced")
	f.IntVar(&flags.maxDepth, "max-depth", -1, "with -r, go no deeper than this many links from the root")
	f.BoolVarP(&flags.quiet, "quiet", "q", false, "draw no progress bar")
	return cmd
}

func runRefs(cmd *cobra.Command, args []string, flags refsFlags) error {
	ctx := cmd.Context()
	return withNode(ctx, func(n daemonNode) error {
		roots, err := resolveAll(ctx, unixfs.New(n, unixfs.Config{}), args)
		if err != nil {
			return offlineHint(err, n.Online())
		}
		out := bufio.NewWriter(cmd.OutOrStdout())
		// Lines on a terminal show the progress themselves, and a bar
		// would be drawn over them.
		quiet := flags.quiet || progress.IsTerminal(cmd.OutOrStdout())
		bar := progress.NewBlocks(progressTo(cmd, quiet), "walking")
		w := dagwalk.New(n.NewSession(ctx), dagwalk.Options{MaxDepth: flags.maxDepth, Unique: flags.unique})
		var count, bytes int64
		for _, root := range roots {
			_, err = w.Walk(ctx, root, func(e dagwalk.Edge) error {
				count++
				bytes += int64(e.Size)
				bar.Set(count, bytes)
				_, err := out.WriteString(refLine(flags.format, e) + "\n")
				return err
			})
			if err != nil {
				break
			}
		}
		bar.Done()
		return offlineHint(errors.Join(err, out.Flush()), n.Online())
	})
}

// resolveAll resolves each CID[/PATH] of args.
func resolveAll(ctx context.Context, r *unixfs.Reader, args []string) ([]cid.Cid, error) {
	out := make([]cid.Cid, len(args))
	for i, arg := range args {
		c, err := resolveRef(ctx, r, arg)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

// refLine writes e in format.
func refLine(format string, e dagwalk.Edge) string {
	return strings.NewReplacer("<src>", e.From.String(), "<dst>", e.To.String(), "<linkname>", e.Name).Replace(format)
}
