package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/internal/api"
	"github.com/bsfs/bsfs/internal/carfile"
)

func newExportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export CID",
		Short: "Write a DAG to stdout as a CARv1 file",
		Long: `Write CID's whole DAG to stdout as a CARv1 file with CID as its root, the
blocks in depth-first order, as Kubo's 'ipfs dag export' does. With a
running daemon, blocks that are not local are fetched from its peers;
otherwise every block must be local.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := parseCID(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			return withNode(ctx, func(n daemonNode) error {
				w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<20)
				if err := offlineHint(carfile.Export(ctx, n, root, w), n.Online()); err != nil {
					return err
				}
				return w.Flush()
			})
		},
	}
}

func newImportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE.car|-",
		Short: "Store the blocks of a CAR file and pin its roots",
		Long: `Store every block of a CARv1 or CARv2 file (- reads stdin), each checked
against its CID, and pin the file's roots recursively, as Kubo's 'ipfs dag
import' does. A root whose DAG is not complete fails the import unless a
running daemon can fetch the rest from its peers.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			ctx := cmd.Context()
			return withNode(ctx, func(n daemonNode) error {
				return importCAR(ctx, n, bufio.NewReaderSize(in, 1<<20), cmd.OutOrStdout())
			})
		},
	}
}

// importer is what import uses.
type importer interface {
	BlockWriter(ctx context.Context) (api.BlockWriter, error)
	Pin(ctx context.Context, c cid.Cid) error
}

// importCAR stores the blocks read from r through n and pins the roots.
func importCAR(ctx context.Context, n importer, r io.Reader, out io.Writer) error {
	count, roots, err := carfile.Import(ctx, r, func() (carfile.Writer, error) { return n.BlockWriter(ctx) })
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "imported %d blocks\n", count)
	for _, root := range roots {
		if err := n.Pin(ctx, root); err != nil {
			return fmt.Errorf("pinning root %s: %w", root, err)
		}
		fmt.Fprintf(out, "pinned root %s\n", root)
	}
	return nil
}
