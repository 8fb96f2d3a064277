package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/ipfs/go-cid"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/block"
	"github.com/bsfs/bsfs/internal/api"
	"github.com/bsfs/bsfs/internal/carfile"
	"github.com/bsfs/bsfs/internal/progress"
)

func newExportCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "export CID",
		Short: "Write a DAG to stdout as a CARv1 file",
		Long: `Write CID's whole DAG to stdout as a CARv1 file with CID as its root, the
blocks in depth-first order, as Kubo's 'ipfs dag export' does. With a
running daemon, blocks that are not local are fetched from its peers;
otherwise every block must be local. A progress bar of the blocks written
shows on stderr when it is a terminal, unless -q.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := parseCID(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			return withNode(ctx, func(n daemonNode) error {
				w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<20)
				src := &countingSource{src: n, bar: progress.NewBlocks(progressTo(cmd, quiet), "exporting")}
				err := carfile.Export(ctx, src, root, w)
				src.bar.Done()
				if err := offlineHint(err, n.Online()); err != nil {
					return err
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "draw no progress bar")
	return cmd
}

// progressTo is where a command draws its progress: stderr, or nowhere
// with -q.
func progressTo(cmd *cobra.Command, quiet bool) io.Writer {
	if quiet {
		return io.Discard
	}
	return cmd.ErrOrStderr()
}

// countingSource moves a bar with the blocks read through it.
type countingSource struct {
	src           carfile.Source
	bar           progress.Blocks
	blocks, bytes int64
}

func (s *countingSource) GetBlock(ctx context.Context, c cid.Cid) (block.Block, error) {
	b, err := s.src.GetBlock(ctx, c)
	if err == nil {
		s.blocks++
		s.bytes += int64(len(b.Data))
		s.bar.Set(s.blocks, s.bytes)
	}
	return b, err
}

func newImportCmd() *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "import FILE.car|-",
		Short: "Store the blocks of a CAR file and pin its roots",
		Long: `Store every block of a CARv1 or CARv2 file (- reads stdin), each checked
against its CID, and pin the file's roots recursively, as Kubo's 'ipfs dag
import' does. A root whose DAG is not complete fails the import unless a
running daemon can fetch the rest from its peers. A progress bar of the
bytes read shows on stderr when it is a terminal, unless -q.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			total := int64(-1)
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
					total = fi.Size()
				}
				in = f
			}
			ctx := cmd.Context()
			return withNode(ctx, func(n daemonNode) error {
				r := &countingReader{r: in, bar: progress.New(progressTo(cmd, quiet), total, "importing")}
				return importCAR(ctx, n, bufio.NewReaderSize(r, 1<<20), cmd.OutOrStdout(), r.bar.Done)
			})
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "draw no progress bar")
	return cmd
}

// countingReader moves a bar with the bytes read through it.
type countingReader struct {
	r   io.Reader
	bar progress.Bar
	n   int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	r.bar.Set(r.n)
	return n, err
}

// importer is what import uses.
type importer interface {
	BlockWriter(ctx context.Context) (api.BlockWriter, error)
	Pin(ctx context.Context, c cid.Cid) error
}

// importCAR stores the blocks read from r through n and pins the roots;
// read is called when the blocks are stored, before anything is printed.
func importCAR(ctx context.Context, n importer, r io.Reader, out io.Writer, read func()) error {
	count, roots, err := carfile.Import(ctx, r, func() (carfile.Writer, error) { return n.BlockWriter(ctx) })
	read()
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
