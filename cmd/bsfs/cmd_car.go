package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	dagpb "github.com/ipld/go-codec-dagpb"
	"github.com/ipld/go-ipld-prime"
	_ "github.com/ipld/go-ipld-prime/codec/raw" // raw leaves in the traversal
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	selectorparse "github.com/ipld/go-ipld-prime/traversal/selector/parse"
	"github.com/spf13/cobra"

	"github.com/bsfs/bsfs/block"
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
				err := exportCAR(ctx, nodeBlocks{n}, root, w)
				if err != nil && !n.Online() && isMissing(err) {
					err = fmt.Errorf("%w (no daemon runs, so only local blocks are read: start 'bsfs daemon' to fetch from peers)", err)
				}
				if err != nil {
					return err
				}
				return w.Flush()
			})
		},
	}
}

// blockSource is where export reads blocks.
type blockSource interface {
	GetBlock(ctx context.Context, c cid.Cid) (block.Block, error)
}

// exportCAR writes root's DAG to w as a CARv1.
func exportCAR(ctx context.Context, src blockSource, root cid.Cid, w io.Writer) error {
	ls := cidlink.DefaultLinkSystem()
	ls.StorageReadOpener = func(lc ipld.LinkContext, l ipld.Link) (io.Reader, error) {
		cl, ok := l.(cidlink.Link)
		if !ok {
			return nil, fmt.Errorf("unsupported link %s", l)
		}
		b, err := src.GetBlock(lc.Ctx, cl.Cid)
		if err != nil {
			return nil, err
		}
		return bytes.NewReader(b.Data), nil
	}
	chooser := dagpb.AddSupportToChooser(func(ipld.Link, ipld.LinkContext) (ipld.NodePrototype, error) {
		return basicnode.Prototype.Any, nil
	})
	_, err := car.TraverseV1(ctx, &ls, root, selectorparse.CommonSelector_ExploreAllRecursively, w,
		car.WithTraversalPrototypeChooser(chooser))
	return err
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
	blockWriterOf
	Pin(ctx context.Context, c cid.Cid) error
}

// importCAR stores the blocks read from r through n and pins the roots.
func importCAR(ctx context.Context, n importer, r io.Reader, out io.Writer) error {
	br, err := car.NewBlockReader(r)
	if err != nil {
		return fmt.Errorf("reading CAR: %w", err)
	}
	w, err := n.BlockWriter(ctx)
	if err != nil {
		return err
	}
	count := 0
	for {
		b, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			var blk block.Block
			if blk, err = block.Verified(b.Cid(), b.RawData()); err == nil {
				err = w.Put(ctx, blk)
			}
		}
		if err != nil {
			return errors.Join(fmt.Errorf("CAR block %d: %w", count+1, err), w.Close())
		}
		count++
	}
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Fprintf(out, "imported %d blocks\n", count)
	for _, root := range br.Roots {
		if err := n.Pin(ctx, root); err != nil {
			return fmt.Errorf("pinning root %s: %w", root, err)
		}
		fmt.Fprintf(out, "pinned root %s\n", root)
	}
	return nil
}
