// Package carfile writes DAGs as CAR files and reads the blocks of CAR
// files, as Kubo's 'ipfs dag export' and 'ipfs dag import' do.
package carfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	dagpb "github.com/ipld/go-codec-dagpb"
	"github.com/ipld/go-ipld-prime"
	_ "github.com/ipld/go-ipld-prime/codec/raw" // raw leaves in the traversal
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	selectorparse "github.com/ipld/go-ipld-prime/traversal/selector/parse"

	"github.com/bsfs/bsfs/block"
)

// Source is where Export reads blocks.
type Source interface {
	GetBlock(ctx context.Context, c cid.Cid) (block.Block, error)
}

// Export writes root's DAG to w as a CARv1 with root as its only root,
// the blocks in depth-first order, each read from src.
func Export(ctx context.Context, src Source, root cid.Cid, w io.Writer) error {
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

// Writer stores the blocks Import reads; Close returns the first error of
// storing any of them.
type Writer interface {
	Put(ctx context.Context, b block.Block) error
	Close() error
}

// Import reads a CARv1 or CARv2 file from r and stores each of its blocks,
// checked against its CID, with the writer open returns, which it closes.
// It returns how many blocks it stored and the file's roots.
func Import(ctx context.Context, r io.Reader, open func() (Writer, error)) (int, []cid.Cid, error) {
	br, err := car.NewBlockReader(r)
	if err != nil {
		return 0, nil, fmt.Errorf("reading CAR: %w", err)
	}
	w, err := open()
	if err != nil {
		return 0, nil, err
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
			return count, nil, errors.Join(fmt.Errorf("CAR block %d: %w", count+1, err), w.Close())
		}
		count++
	}
	if err := w.Close(); err != nil {
		return count, nil, err
	}
	return count, br.Roots, nil
}
